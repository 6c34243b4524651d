import { useState } from 'react'
import { downloadBytes, loadImage } from '../../canvas-kit/image-io'
import { useStore } from './store'
import { UpscaleAction } from '../upscale/UpscaleAction'
import { sendTo, setInput, STUDIO_TABS, studio, type ResultImage, type StudioTab } from './studio-state'

/** Before/after: the result over the input, clipped at a draggable split. */
export function CompareSlider({ before, after }: { before?: string; after: string }): React.JSX.Element {
  const [split, setSplit] = useState(50)
  if (!before) return <img className="result-image" src={after} alt="Result" data-testid="result-image" />
  return (
    <div className="compare" data-testid="compare">
      <img className="compare-before" src={before} alt="Before" draggable={false} />
      <img
        className="compare-after"
        src={after}
        alt="Result"
        data-testid="result-image"
        draggable={false}
        style={{ clipPath: `inset(0 0 0 ${split}%)` }}
      />
      <div className="compare-line" style={{ left: `${split}%` }} />
      <input
        type="range"
        className="compare-range"
        aria-label="Compare before and after"
        min={0}
        max={100}
        value={split}
        onChange={(e) => setSplit(Number(e.target.value))}
      />
    </div>
  )
}

const TAB_LABEL: Record<StudioTab, string> = { img2img: 'Img2img', inpaint: 'Inpaint', outpaint: 'Outpaint' }

/** Live preview while this tab's job runs; afterwards its results with compare, loopback and send-to. */
export function ResultsView({ tab }: { tab: StudioTab }): React.JSX.Element {
  const job = useStore(studio, (s) => (s.job?.mode === tab ? s.job : undefined))
  const results = useStore(studio, (s) => s.results[tab])
  const input = useStore(studio, (s) => s.inputs[tab])
  const [picked, setPicked] = useState(0)
  const current: ResultImage | undefined = results?.[Math.min(picked, (results?.length ?? 1) - 1)]

  if (job)
    return (
      <div className="results running" data-testid="results">
        {job.previewUrl ? (
          <img
            className="result-image preview"
            src={job.previewUrl}
            alt="Live preview"
            data-testid="live-preview"
          />
        ) : (
          <div className="placeholder-box">Waiting for the first preview…</div>
        )}
      </div>
    )
  if (!current)
    return (
      <div className="results empty" data-testid="results">
        <div className="placeholder-box">The result appears here.</div>
      </div>
    )

  const sameAspect =
    input && Math.abs(input.width / input.height - current.output.width / current.output.height) < 0.02
  const loopback = async (): Promise<void> => {
    setInput(tab, await loadImage(current.bytes, current.output.fileName))
  }
  return (
    <div className="results" data-testid="results">
      <CompareSlider before={sameAspect ? input.url : undefined} after={current.url} />
      <div className="well-bar">
        <span data-testid="result-info">
          {current.output.fileName} · {current.output.width}×{current.output.height}
          {current.output.seed !== undefined ? ` · seed ${current.output.seed}` : ''}
        </span>
      </div>
      {results && results.length > 1 && (
        <div className="thumbs">
          {results.map((r, i) => (
            <button
              key={r.output.id}
              type="button"
              className={i === picked ? 'active' : undefined}
              onClick={() => setPicked(i)}
            >
              <img src={r.url} alt={r.output.fileName} />
            </button>
          ))}
        </div>
      )}
      <div className="actions">
        <button type="button" data-testid="use-as-input" onClick={() => void loopback()}>
          Use as input
        </button>
        {STUDIO_TABS.filter((t) => t !== tab).map((t) => (
          <button
            key={t}
            type="button"
            data-testid={`send-to-${t}`}
            onClick={() => void sendTo(t, current.bytes, current.output.fileName)}
          >
            Send to {TAB_LABEL[t]}
          </button>
        ))}
        <button type="button" onClick={() => downloadBytes(current.bytes, current.output.fileName)}>
          Save as…
        </button>
        {tab === 'img2img' && <UpscaleAction key={current.output.id} galleryId={current.output.id} />}
      </div>
    </div>
  )
}
