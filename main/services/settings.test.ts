import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SettingsService } from './settings'
import type { KeyValueStore } from './store'

function memoryStore(): KeyValueStore {
  const m = new Map<string, unknown>()
  return { get: (k) => m.get(k), set: (k, v) => void m.set(k, v), delete: (k) => void m.delete(k) }
}

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

describe('library folder setting', () => {
  it('refuses a folder that cannot be created or written, and keeps the previous one', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-settings-'))
    dirs.push(home)
    const s = new SettingsService(memoryStore(), home)
    const before = s.get().libraryRoot
    expect(() => s.update({ libraryRoot: '/proc/nonexistent/xyz' })).toThrow(/can't be used/)
    expect(() => s.update({ libraryRoot: 'relative/models' })).toThrow(/full path/)
    const file = path.join(home, 'a-file')
    fs.writeFileSync(file, 'x')
    expect(() => s.update({ libraryRoot: file })).toThrow(/can't be used/)
    expect(s.get().libraryRoot).toBe(before)
    // A new folder is created and saved.
    const fresh = path.join(home, 'new', 'models')
    expect(s.update({ libraryRoot: fresh }).libraryRoot).toBe(fresh)
    expect(fs.statSync(fresh).isDirectory()).toBe(true)
  })
})
