import { useEffect, useState } from 'react'
import type { JobInfo } from '../../../../preload/contract-types'
import { api } from '../../api/client'
import { studio } from '../studio/studio-state'
import { UpscalerSelect } from './UpscalerSelect'

/**
 * "Upscale" on an image (Gallery, Img2img results): pick an upscaler and a factor, run it as a job with
 * tile progress and Cancel; the result is a new gallery image (the gallery refreshes when it is saved).
 */
export function UpscaleAction({
  galleryId,
  png,
  disabled,
}: {
  galleryId?: string
  png?: Uint8Array
  disabled?: boolean
}): React.JSX.Element {
  const [open, setOpen] = useState(false)
  const [upscaler, setUpscaler] = useState('Lanczos')
  const [scale, setScale] = useState(2)
  const [job, setJob] = useState<JobInfo>()
  const [error, setError] = useState<string>()

  useEffect(() => {
    if (!job || job.state !== 'running') return
    return api.on('jobs:progress', (j) => {
      if (j.id !== job.id) return
      setJob(j)
      if (j.state === 'done') studio.set((s) => ({ outputsVersion: s.outputsVersion + 1 }))
      if (j.state === 'failed') setError(j.message ?? 'The upscale failed.')
    })
  }, [job])

  const start = async (): Promise<void> => {
    setError(undefined)
    const source = galleryId ? { galleryId } : png ? { png: new Uint8Array(png) } : {}
    const r = await api.invoke('upscale:start', { ...source, upscaler, scale })
    if (!r.ok) return setError(r.error.message)
    setJob({
      id: r.value.jobId,
      kind: 'upscale',
      label: 'Upscale',
      state: 'running',
      progress: 0,
      startedAt: Date.now(),
    })
  }
  const running = job?.state === 'running'

  return (
    <span className="upscale-action">
      <button type="button" data-testid="upscale-open" disabled={disabled} onClick={() => setOpen((o) => !o)}>
        Upscale…
      </button>
      {open && (
        <span className="upscale-popover row" data-testid="upscale-popover">
          <UpscalerSelect testId="upscale-upscaler" value={upscaler} onChange={setUpscaler} />
          <select
            aria-label="Upscale factor"
            data-testid="upscale-scale"
            value={scale}
            onChange={(e) => setScale(Number(e.target.value))}
          >
            {[1.5, 2, 3, 4].map((s) => (
              <option key={s} value={s}>
                ×{s}
              </option>
            ))}
          </select>
          {running ? (
            <>
              <progress max={1} value={job.progress} data-testid="upscale-progress" />
              <button type="button" onClick={() => void api.invoke('jobs:cancel', { jobId: job.id })}>
                Cancel
              </button>
            </>
          ) : (
            <button
              type="button"
              data-testid="upscale-start"
              disabled={disabled}
              onClick={() => void start()}
            >
              Upscale
            </button>
          )}
          {job?.state === 'done' && (
            <span className="hint" data-testid="upscale-done">
              {job.message}
            </span>
          )}
          {job?.state === 'cancelled' && <span className="hint">Cancelled.</span>}
          {error && (
            <span className="message error" role="alert">
              {error}
            </span>
          )}
        </span>
      )}
    </span>
  )
}
