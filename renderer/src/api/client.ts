/**
 * The renderer's ONLY way to main: typed requests and events over whichever bridge exists.
 */
import type { Channel, EventName, Events, Req, Res, Result } from '../../../preload/contract'
import { electronBridge, type Bridge, type ConnectionState } from './bridge'
import { takeToken, websocketBridge } from './ws-bridge'

let bridge: Bridge | undefined

function getBridge(): Bridge {
  if (bridge) return bridge
  bridge = electronBridge()
  if (!bridge) {
    const token = takeToken()
    if (!token) throw new Error('No access token: open the URL that `atelier serve` printed.')
    bridge = websocketBridge(token)
  }
  return bridge
}

export const api = {
  get transport(): Bridge['kind'] {
    return getBridge().kind
  },
  invoke<C extends Channel>(channel: C, req: Req<C>): Promise<Result<Res<C>>> {
    return getBridge().invoke(channel, req) as Promise<Result<Res<C>>>
  },
  /** Like invoke, but throws the error message (for places that show errors through a boundary). */
  async call<C extends Channel>(channel: C, req: Req<C>): Promise<Res<C>> {
    const r = await this.invoke(channel, req)
    if (!r.ok) throw new Error(r.error.message)
    return r.value
  },
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    return getBridge().on(event, listener as (p: unknown) => void)
  },
  /** The connection to main: 'lost' while the WebSocket is down (it reconnects by itself). */
  connection(): ConnectionState {
    return getBridge().connection?.() ?? 'open'
  },
  onConnection(listener: (state: ConnectionState) => void): () => void {
    return getBridge().onConnection?.(listener) ?? (() => undefined)
  },
}

export type { ConnectionState }
