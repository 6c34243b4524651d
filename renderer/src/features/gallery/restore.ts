/**
 * "Restore parameters": read a PNG's A1111 `parameters` through `gallery:parameters` (bytes in, typed
 * parameters out) and load them into the studio panel.
 */
import { gallery } from '../studio/generation-adapter'
import { restoreParameters } from '../studio/params'
import { createStore } from '../studio/store'
import { ensureLibrary, refreshLibrary, setParams, studio } from '../studio/studio-state'

export interface Toast {
  id: number
  kind: 'info' | 'error'
  text: string
}

export const toasts = createStore<{ current?: Toast }>({})
let nextId = 1

export function toast(kind: Toast['kind'], text: string): void {
  const id = nextId++
  toasts.set({ current: { id, kind, text } })
  setTimeout(() => {
    if (toasts.get().current?.id === id) toasts.set({ current: undefined })
  }, 8000)
}

/** Restores and reports; returns whether anything was restored. */
export async function restoreFromPng(png: Uint8Array, name: string): Promise<boolean> {
  const r = await gallery.parameters(png)
  if (!r.ok) {
    toast('error', `${name}: ${r.error.message}`)
    return false
  }
  if (r.value.text === null) {
    toast('error', `${name} carries no generation parameters.`)
    return false
  }
  ensureLibrary()
  if (studio.get().checkpoints.length === 0) await refreshLibrary()
  const { patch, notes } = restoreParameters(r.value, studio.get().checkpoints, studio.get().vaes)
  setParams(patch)
  const what = Object.keys(patch).length
  toast(
    'info',
    `Restored ${what} setting(s) from ${name}.${notes.length ? ` Not restored: ${notes.join('; ')}.` : ''}`,
  )
  return true
}
