import Store from 'electron-store'
import type { KeyValueStore } from '../services/store'

/** Settings backed by electron-store in the desktop app. */
export function electronStore(cwd: string): KeyValueStore {
  const store = new Store<Record<string, unknown>>({ cwd, name: 'settings' })
  return {
    get: (key) => store.get(key),
    set: (key, value) => store.set(key, value),
    delete: (key) => store.delete(key),
  }
}
