import type { Result } from '../../../preload/contract-types'
import { decodeMessage, encodeMessage, isServerMessage } from '../../../preload/wire'
import type { Bridge, ConnectionState } from './bridge'

/** The browser bridge: one WebSocket to `atelier serve`, MessagePack frames, reconnecting with backoff. */
export function websocketBridge(token: string): Bridge {
  const listeners = new Map<string, Set<(payload: unknown) => void>>()
  const pending = new Map<number, (r: Result<unknown>) => void>()
  const queue: Uint8Array[] = []
  let nextId = 1
  let ws: WebSocket | undefined
  let retry = 250
  let state: ConnectionState = 'connecting'
  let everOpen = false
  const watchers = new Set<(s: ConnectionState) => void>()
  const setState = (next: ConnectionState): void => {
    if (next === state) return
    state = next
    for (const fn of watchers) fn(next)
  }

  const connect = (): void => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const socket = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(token)}`)
    socket.binaryType = 'arraybuffer'
    ws = socket
    socket.onopen = () => {
      retry = 250
      everOpen = true
      setState('open')
      for (const frame of queue.splice(0)) socket.send(frame)
    }
    socket.onmessage = (ev: MessageEvent<ArrayBuffer>) => {
      const msg = decodeMessage(ev.data)
      if (!isServerMessage(msg)) return
      if (msg.t === 'res') {
        pending.get(msg.id)?.(msg.result)
        pending.delete(msg.id)
      } else if (msg.t === 'evt') {
        for (const fn of listeners.get(msg.name) ?? []) fn(msg.payload)
      }
    }
    socket.onclose = () => {
      for (const [id, resolve] of pending) {
        resolve({ ok: false, error: { code: 'unavailable', message: 'Lost the connection to Atelier.' } })
        pending.delete(id)
      }
      if (everOpen) setState('lost')
      setTimeout(connect, retry)
      retry = Math.min(retry * 2, 2000)
    }
  }
  connect()

  return {
    kind: 'websocket',
    invoke(channel, payload) {
      const id = nextId++
      const frame = encodeMessage({ t: 'req', id, channel, payload })
      return new Promise((resolve) => {
        pending.set(id, resolve)
        if (ws?.readyState === WebSocket.OPEN) ws.send(frame)
        else queue.push(frame)
      })
    },
    on(event, listener) {
      let set = listeners.get(event)
      if (!set) listeners.set(event, (set = new Set()))
      set.add(listener)
      return () => set.delete(listener)
    },
    onConnection(listener) {
      watchers.add(listener)
      return () => watchers.delete(listener)
    },
    connection: () => state,
  }
}

/** The token comes in the URL printed by `atelier serve`; keep it for reloads, then hide it from the address bar. */
export function takeToken(): string | undefined {
  const url = new URL(location.href)
  const fromUrl = url.searchParams.get('token')
  if (fromUrl) {
    sessionStorage.setItem('atelier-token', fromUrl)
    url.searchParams.delete('token')
    history.replaceState(null, '', url.pathname + url.search + url.hash)
    return fromUrl
  }
  return sessionStorage.getItem('atelier-token') ?? undefined
}
