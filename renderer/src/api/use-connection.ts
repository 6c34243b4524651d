import { useSyncExternalStore } from 'react'
import { api, type ConnectionState } from './client'

const subscribe = (onChange: () => void): (() => void) => api.onConnection(() => onChange())
const current = (): ConnectionState => api.connection()

/** The connection to Atelier as React state: 'lost' while the WebSocket is down (it reconnects by itself). */
export function useConnection(): ConnectionState {
  return useSyncExternalStore(subscribe, current)
}
