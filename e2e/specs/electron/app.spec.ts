import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { _electron as electron, expect, test } from '@playwright/test'
import { ROOT } from '../../fixtures/server'

/** The installed Electron executable, found without triggering Electron's lazy download. */
function electronBinary(): string | undefined {
  if (process.env.ATELIER_ELECTRON) return process.env.ATELIER_ELECTRON
  try {
    const dir = path.dirname(createRequire(import.meta.url).resolve('electron/package.json'))
    const rel = fs.readFileSync(path.join(dir, 'path.txt'), 'utf8').trim()
    const exe = path.join(dir, 'dist', rel)
    return fs.existsSync(exe) ? exe : undefined
  } catch {
    return undefined
  }
}

const binary = electronBinary()
if (!binary)
  console.log(
    '[electron spec] skipped: the Electron binary is not installed on this machine (npm could not download it).',
  )

test.describe('desktop app', () => {
  test.skip(!binary, 'the Electron binary is not installed on this machine')

  test('opens the shell with the sandboxed preload bridge', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-electron-'))
    const app = await electron.launch({
      executablePath: binary,
      args: [ROOT],
      env: { ...process.env, ATELIER_HOME: home },
    })
    try {
      const win = await app.firstWindow()
      await expect(win.getByTestId('section-models')).toBeVisible()
      await expect(win.getByTestId('engine-provider')).toContainText(/Engine: (AUTO|CPU)/)
      expect(await win.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined')
      await win.getByRole('link', { name: 'Settings', exact: true }).click()
      await win.getByTestId('nsfw').selectOption('show')
      await expect(win.getByRole('note')).toHaveText('Saved.')
    } finally {
      await app.close()
    }
  })
})
