import { useEffect, useState } from 'react'
import type { AppInfo, JobInfo } from '../../../preload/contract'
import { api } from '../api/client'

export function StatusBar(): React.JSX.Element {
  const [info, setInfo] = useState<AppInfo>()
  const [jobs, setJobs] = useState<Record<string, JobInfo>>({})
  const [error, setError] = useState<string>()

  useEffect(() => {
    const refresh = (): void =>
      void api.invoke('app:info', {}).then((r) => (r.ok ? setInfo(r.value) : setError(r.error.message)))
    refresh()
    // The provider that opened is known after a generation; a new preference applies to the next one.
    const offFinished = api.on('generate:finished', refresh)
    const offSettings = api.on('settings:changed', refresh)
    const loadJobs = (): void =>
      void api
        .invoke('jobs:list', {})
        .then((r) => r.ok && setJobs(Object.fromEntries(r.value.map((j) => [j.id, j]))))
    loadJobs()
    const offJobs = api.on('jobs:progress', (job) => setJobs((prev) => ({ ...prev, [job.id]: job })))
    // Back after a drop (or a server restart): what runs now, and the server's info, replace what was seen.
    const offConnection = api.onConnection((state) => {
      if (state !== 'open') return
      setError(undefined)
      refresh()
      loadJobs()
    })
    return () => {
      offFinished()
      offSettings()
      offJobs()
      offConnection()
    }
  }, [])

  const running = Object.values(jobs).filter((j) => j.state === 'running' || j.state === 'queued')
  const ep = info?.executionProvider
  return (
    <footer className="statusbar" role="status">
      <span
        data-testid="engine-provider"
        title={
          ep?.fallbackReason ??
          (ep && !ep.opened
            ? `no model loaded yet; available: ${ep.available.join(', ')}`
            : `available: ${ep?.available.join(', ') ?? '…'}`)
        }
      >
        Engine: {ep ? ep.name.toUpperCase() : '…'}
        {ep?.compute ? ` ${ep.compute}` : ''}
        {ep && ep.opened === false ? ' (not loaded)' : ''}
        {ep?.fallbackReason ? ' (fallback)' : ''}
      </span>
      <span data-testid="running-jobs">
        {running.length === 0
          ? 'Idle'
          : running.map((j) => `${j.label} ${Math.round(j.progress * 100)}%`).join(' · ')}
      </span>
      <span className="statusbar-right">
        {error ? `Not connected: ${error}` : info ? `Atelier ${info.version} · ${info.mode}` : 'Connecting…'}
      </span>
    </footer>
  )
}
