// Electron composition root: app lifecycle, services, IPC, window.
import path from 'node:path'
import type { BrowserWindow } from 'electron'
import { app, session } from 'electron'
import { createMainWindow, isTrustedRendererUrl } from './app/window'
import { safeStorageSecretBox } from './app/secrets'
import { electronStore } from './app/store'
import { useSystemProxy } from './app/proxy'
import { registerIpc } from './ipc'
import { appPaths, chooseDataFolder } from './platform/paths'
import { createApi } from './services/api'
import { keyFileSecretBox } from './services/secrets'

const outDir = path.join(import.meta.dirname, '..')
const devUrl = process.env.ELECTRON_RENDERER_URL

app.enableSandbox()

// One data folder for the app and the CLI (ATELIER_HOME, else Electron's userData location computed in plain
// Node, or the CLI's former folder when only it holds data): Electron's own files go there too, set before
// anything reads userData.
const home = chooseDataFolder().home
app.setPath('userData', home)

void app.whenReady().then(() => {
  useSystemProxy(session.defaultSession)
  const { services, handlers } = createApi({
    home,
    mode: 'desktop',
    store: electronStore(home),
    secretBox: safeStorageSecretBox(keyFileSecretBox(appPaths(home).keyFile)),
  })
  let win: BrowserWindow | undefined = createMainWindow(outDir, devUrl)
  const unregister = registerIpc(
    handlers,
    services.bus,
    (url) => isTrustedRendererUrl(url, devUrl),
    () => win?.webContents,
  )
  win.on('closed', () => (win = undefined))
  app.on('activate', () => {
    if (!win) win = createMainWindow(outDir, devUrl)
  })
  app.on('window-all-closed', () => {
    unregister()
    void services.dispose().then(() => app.quit())
  })
})
