import { useCallback } from 'react'
import { useConnection } from '../../api/use-connection'
import { downloadBytes } from '../../canvas-kit/image-io'
import { GenerationPanel } from '../studio/GenerationPanel'
import { waitingText } from '../studio/job-recovery'
import type { ModeInputs } from '../studio/params'
import { useStore } from '../studio/store'
import { generate, sendTo, startRequest, studio } from '../studio/studio-state'
import { HiresOptions } from '../upscale/UpscaleOptions'
import { UpscalerSelect } from '../upscale/UpscalerSelect'
import {
  createSettings,
  rerollRequest,
  setCreateSettings,
  upscaleRequest,
  variationRequest,
} from './create-actions'
import { MidjourneyBar } from './MidjourneyBar'

const noInputs = async (): Promise<ModeInputs> => ({})

function runGrid(): void {
  const size = createSettings.get().gridSize
  void generate('txt2img', {}, (req) => ({ ...req, batchSize: size, batchCount: 1 }))
}

const ACTION_TITLE: Record<string, string> = { grid: 'Grid', 're-roll': 'Re-roll' }

function actionTitle(action: string): string {
  if (ACTION_TITLE[action]) return ACTION_TITLE[action]
  if (/^U\d$/.test(action)) return `Upscale of image ${action.slice(1)}`
  if (/^V\d$/.test(action)) return `Variations of image ${action.slice(1)}`
  return action
}

/** Midjourney's grid: the images of the last batch, U1–U4, V1–V4 and re-roll under them. */
function CreateGrid(): React.JSX.Element {
  const job = useStore(studio, (s) => (s.job?.mode === 'txt2img' ? s.job : undefined))
  const busy = useStore(studio, (s) => s.job !== undefined || s.starting)
  const last = useStore(studio, (s) => s.create)
  const lost = useConnection() === 'lost'

  if (job)
    return (
      <div className="create-grid running" data-testid="create-grid" aria-busy="true">
        <p className="grid-title" data-testid="grid-title">
          {actionTitle(job.action ?? 'grid')} —{' '}
          {lost ? waitingText(job) : `step ${job.step}/${job.total || '…'}`}
        </p>
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
  if (!last)
    return (
      <div className="create-grid empty" data-testid="create-grid">
        <div className="placeholder-box">
          Type a prompt and press Enter. You get a grid of four; then U1–U4 upscale one image and V1–V4 make
          variations of it.
        </div>
      </div>
    )
  const images = last.images
  const seedOf = (i: number): number => images[i]?.output.seed ?? 0
  return (
    <div className="create-grid" data-testid="create-grid">
      <p className="grid-title" data-testid="grid-title">
        {actionTitle(last.action)} · {images[0]?.output.width}×{images[0]?.output.height}
      </p>
      <div className={images.length === 1 ? 'grid-images single' : 'grid-images'}>
        {images.map((img, i) => (
          <figure key={img.output.id} data-testid={`grid-image-${i + 1}`} data-file={img.output.fileName}>
            <img src={img.url} alt={`Image ${i + 1}, seed ${img.output.seed ?? '?'}`} />
            <figcaption>
              {i + 1} · seed {img.output.seed ?? '?'}
              <button
                type="button"
                className="link"
                aria-label={`Send image ${i + 1} to Img2img`}
                onClick={() => void sendTo('img2img', img.bytes, img.output.fileName)}
              >
                → Img2img
              </button>
              <button
                type="button"
                className="link"
                aria-label={`Save image ${i + 1}`}
                onClick={() => downloadBytes(img.bytes, img.output.fileName)}
              >
                Save
              </button>
            </figcaption>
          </figure>
        ))}
      </div>
      <div
        className={images.length === 1 ? 'grid-actions single' : 'grid-actions'}
        role="group"
        aria-label="Upscale, vary or re-roll"
      >
        {images.length > 1 &&
          images.map((_, i) => (
            <button
              key={`u${i}`}
              type="button"
              data-testid={`U${i + 1}`}
              disabled={busy}
              title={`Upscale image ${i + 1} (hires fix with seed ${seedOf(i)})`}
              onClick={() => void startRequest(upscaleRequest(last.request, i, seedOf(i)), `U${i + 1}`)}
            >
              U{i + 1}
            </button>
          ))}
        <button
          type="button"
          className="reroll"
          data-testid="reroll"
          aria-label="Re-roll: the same prompt with a new seed"
          title="Re-roll: the same prompt with a new seed"
          disabled={busy}
          onClick={() => void startRequest(rerollRequest(last.request), 're-roll')}
        >
          ↻
        </button>
        {images.map((_, i) => (
          <button
            key={`v${i}`}
            type="button"
            data-testid={`V${i + 1}`}
            disabled={busy}
            title={`Four variations of image ${i + 1} (its seed with A1111 variation seeds)`}
            onClick={() => void startRequest(variationRequest(last.request, seedOf(i)), `V${i + 1}`)}
          >
            V{i + 1}
          </button>
        ))}
      </div>
    </div>
  )
}

/** U/V settings: how U upscales, how strong V varies, and the grid size. */
function CreateOptions(): React.JSX.Element {
  const s = useStore(createSettings, (x) => x)
  return (
    <fieldset data-testid="create-options">
      <legend>Grid, U and V</legend>
      <div className="grid2">
        <label>
          Images per grid
          <input
            type="number"
            min={1}
            max={8}
            value={s.gridSize}
            onChange={(e) =>
              setCreateSettings({
                gridSize: Math.min(8, Math.max(1, Math.round(Number(e.target.value) || 1))),
              })
            }
          />
        </label>
        <label>
          V: variation strength
          <input
            type="number"
            data-testid="variation-strength"
            min={0.01}
            max={1}
            step={0.05}
            value={s.variationStrength}
            onChange={(e) =>
              setCreateSettings({
                variationStrength: Math.min(1, Math.max(0.01, Number(e.target.value) || 0.01)),
              })
            }
          />
        </label>
        <label>
          U: upscaler
          <UpscalerSelect
            latent
            testId="u-upscaler"
            label="Upscaler for U1–U4"
            value={s.upscaler}
            onChange={(upscaler) => setCreateSettings({ upscaler })}
          />
        </label>
        <label>
          U: upscale by
          <input
            type="number"
            min={1}
            max={4}
            step={0.25}
            value={s.upscaleScale}
            onChange={(e) =>
              setCreateSettings({ upscaleScale: Math.min(4, Math.max(1, Number(e.target.value) || 1)) })
            }
          />
        </label>
      </div>
    </fieldset>
  )
}

/** Create: text to image with Midjourney's prompt bar and grid, and the studio's generation panel. */
export function CreatePage(): React.JSX.Element {
  const submit = useCallback(() => runGrid(), [])
  return (
    <section className="studio create">
      <div className="studio-main create-main">
        <MidjourneyBar onSubmit={submit} />
        <CreateGrid />
      </div>
      <GenerationPanel mode="txt2img" inputs={noInputs} onGenerate={submit} hidePrompt>
        <HiresOptions />
        <CreateOptions />
      </GenerationPanel>
    </section>
  )
}
