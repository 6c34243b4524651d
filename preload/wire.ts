/**
 * The WebSocket wire format of `atelier serve`: MessagePack frames, so Uint8Array payloads (images, masks)
 * travel as raw bytes, never base64 JSON.
 */
import { decode, encode } from '@msgpack/msgpack'
import type { Result } from './contract-types'

export type ClientMessage = { t: 'req'; id: number; channel: string; payload: unknown }
export type ServerMessage =
  | { t: 'res'; id: number; result: Result<unknown> }
  | { t: 'evt'; name: string; payload: unknown }
  | { t: 'hello'; version: string }

export function encodeMessage(msg: ClientMessage | ServerMessage): Uint8Array {
  return encode(msg, { ignoreUndefined: true })
}

export function decodeMessage(bytes: ArrayBuffer | Uint8Array): unknown {
  return decode(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes))
}

export function isClientMessage(m: unknown): m is ClientMessage {
  if (!m || typeof m !== 'object') return false
  const o = m as Record<string, unknown>
  return o.t === 'req' && typeof o.id === 'number' && typeof o.channel === 'string'
}

export function isServerMessage(m: unknown): m is ServerMessage {
  if (!m || typeof m !== 'object') return false
  const t = (m as Record<string, unknown>).t
  return t === 'res' || t === 'evt' || t === 'hello'
}
