import { useEffect, useState } from 'react'
import { api, type ConnectionState } from '../api/client'

/** Shown in every section while the connection to Atelier is down; it reconnects by itself. */
export function ConnectionBanner(): React.JSX.Element | null {
  const [state, setState] = useState<ConnectionState>(() => api.connection())
  const [back, setBack] = useState(false)
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const off = api.onConnection((s) => {
      setState((prev) => {
        if (prev === 'lost' && s === 'open') {
          setBack(true)
          clearTimeout(timer)
          timer = setTimeout(() => setBack(false), 4000)
        }
        return s
      })
    })
    return () => {
      off()
      clearTimeout(timer)
    }
  }, [])
  if (state === 'lost')
    return (
      <div className="connection-banner lost" role="alert" data-testid="connection-lost">
        Lost the connection to Atelier — reconnecting… Running work continues on the server.
      </div>
    )
  if (back)
    return (
      <div className="connection-banner back" role="status" data-testid="connection-back">
        Reconnected.
      </div>
    )
  return null
}
