import { useRef, useState } from 'react'
import type { GenerateMode } from '../../../../preload/contract-types'
import { familyLabel } from '../../../../preload/family-label'
import { imageFileOf, loadImageFile } from '../../canvas-kit/image-io'
import {
  addImagePrompt,
  imagePrompts,
  iwOf,
  MAX_IMAGE_PROMPTS,
  removeImagePrompt,
  setImagePromptWeight,
  takesImagePrompts,
} from './image-prompts'
import { AdapterCheck } from './AdapterCheck'
import { useStore } from './store'
import { useLibraryList } from './use-library-list'
import { selectedCheckpoint, studio } from './studio-state'

const thumb: React.CSSProperties = {
  width: 56,
  height: 56,
  objectFit: 'cover',
  borderRadius: 4,
  flex: 'none',
}

/**
 * Reference-image slots of the generation panel (IP-Adapter, Midjourney's image prompt): drop or open an
 * image, set its weight (the adapter scale; Midjourney --iw shown beside it), remove it. Several images are
 * averaged by weight and run at the largest weight. Image URLs typed at the start of the prompt, `--iw` and
 * `/blend` work too (main fetches URLs; this page never does).
 */
export function ImagePrompts({ mode }: { mode: GenerateMode }): React.JSX.Element | null {
  const slots = useStore(imagePrompts, (s) => s.slots)
  const adapter = useStore(imagePrompts, (s) => s.adapter)
  const encoder = useStore(imagePrompts, (s) => s.encoder)
  const checkpoint = useStore(studio, selectedCheckpoint)
  const adapters = useLibraryList('ip-adapter') ?? []
  const encoders = useLibraryList('image-encoder') ?? []
  const fileRef = useRef<HTMLInputElement>(null)
  const [error, setError] = useState<string>()
  const [dragging, setDragging] = useState(false)
  if (!takesImagePrompts(mode)) return null

  const take = (file: File | undefined): void => {
    if (!file) return
    loadImageFile(file).then(
      (img) => {
        setError(undefined)
        if (!addImagePrompt({ name: img.name, bytes: img.bytes, url: img.url }))
          setError(`At most ${MAX_IMAGE_PROMPTS} image prompts.`)
      },
      (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
    )
  }
  const fitting = adapters.filter((a) => !checkpoint?.family || !a.family || a.family === checkpoint.family)

  return (
    <fieldset className="image-prompts" data-testid="image-prompts">
      <legend>Image prompts</legend>
      <AdapterCheck purpose="Image prompts" compact={slots.length === 0} />
      {slots.map((s) => (
        <div key={s.id} className="lora-row" data-testid="ip-slot" style={{ alignItems: 'center' }}>
          {s.url ? <img src={s.url} alt={s.name} style={thumb} /> : <span className="hint">{s.name}</span>}
          <input
            type="range"
            min={0}
            max={2}
            step={0.05}
            value={s.weight}
            data-testid="ip-weight"
            aria-label={`${s.name} weight`}
            title="IP-Adapter scale (A1111 / ComfyUI weight)"
            onChange={(e) => setImagePromptWeight(s.id, Number(e.target.value))}
          />
          <span className="num" title={`Midjourney --iw ${iwOf(s.weight).toFixed(1)}`}>
            {s.weight.toFixed(2)}
          </span>
          <button
            type="button"
            aria-label={`Remove ${s.name}`}
            data-testid="ip-remove"
            onClick={() => removeImagePrompt(s.id)}
          >
            ×
          </button>
        </div>
      ))}
      {slots.length < MAX_IMAGE_PROMPTS && (
        <div
          role="button"
          tabIndex={0}
          className={`drop-zone${dragging ? ' dragging' : ''}`}
          data-testid="ip-drop"
          style={{
            padding: '8px',
            border: '1px dashed currentColor',
            borderRadius: 4,
            cursor: 'pointer',
            opacity: 0.8,
          }}
          onClick={() => fileRef.current?.click()}
          onKeyDown={(e) => (e.key === 'Enter' || e.key === ' ') && fileRef.current?.click()}
          onDragOver={(e) => {
            if (!Array.from(e.dataTransfer.types).includes('Files')) return
            e.preventDefault()
            setDragging(true)
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => {
            e.preventDefault()
            setDragging(false)
            take(imageFileOf(e.dataTransfer))
          }}
        >
          {slots.length ? 'Add another reference image' : 'Drop a reference image (or click)'}
        </div>
      )}
      <input
        ref={fileRef}
        type="file"
        accept="image/png,image/jpeg,image/webp"
        hidden
        data-testid="ip-file"
        onChange={(e) => {
          take(e.target.files?.[0])
          e.target.value = ''
        }}
      />
      {error && (
        <p className="hint error" role="alert">
          {error}
        </p>
      )}
      {slots.length > 0 && (
        <div className="grid2">
          <label>
            IP-Adapter
            <select
              data-testid="ip-adapter"
              value={adapter}
              onChange={(e) => imagePrompts.set({ adapter: e.target.value })}
            >
              <option value="">{fitting.length ? 'Library default' : 'None in the library'}</option>
              {adapters.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name} · {familyLabel(a.family)}
                </option>
              ))}
            </select>
          </label>
          <label>
            Image encoder
            <select
              data-testid="ip-encoder"
              value={encoder}
              onChange={(e) => imagePrompts.set({ encoder: e.target.value })}
            >
              <option value="">{encoders.length ? 'Matching the adapter' : 'None in the library'}</option>
              {encoders.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.architecture ? `${m.name} · ${m.architecture}` : m.name}
                </option>
              ))}
            </select>
          </label>
        </div>
      )}
      {slots.length > 1 && <p className="hint">Several images are averaged by weight (Midjourney /blend).</p>}
    </fieldset>
  )
}
