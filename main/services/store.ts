import fs from 'node:fs'
import Conf from 'conf'

/**
 * One key-value store interface for settings. The desktop app backs it with electron-store (main/app/),
 * `atelier serve` and the CLI with a JSON file through `conf` — both write atomically.
 */
export interface KeyValueStore {
  get(key: string): unknown
  set(key: string, value: unknown): void
  delete(key: string): void
}

export function fileStore(home: string, name = 'settings'): KeyValueStore {
  fs.mkdirSync(home, { recursive: true })
  const conf = new Conf<Record<string, unknown>>({ cwd: home, configName: name, projectName: 'atelier' })
  return {
    get: (key) => conf.get(key),
    set: (key, value) => conf.set(key, value),
    delete: (key) => conf.delete(key),
  }
}

export function memoryStore(): KeyValueStore {
  const map = new Map<string, unknown>()
  return {
    get: (key) => map.get(key),
    set: (key, value) => void map.set(key, value),
    delete: (key) => void map.delete(key),
  }
}
