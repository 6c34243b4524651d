/**
 * Studio state shared by the Img2img, Inpaint and Outpaint tabs and the Gallery: the generation
 * parameters, each tab's input image, the running job with its live preview, the last results, and the
 * library lists for the pickers. Lives outside React so switching sections keeps everything.
 */
import type {
  GenerateMode,
  GenerateRequest,
  GenerationResult,
  OutputImage,
} from '../../../../preload/contract-types'
import { bytesUrl, loadImage, releaseImage, type LoadedImage } from '../../canvas-kit/image-io'
import { gallery, generation, library, type LibraryModel } from './generation-adapter'
import { buildRequest, DEFAULT_PARAMS, type GenerationParams, type ModeInputs } from './params'
import { withUpscaleOptions } from '../upscale/upscale-options'
import { withImagePrompts } from './image-prompts'
import { createStore } from './store'

export type StudioTab = 'img2img' | 'inpaint' | 'outpaint'
export const STUDIO_TABS: readonly StudioTab[] = ['img2img', 'inpaint', 'outpaint']

export interface ResultImage {
  output: OutputImage
  bytes: Uint8Array
  url: string
}

export interface RunningJob {
  jobId: string
  mode: GenerateMode
  step: number
  total: number
  batch: number
  batchCount: number
  etaMs: number
  startedAt: number
  previewUrl?: string
  cancelling: boolean
}

export interface StudioState {
  params: GenerationParams
  inputs: Partial<Record<StudioTab, LoadedImage>>
  results: Partial<Record<StudioTab, ResultImage[]>>
  /** Seed of the last finished image (the "reuse last seed" button). */
  lastSeed?: number
  /** Starting (request sent, no job id yet) or running. */
  starting: boolean
  job?: RunningJob
  /** Last error or notice per tab, shown under the Generate button. */
  message?: { tab: GenerateMode; kind: 'error' | 'info'; text: string }
  checkpoints: LibraryModel[]
  loras: LibraryModel[]
  libraryError?: string
  /** Bumped whenever a generation finishes (the gallery refreshes on it). */
  outputsVersion: number
}

export const studio = createStore<StudioState>({
  params: DEFAULT_PARAMS,
  inputs: {},
  results: {},
  starting: false,
  checkpoints: [],
  loras: [],
  outputsVersion: 0,
})

export function setParams(patch: Partial<GenerationParams>): void {
  studio.set((s) => ({ params: { ...s.params, ...patch } }))
}

export function setInput(tab: StudioTab, img: LoadedImage | undefined): void {
  const old = studio.get().inputs[tab]
  if (old && old !== img) releaseUnlessShared(old, tab)
  studio.set((s) => ({ inputs: { ...s.inputs, [tab]: img } }))
}

function releaseUnlessShared(img: LoadedImage, tab: StudioTab): void {
  const inputs = studio.get().inputs
  const elsewhere = STUDIO_TABS.some((t) => t !== tab && inputs[t] === img)
  if (!elsewhere) releaseImage(img)
}

/** Put bytes (a result, a gallery image) into a tab as its input, and switch to that tab. */
export async function sendTo(tab: StudioTab, bytes: Uint8Array, name: string): Promise<void> {
  const img = await loadImage(bytes, name)
  setInput(tab, img)
  location.hash = `#/${tab}`
}

export function notify(tab: GenerateMode, kind: 'error' | 'info', text: string): void {
  studio.set({ message: { tab, kind, text } })
}

// ------------------------------------------------------------------------------------ library lists

let libraryLoaded = false

export async function refreshLibrary(): Promise<void> {
  const [c, l] = await Promise.all([library.list('checkpoint'), library.list('lora')])
  if (!c.ok) {
    studio.set({ libraryError: c.error.message })
    return
  }
  const checkpoints = c.value.filter((m) => !m.problem)
  const loras = l.ok ? l.value.filter((m) => !m.problem) : []
  studio.set({ checkpoints, loras, libraryError: undefined })
  const p = studio.get().params
  const runnable = checkpoints.filter((m) => !m.note)
  if (!p.model && runnable[0]) setParams({ model: runnable[0].id })
}

/** Load the lists once and keep them fresh on `library:changed`. */
export function ensureLibrary(): void {
  if (libraryLoaded) return
  libraryLoaded = true
  void refreshLibrary()
  library.onChanged(() => void refreshLibrary())
}

// ------------------------------------------------------------------------------------ jobs

let eventsHooked = false
/** Finished events that arrived before `generate:start` answered (tiny jobs, early failures). */
const early = new Map<string, GenerationResult>()

function hookEvents(): void {
  if (eventsHooked) return
  eventsHooked = true
  generation.onProgress((p) => {
    const job = studio.get().job
    if (!job || job.jobId !== p.jobId) return
    let previewUrl = job.previewUrl
    if (p.preview && p.preview.length > 0) {
      if (previewUrl) URL.revokeObjectURL(previewUrl)
      previewUrl = bytesUrl(p.preview)
    }
    studio.set({
      job: {
        ...job,
        step: p.step,
        total: p.total,
        batch: p.batch,
        batchCount: p.batchCount,
        etaMs: p.etaMs,
        previewUrl,
      },
    })
  })
  generation.onFinished((r) => {
    const job = studio.get().job
    if (!job || job.jobId !== r.jobId) {
      early.set(r.jobId, r)
      return
    }
    void finish(job, r)
  })
}

async function finish(job: RunningJob, r: GenerationResult): Promise<void> {
  const tab = job.mode
  const images: ResultImage[] = []
  for (const output of r.images) {
    const b = await gallery.image(output.id)
    if (b.ok) images.push({ output, bytes: b.value, url: bytesUrl(b.value) })
  }
  if (job.previewUrl) URL.revokeObjectURL(job.previewUrl)
  const s = studio.get()
  const patch: Partial<StudioState> = { job: undefined, outputsVersion: s.outputsVersion + 1 }
  if (images.length > 0 && tab !== 'txt2img') {
    for (const old of s.results[tab] ?? []) URL.revokeObjectURL(old.url)
    patch.results = { ...s.results, [tab]: images }
  }
  const seed = images[0]?.output.seed
  if (seed !== undefined) patch.lastSeed = seed
  if (r.state === 'failed')
    patch.message = { tab, kind: 'error', text: r.error?.message ?? 'The generation failed.' }
  else if (r.state === 'cancelled')
    patch.message = {
      tab,
      kind: 'info',
      text: images.length > 0 ? `Cancelled; ${images.length} image(s) kept.` : 'Cancelled.',
    }
  else
    patch.message = {
      tab,
      kind: 'info',
      text: `Done in ${(r.elapsedMs / 1000).toFixed(1)} s: ${images.map((i) => i.output.fileName).join(', ')}`,
    }
  studio.set(patch)
}

/**
 * Build the request for a tab and start it; errors (missing model, image, mask) are shown, not thrown.
 * `adjust` rewrites the built request (the Gallery's Blend action).
 */
export async function generate(
  mode: GenerateMode,
  inputs: ModeInputs,
  adjust?: (req: GenerateRequest) => GenerateRequest,
): Promise<void> {
  hookEvents()
  const s = studio.get()
  if (s.job || s.starting) return
  let req
  try {
    req = withImagePrompts(mode, withUpscaleOptions(mode, buildRequest(mode, s.params, inputs)))
    // Names resolve through the library and through a plain folder search alike; ids only through the library.
    const ck = selectedCheckpoint(s)
    if (ck) req.model = ck.name
    if (adjust) req = adjust(req)
  } catch (err) {
    notify(mode, 'error', err instanceof Error ? err.message : String(err))
    return
  }
  studio.set({ starting: true, message: undefined })
  const r = await generation.start(req)
  if (!r.ok) {
    studio.set({ starting: false, message: { tab: mode, kind: 'error', text: r.error.message } })
    return
  }
  const job: RunningJob = {
    jobId: r.value.jobId,
    mode,
    step: 0,
    total: 0,
    batch: 0,
    batchCount: s.params.batchCount,
    etaMs: 0,
    startedAt: Date.now(),
    cancelling: false,
  }
  studio.set({ starting: false, job })
  const done = early.get(job.jobId)
  if (done) {
    early.delete(job.jobId)
    await finish(job, done)
  }
}

export async function cancelJob(): Promise<void> {
  const job = studio.get().job
  if (!job || job.cancelling) return
  studio.set({ job: { ...job, cancelling: true } })
  const r = await generation.cancel(job.jobId)
  if (!r.ok) notify(job.mode, 'error', r.error.message)
}

/** The selected checkpoint's record, if it is in the library. */
export function selectedCheckpoint(s: StudioState): LibraryModel | undefined {
  return s.checkpoints.find((m) => m.id === s.params.model || m.name === s.params.model)
}
