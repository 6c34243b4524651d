import type { Result } from '../../../preload/contract-types'

/** How the client reaches main: Electron's preload bridge or the WebSocket of `atelier serve`. */
export type ConnectionState = 'connecting' | 'open' | 'lost'

export interface Bridge {
  readonly kind: 'electron' | 'websocket'
  invoke(channel: string, payload: unknown): Promise<Result<unknown>>
  on(event: string, listener: (payload: unknown) => void): () => void
  /** Connection changes (the WebSocket drops and comes back); Electron's bridge is always open. */
  onConnection?(listener: (state: ConnectionState) => void): () => void
  connection?(): ConnectionState
}

interface PreloadApi {
  invoke(channel: string, payload: unknown): Promise<Result<unknown>>
  on(event: string, listener: (payload: unknown) => void): () => void
}

export function electronBridge(): Bridge | undefined {
  const api = (globalThis as { atelier?: PreloadApi }).atelier
  if (!api) return undefined
  return { kind: 'electron', invoke: (c, p) => api.invoke(c, p), on: (e, l) => api.on(e, l) }
}
