// The ONLY module that touches ipcMain and webContents.send (lint-enforced).
import { ipcMain, type WebContents } from 'electron'
import { channels } from '../../preload/contract'
import type { Handlers } from '../services/api'
import type { EventBus } from '../services/events'
import { dispatch } from '../services/dispatch'

/** Registers every contract channel; calls from frames other than our own renderer are refused. */
export function registerIpc(
  handlers: Handlers,
  bus: EventBus,
  isTrustedUrl: (url: string) => boolean,
  target: () => WebContents | undefined,
): () => void {
  for (const channel of channels) {
    ipcMain.handle(`contract:${channel}`, (event, payload: unknown) => {
      const url = event.senderFrame?.url ?? ''
      if (!isTrustedUrl(url)) return { ok: false, error: { code: 'forbidden', message: 'Untrusted sender.' } }
      return dispatch(handlers, channel, payload, { transport: 'ipc' })
    })
  }
  const unsubscribe = bus.subscribe((event) => {
    const wc = target()
    if (wc && !wc.isDestroyed()) wc.send(`event:${event.name}`, event.payload)
  })
  return () => {
    unsubscribe()
    for (const channel of channels) ipcMain.removeHandler(`contract:${channel}`)
  }
}
