import { useEffect, useRef } from 'react'
import { ASPECTS, floor8, sizeForAspect, snap8 } from '../../canvas-kit/geometry'
import { useConnection } from '../../api/use-connection'
import { EstimateLine } from './EstimateLine'
import { FewStepChip } from './FewStepChip'
import { waitingText } from './job-recovery'
import { familyBase } from './generation-adapter'
import { LoraPicker } from './LoraPicker'
import { ImagePrompts } from './ImagePrompts'
import { ModelPicker } from './ModelPicker'
import { VaePicker } from './VaePicker'
import { CLIP_SKIP_MAX, SAMPLERS, SCHEDULE_TYPES, type MemoryMode, type ModeInputs } from './params'
import { PromptField } from './PromptField'
import { useStore } from './store'
import {
  cancelJob,
  ensureLibrary,
  generate,
  selectedCheckpoint,
  setParams,
  studio,
  type StudioTab,
} from './studio-state'

/** The studio tabs, and Create (txt2img). */
type PanelMode = StudioTab | 'txt2img'

function formatEta(ms: number): string {
  if (!(ms > 0)) return '…'
  const s = Math.round(ms / 1000)
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`
}

/** Generate ⇄ Cancel, with the progress bar, step, ETA and the last message for this tab. */
function GenerateBar({
  mode,
  inputs,
  onGenerate,
}: {
  mode: PanelMode
  inputs: () => Promise<ModeInputs>
  onGenerate?: () => void
}): React.JSX.Element {
  const job = useStore(studio, (s) => s.job)
  const starting = useStore(studio, (s) => s.starting)
  const message = useStore(studio, (s) => s.message)
  const running = job !== undefined || starting
  // While the connection is down the job's fate is unknown: say so instead of a frozen "step 1/N".
  const lost = useConnection() === 'lost' && job !== undefined
  const start = useRef<() => void>(() => undefined)
  useEffect(() => {
    start.current = () => {
      if (running) return
      if (onGenerate) onGenerate()
      else void inputs().then((i) => generate(mode, i))
    }
  }, [running, onGenerate, inputs, mode])
  // Ctrl+Enter (Cmd+Enter) generates from anywhere on the page, as in A1111.
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault()
        start.current()
      }
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [])
  const fraction =
    job && job.total > 0 ? (job.batch * job.total + job.step) / (job.batchCount * job.total) : 0

  return (
    <div className="generate-bar">
      {running ? (
        <button
          type="button"
          className="primary cancel"
          data-testid="cancel"
          disabled={!job || job.cancelling || lost}
          title={lost ? 'Cancel needs the connection to Atelier' : undefined}
          onClick={() => void cancelJob()}
        >
          {job?.cancelling ? 'Cancelling…' : 'Cancel'}
        </button>
      ) : (
        <button
          type="button"
          className="primary"
          data-testid="generate"
          title="Generate (Ctrl+Enter)"
          onClick={() => start.current()}
        >
          Generate
        </button>
      )}
      {!running && <EstimateLine mode={mode} />}
      {running && (
        <div className={lost ? 'progress lost' : 'progress'} data-testid="progress">
          <div className="progress-track">
            <div className="progress-fill" style={{ width: `${Math.round(fraction * 100)}%` }} />
          </div>
          <span className="progress-text">
            {job && lost
              ? waitingText(job)
              : job && job.total > 0
                ? `${job.mode !== mode ? `${job.mode}: ` : ''}step ${job.step}/${job.total}` +
                  (job.batchCount > 1 ? ` · batch ${job.batch + 1}/${job.batchCount}` : '') +
                  ` · ETA ${formatEta(job.etaMs)}`
                : 'Starting… (loading the model the first time)'}
          </span>
        </div>
      )}
      {message && message.tab === mode && !running && (
        <p
          className={`message ${message.kind}`}
          role={message.kind === 'error' ? 'alert' : 'status'}
          data-testid="message"
        >
          {message.text}
        </p>
      )}
    </div>
  )
}

/**
 * The panel every studio tab shares: model and LoRAs, prompts, sampler, steps, CFG, seed, size, batch,
 * and Generate. `children` are the tab's own controls (strength, mask options, extents).
 */
export function GenerationPanel({
  mode,
  inputs,
  imageSize,
  onGenerate,
  hidePrompt = false,
  children,
}: {
  mode: PanelMode
  /** What Generate (and Ctrl+Enter) does instead of generating `mode` from the panel (Create's grid). */
  onGenerate?: () => void
  /** The page shows the prompt itself (Create's prompt bar). */
  hidePrompt?: boolean
  /** Collects the tab's image and mask bytes when Generate is pressed. */
  inputs: () => Promise<ModeInputs>
  /** The input image's size, for "size from image". */
  imageSize?: { width: number; height: number }
  children?: React.ReactNode
}): React.JSX.Element {
  const p = useStore(studio, (s) => s.params)
  const lastSeed = useStore(studio, (s) => s.lastSeed)
  const checkpoint = useStore(studio, selectedCheckpoint)
  const embeddings = useStore(studio, (s) => s.embeddings)
  useEffect(() => ensureLibrary(), [])
  const base = familyBase(checkpoint?.family ?? null)

  return (
    <aside className="gen-panel" aria-label="Generation settings">
      <GenerateBar mode={mode} inputs={inputs} {...(onGenerate ? { onGenerate } : {})} />
      <ModelPicker />
      <VaePicker />
      {!hidePrompt && (
        <PromptField
          label="Prompt"
          testId="prompt"
          value={p.prompt}
          onChange={(prompt) => setParams({ prompt })}
          embeddings={embeddings}
          placeholder="a watercolor of a lighthouse, (golden hour:1.2) <lora:name:0.8> --ar 3:2 --no text"
        />
      )}
      <PromptField
        label="Negative prompt"
        testId="negative-prompt"
        rows={2}
        value={p.negativePrompt}
        onChange={(negativePrompt) => setParams({ negativePrompt })}
        embeddings={embeddings}
      />
      <LoraPicker />
      <ImagePrompts mode={mode} />
      {children}
      <fieldset>
        <legend>Sampling</legend>
        <FewStepChip />
        <div className="grid2">
          <label>
            Sampler
            <select
              data-testid="sampler"
              value={p.sampler}
              onChange={(e) => setParams({ sampler: e.target.value })}
            >
              {SAMPLERS.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
          <label>
            Schedule type
            <select
              data-testid="schedule-type"
              value={p.scheduleType}
              onChange={(e) => setParams({ scheduleType: e.target.value })}
            >
              {SCHEDULE_TYPES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
          <label>
            Steps
            <input
              type="number"
              data-testid="steps"
              min={1}
              max={150}
              value={p.steps}
              onChange={(e) => setParams({ steps: Math.max(1, Math.round(Number(e.target.value) || 1)) })}
            />
          </label>
          <label>
            CFG scale
            <input
              type="number"
              data-testid="cfg"
              min={0}
              max={30}
              step={0.5}
              value={p.cfgScale}
              onChange={(e) => setParams({ cfgScale: Number(e.target.value) })}
            />
          </label>
          <label>
            Clip skip
            <input
              type="number"
              data-testid="clip-skip"
              min={1}
              max={CLIP_SKIP_MAX}
              title="Use the text encoder's N-th layer from the end (A1111 Clip skip; 1 = the last)"
              value={p.clipSkip}
              onChange={(e) =>
                setParams({
                  clipSkip: Math.max(1, Math.min(CLIP_SKIP_MAX, Math.round(Number(e.target.value) || 1))),
                })
              }
            />
          </label>
          <label>
            RNG
            <select
              data-testid="rng"
              value={p.rng}
              title="Start noise: GPU = NVIDIA's Philox (A1111's default), CPU = torch's CPU generator"
              onChange={(e) => setParams({ rng: e.target.value === 'gpu' ? 'gpu' : 'cpu' })}
            >
              <option value="cpu">CPU</option>
              <option value="gpu">GPU (NVIDIA)</option>
            </select>
          </label>
          <label className="span2">
            Seed
            <div className="row">
              <input
                type="number"
                data-testid="seed"
                value={p.seedMode === 'random' ? -1 : p.seed}
                onChange={(e) => {
                  const seed = Math.round(Number(e.target.value))
                  setParams(seed < 0 ? { seedMode: 'random', seed: -1 } : { seedMode: 'fixed', seed })
                }}
              />
              <button
                type="button"
                title="Random seed each time"
                aria-pressed={p.seedMode === 'random'}
                data-testid="seed-random"
                onClick={() => setParams({ seedMode: 'random', seed: -1 })}
              >
                Random
              </button>
              <button
                type="button"
                title={lastSeed === undefined ? 'No image yet' : `Reuse the last seed (${lastSeed})`}
                disabled={lastSeed === undefined}
                data-testid="seed-reuse"
                onClick={() => lastSeed !== undefined && setParams({ seedMode: 'fixed', seed: lastSeed })}
              >
                Last
              </button>
            </div>
          </label>
        </div>
      </fieldset>
      {mode !== 'outpaint' && (
        <fieldset>
          <legend>Size</legend>
          {mode !== 'txt2img' && (
            <label className="check">
              <input
                type="checkbox"
                data-testid="size-from-image"
                checked={p.sizeFromImage}
                onChange={(e) => setParams({ sizeFromImage: e.target.checked })}
              />
              From the input image
              {imageSize ? ` (${floor8(imageSize.width)}×${floor8(imageSize.height)})` : ''}
            </label>
          )}
          {(!p.sizeFromImage || mode === 'txt2img') && (
            <>
              <div className="aspects" role="group" aria-label="Aspect presets">
                {ASPECTS.map((a) => (
                  <button
                    key={a.label}
                    type="button"
                    onClick={() => setParams(sizeForAspect(base, a.w, a.h))}
                  >
                    {a.label}
                  </button>
                ))}
              </div>
              <div className="grid2">
                <label>
                  Width
                  <input
                    type="number"
                    data-testid="width"
                    step={8}
                    min={64}
                    max={4096}
                    value={p.width}
                    onChange={(e) => setParams({ width: Number(e.target.value) })}
                    onBlur={() => setParams({ width: snap8(p.width, 64) })}
                  />
                </label>
                <label>
                  Height
                  <input
                    type="number"
                    data-testid="height"
                    step={8}
                    min={64}
                    max={4096}
                    value={p.height}
                    onChange={(e) => setParams({ height: Number(e.target.value) })}
                    onBlur={() => setParams({ height: snap8(p.height, 64) })}
                  />
                </label>
              </div>
            </>
          )}
        </fieldset>
      )}
      {mode !== 'txt2img' && (
        <fieldset>
          <legend>Batch</legend>
          <div className="grid2">
            <label>
              Batch size
              <input
                type="number"
                min={1}
                max={16}
                value={p.batchSize}
                onChange={(e) =>
                  setParams({ batchSize: Math.min(16, Math.max(1, Math.round(Number(e.target.value)))) })
                }
              />
            </label>
            <label>
              Batch count
              <input
                type="number"
                min={1}
                max={100}
                value={p.batchCount}
                onChange={(e) =>
                  setParams({ batchCount: Math.min(100, Math.max(1, Math.round(Number(e.target.value)))) })
                }
              />
            </label>
          </div>
        </fieldset>
      )}
      <fieldset>
        <legend>Speed and memory</legend>
        <label
          className="check"
          title="Needs TAESD (TAESDXL for SDXL) in the library: Hugging Face madebyollin/taesd"
        >
          <input
            type="checkbox"
            data-testid="draft-decode"
            checked={p.draftDecode}
            onChange={(e) => setParams({ draftDecode: e.target.checked })}
          />
          Draft decode (TAESD: faster, a little softer)
        </label>
        <label>
          Memory mode
          <select
            data-testid="memory-mode"
            value={p.memoryMode}
            onChange={(e) => setParams({ memoryMode: e.target.value as MemoryMode })}
          >
            <option value="auto">Automatic</option>
            <option value="normal">Normal</option>
            <option value="low">Low memory (slower, about half the peak)</option>
          </select>
        </label>
      </fieldset>
    </aside>
  )
}
