// The preload: exposes only invoke/on for the contract's allow-listed channels and events.
import { contextBridge, ipcRenderer } from 'electron'
import { channels, eventNames } from './contract'

const allowedChannels = new Set<string>(channels)
const allowedEvents = new Set<string>(eventNames)

contextBridge.exposeInMainWorld('atelier', {
  invoke(channel: string, payload: unknown): Promise<unknown> {
    if (!allowedChannels.has(channel))
      return Promise.resolve({ ok: false, error: { code: 'unknown-channel', message: channel } })
    return ipcRenderer.invoke(`contract:${channel}`, payload)
  },
  on(event: string, listener: (payload: unknown) => void): () => void {
    if (!allowedEvents.has(event)) return () => {}
    const wrapped = (_e: unknown, payload: unknown): void => listener(payload)
    ipcRenderer.on(`event:${event}`, wrapped)
    return () => ipcRenderer.removeListener(`event:${event}`, wrapped)
  },
})
