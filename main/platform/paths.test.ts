import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  appDataFolder,
  chooseDataFolder,
  formerDataFolder,
  holdsAtelierData,
  type DataFolderHost,
} from './paths'

/** One data folder for the desktop app and the CLI; a former CLI folder with data is adopted (issue 17). */
describe('data folder', () => {
  let tmp = ''
  let host: DataFolderHost
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-datafolder-'))
    host = { env: {}, platform: 'linux', homedir: tmp }
  })
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }))

  const put = (dir: string, entry: string, folder = false): void => {
    fs.mkdirSync(dir, { recursive: true })
    if (folder) fs.mkdirSync(path.join(dir, entry), { recursive: true })
    else fs.writeFileSync(path.join(dir, entry), '{}')
  }

  it("is Electron's userData folder for the app, per platform", () => {
    expect(appDataFolder(host)).toBe(path.join(tmp, '.config', 'atelier'))
    expect(appDataFolder({ ...host, env: { XDG_CONFIG_HOME: path.join(tmp, 'cfg') } })).toBe(
      path.join(tmp, 'cfg', 'atelier'),
    )
    expect(appDataFolder({ ...host, platform: 'darwin' })).toBe(
      path.join(tmp, 'Library', 'Application Support', 'atelier'),
    )
    expect(appDataFolder({ ...host, platform: 'win32', env: { APPDATA: path.join(tmp, 'Roaming') } })).toBe(
      path.join(tmp, 'Roaming', 'atelier'),
    )
    expect(formerDataFolder(host)).toBe(path.join(tmp, '.local', 'share', 'atelier'))
  })

  it('a fresh machine uses the shared folder; ATELIER_HOME overrides everything', () => {
    expect(chooseDataFolder(host)).toEqual({ home: appDataFolder(host), reason: 'default' })
    put(formerDataFolder(host), 'settings.json')
    const env = { ATELIER_HOME: path.join(tmp, 'elsewhere') }
    expect(chooseDataFolder({ ...host, env })).toEqual({ home: env.ATELIER_HOME, reason: 'env' })
  })

  it('adopts the former CLI folder when only it holds data (Electron caches do not count)', () => {
    const shared = appDataFolder(host)
    const former = formerDataFolder(host)
    put(shared, 'Local Storage', true) // what Electron itself writes into userData on first start
    put(shared, 'Preferences')
    put(former, 'models', true)
    expect(holdsAtelierData(shared)).toBe(false)
    expect(chooseDataFolder(host)).toEqual({ home: former, reason: 'adopted' })
    // The app's own data wins once it has some; the other folder is named so the CLI can say so.
    put(shared, 'settings.json')
    expect(chooseDataFolder(host)).toEqual({ home: shared, reason: 'default', unused: former })
  })

  it('one folder under two spellings is not "unused" (case-insensitive file systems)', () => {
    const shared = appDataFolder(host)
    put(shared, 'settings.json')
    const former = formerDataFolder(host)
    fs.mkdirSync(path.dirname(former), { recursive: true })
    fs.symlinkSync(shared, former)
    expect(chooseDataFolder(host)).toEqual({ home: shared, reason: 'default' })
  })
})
