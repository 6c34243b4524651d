import { useCallback, useEffect, useState } from 'react'
import type { OutputImage } from '../../../../preload/contract-types'
import { bytesUrl } from '../../canvas-kit/image-io'
import { useConnection } from '../../api/use-connection'
import { AdapterCheck } from '../studio/AdapterCheck'
import { waitingText } from '../studio/job-recovery'
import { familyBase, gallery } from '../studio/generation-adapter'
import { BLEND_MAX, BLEND_MIN, blendRequest, blendSize, type BlendShape } from '../studio/image-prompts'
import { useStore } from '../studio/store'
import { ensureLibrary, generate, selectedCheckpoint, studio } from '../studio/studio-state'

const SHAPES: BlendShape[] = ['square', 'portrait', 'landscape']

function Pick({
  item,
  checked,
  disabled,
  onToggle,
}: {
  item: OutputImage
  checked: boolean
  disabled: boolean
  onToggle: () => void
}): React.JSX.Element {
  const [url, setUrl] = useState<string>()
  useEffect(() => {
    let live = true
    let made: string | undefined
    void gallery.image(item.id).then((r) => {
      if (!live || !r.ok) return
      made = bytesUrl(r.value, 'image/png')
      setUrl(made)
    })
    return () => {
      live = false
      if (made) URL.revokeObjectURL(made)
    }
  }, [item.id])
  return (
    <button
      type="button"
      className={`thumb ${checked ? 'active' : ''}`}
      style={{ width: 88, height: 88, flex: 'none' }}
      title={item.fileName}
      aria-pressed={checked}
      disabled={disabled && !checked}
      data-testid="blend-pick"
      onClick={onToggle}
    >
      {url ? <img src={url} alt={item.fileName} loading="lazy" /> : <span className="hint">…</span>}
    </button>
  )
}

/**
 * Midjourney /blend from the Gallery: pick 2–5 images, a shape, and run a txt2img with them as equally
 * weighted image prompts and no text (their CLIP embeddings are averaged, IP-Adapter at scale 1), with the
 * studio's model and sampling settings. The result lands in the gallery.
 */
export function BlendAction({ items }: { items: OutputImage[] }): React.JSX.Element {
  const [open, setOpen] = useState(false)
  const [picked, setPicked] = useState<string[]>([])
  const [shape, setShape] = useState<BlendShape>('square')
  const checkpoint = useStore(studio, selectedCheckpoint)
  const job = useStore(studio, (s) => s.job)
  const starting = useStore(studio, (s) => s.starting)
  const message = useStore(studio, (s) => s.message)
  const running = job !== undefined || starting
  const lost = useConnection() === 'lost'
  // No IP-Adapter or image encoder: said (with an install) before any image is picked; picks are kept.
  const [ready, setReady] = useState(false)
  const onReady = useCallback((r: boolean) => setReady(r), [])
  // the checkpoint list (and the chosen one) even when no studio tab was opened yet
  useEffect(() => ensureLibrary(), [])

  const toggle = (id: string): void =>
    setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : p.length < BLEND_MAX ? [...p, id] : p))
  const size = blendSize(shape, familyBase(checkpoint?.family ?? null))
  const start = (): void =>
    void generate('txt2img', {}, (req) => blendRequest(req, picked, size)).then(() => setPicked([]))

  return (
    <div className="blend-action" data-testid="blend-action">
      <button
        type="button"
        data-testid="blend-open"
        disabled={items.length < BLEND_MIN}
        onClick={() => setOpen(!open)}
      >
        {open ? 'Close blend' : 'Blend…'}
      </button>
      {open && (
        <div
          className="blend-panel"
          role="group"
          aria-label="Blend images"
          style={{ display: 'grid', gap: 8, minWidth: 0, maxWidth: '100%', marginTop: 8 }}
        >
          <AdapterCheck purpose="Blend" onReady={onReady} />
          <p className="hint">
            Pick {BLEND_MIN} to {BLEND_MAX} images: they are merged without text (Midjourney /blend), with the
            checkpoint {checkpoint ? `“${checkpoint.name}”` : '(choose one in a studio tab)'}.
          </p>
          <div style={{ display: 'flex', flexWrap: 'wrap', gap: 6 }}>
            {items.map((item) => (
              <Pick
                key={item.id}
                item={item}
                checked={picked.includes(item.id)}
                disabled={picked.length >= BLEND_MAX}
                onToggle={() => toggle(item.id)}
              />
            ))}
          </div>
          <div style={{ display: 'flex', flexWrap: 'wrap', gap: 8, alignItems: 'end' }}>
            <label style={{ flex: 'none' }}>
              Shape
              <select
                data-testid="blend-shape"
                value={shape}
                onChange={(e) => setShape(e.target.value as BlendShape)}
              >
                {SHAPES.map((s) => (
                  <option key={s} value={s}>
                    {s} ({blendSize(s, familyBase(checkpoint?.family ?? null)).width}×
                    {blendSize(s, familyBase(checkpoint?.family ?? null)).height})
                  </option>
                ))}
              </select>
            </label>
            <button
              type="button"
              className="primary"
              style={{ width: 'auto', padding: '6px 14px' }}
              data-testid="blend-start"
              disabled={running || !ready || picked.length < BLEND_MIN}
              title={ready ? undefined : 'Blend needs an IP-Adapter and an image encoder (see above)'}
              onClick={start}
            >
              Blend {picked.length} image{picked.length === 1 ? '' : 's'}
            </button>
          </div>
          {running && job?.mode === 'txt2img' && (
            <p className="hint" data-testid="blend-progress">
              {lost
                ? `Blending: ${waitingText(job)}`
                : job.total > 0
                  ? `Blending: step ${job.step}/${job.total}`
                  : 'Blending: starting…'}
            </p>
          )}
          {message && message.tab === 'txt2img' && !running && (
            <p className={`message ${message.kind}`} role={message.kind === 'error' ? 'alert' : 'status'}>
              {message.text}
            </p>
          )}
        </div>
      )}
    </div>
  )
}
