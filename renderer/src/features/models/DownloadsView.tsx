import { useState } from 'react'
import type { DownloadInfo } from '../../../../preload/contract'
import { api } from '../../api/client'
import { Tag } from './Badges'
import { refreshDownloads, useDownloads } from './data'
import { formatBytes, formatDuration } from './format'

const STATE_LABEL: Record<DownloadInfo['state'], string> = {
  queued: 'Waiting',
  downloading: 'Downloading',
  paused: 'Paused',
  verifying: 'Verifying SHA-256',
  done: 'Downloaded',
  failed: 'Failed',
  cancelled: 'Cancelled',
}

function status(d: DownloadInfo): { text: string; tone: 'plain' | 'good' | 'warn' | 'bad' | 'accent' } {
  if (d.state === 'done') {
    switch (d.install.state) {
      case 'installed':
        return { text: d.verified ? 'Installed · verified' : 'Installed', tone: 'good' }
      case 'installing':
      case 'pending':
        return { text: 'Adding to the library', tone: 'accent' }
      case 'failed':
        return { text: 'Install failed', tone: 'bad' }
      default:
        return { text: d.verified ? 'Done · verified' : 'Done', tone: 'good' }
    }
  }
  const tone =
    d.state === 'failed' ? 'bad' : d.state === 'paused' || d.state === 'cancelled' ? 'warn' : 'accent'
  return { text: STATE_LABEL[d.state], tone }
}

export function DownloadsView(): React.JSX.Element {
  const downloads = useDownloads()
  const [error, setError] = useState<string>()
  const act = async (action: 'pause' | 'resume' | 'cancel' | 'retry', id: string): Promise<void> => {
    const r = await api.invoke(`downloads:${action}`, { id })
    setError(r.ok ? undefined : r.error.message)
  }
  const finished = downloads.filter(
    (d) =>
      d.state === 'cancelled' ||
      d.state === 'failed' ||
      (d.state === 'done' && d.install.state !== 'pending' && d.install.state !== 'installing'),
  )
  return (
    <section className="downloads" aria-label="Downloads">
      <div className="m-toolbar">
        <h2>Downloads</h2>
        <span className="grow" />
        <button
          type="button"
          disabled={finished.length === 0}
          onClick={() =>
            void api.invoke('downloads:clear', {}).then((r) => {
              if (r.ok) refreshDownloads()
              else setError(r.error.message)
            })
          }
        >
          Clear finished
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {downloads.length === 0 ? (
        <div className="empty">
          <p>No downloads yet.</p>
          <p className="muted">
            Install a model from <a href="#/models/browse">Browse</a>; downloads resume by themselves after a
            restart.
          </p>
        </div>
      ) : (
        <ul className="download-list" data-testid="download-list">
          {downloads.map((d) => (
            <Row key={d.id} d={d} act={act} />
          ))}
        </ul>
      )}
    </section>
  )
}

function Row({
  d,
  act,
}: {
  d: DownloadInfo
  act: (a: 'pause' | 'resume' | 'cancel' | 'retry', id: string) => Promise<void>
}): React.JSX.Element {
  const s = status(d)
  const pct = d.total ? Math.min(100, (d.bytes / d.total) * 100) : d.state === 'done' ? 100 : 0
  const running = d.state === 'downloading' || d.state === 'queued' || d.state === 'verifying'
  const canRetry =
    d.state === 'failed' || d.state === 'cancelled' || (d.state === 'done' && d.install.state === 'failed')
  const message = d.error?.message ?? (d.install.state === 'failed' ? d.install.message : null)
  return (
    <li
      className={`download state-${d.state}`}
      data-testid="download-row"
      data-state={d.state}
      data-install={d.install.state}
    >
      <div className="download-head">
        <strong className="download-label" title={d.fileName ?? undefined}>
          {d.label}
        </strong>
        <Tag tone={s.tone} testId="download-status">
          {s.text}
        </Tag>
      </div>
      <progress
        className={d.state === 'verifying' ? 'indeterminate' : undefined}
        max={100}
        value={d.state === 'verifying' ? undefined : pct}
        aria-label={`${d.label}: ${Math.round(pct)}%`}
      />
      <div className="download-facts small muted">
        <span>
          {formatBytes(d.bytes)} of {formatBytes(d.total)}
        </span>
        {d.state === 'downloading' && (
          <>
            <span>{formatBytes(d.speedBps)}/s</span>
            <span>{d.etaMs !== null ? `${formatDuration(d.etaMs)} left` : ''}</span>
          </>
        )}
        {d.fileName && <span className="file-name">{d.fileName}</span>}
        {d.install.state === 'installed' && d.install.libraryId && (
          <a href={`#/models/library?id=${encodeURIComponent(d.install.libraryId)}`}>Show in library</a>
        )}
      </div>
      {message && (
        <p className="error small" role="alert">
          {message}
        </p>
      )}
      <div className="row">
        {running && d.state !== 'verifying' && (
          <button type="button" onClick={() => void act('pause', d.id)}>
            Pause
          </button>
        )}
        {d.state === 'paused' && (
          <button type="button" onClick={() => void act('resume', d.id)}>
            Resume
          </button>
        )}
        {(running || d.state === 'paused') && d.state !== 'verifying' && (
          <button type="button" onClick={() => void act('cancel', d.id)}>
            Cancel
          </button>
        )}
        {canRetry && (
          <button type="button" onClick={() => void act('retry', d.id)}>
            Retry
          </button>
        )}
      </div>
    </li>
  )
}
