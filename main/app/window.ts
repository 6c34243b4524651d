import path from 'node:path'
import { BrowserWindow, session, shell } from 'electron'

/** The main window with the security baseline: isolation, sandbox, no Node, no navigation, no popups. */
export function createMainWindow(outDir: string, devUrl?: string): BrowserWindow {
  const win = new BrowserWindow({
    width: 1400,
    height: 900,
    show: false,
    title: 'Atelier',
    webPreferences: {
      preload: path.join(outDir, 'preload', 'index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  })
  win.once('ready-to-show', () => win.show())
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url)
    return { action: 'deny' }
  })
  win.webContents.on('will-navigate', (e) => e.preventDefault())
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false))
  session.defaultSession.setPermissionCheckHandler(() => false)
  if (devUrl) void win.loadURL(devUrl)
  else void win.loadFile(path.join(outDir, 'renderer', 'index.html'))
  return win
}

export function isTrustedRendererUrl(url: string, devUrl?: string): boolean {
  if (devUrl && url.startsWith(devUrl)) return true
  return url.startsWith('file://') && url.includes('/renderer/index.html')
}
