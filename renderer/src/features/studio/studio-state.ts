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
import {
  buildRequest,
  DEFAULT_PARAMS,
  restoreParameters,
  type GenerationParams,
  type ModeInputs,
} from './params'
import { api } from '../../api/client'
import { withUpscaleOptions } from '../upscale/upscale-options'
import { withImagePrompts } from './image-prompts'
import { createStore } from './store'
import { lostJobMessage } from './job-recovery'

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
  /** The request as sent (Create's U/V/re-roll start from it; restored after a reload). */
  request?: GenerateRequest
  /** What started it in Create: 'grid', 'U2', 'V3', 're-roll'. */
  action?: string
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
  /** Separate VAEs in the library (the VAE select; Automatic = the checkpoint's own). */
  vaes: LibraryModel[]
  /** Names prompts use for the installed textual-inversion embeddings (file names without extension). */
  embeddings: string[]
  libraryError?: string
  /** Bumped whenever a generation finishes (the gallery refreshes on it). */
  outputsVersion: number
  /** Create's last grid (or upscale / variations) and the request that made it. */
  create?: { request: GenerateRequest; images: ResultImage[]; action: string }
}

export const studio = createStore<StudioState>({
  params: DEFAULT_PARAMS,
  inputs: {},
  results: {},
  starting: false,
  checkpoints: [],
  loras: [],
  vaes: [],
  embeddings: [],
  outputsVersion: 0,
})

const LAST_MODEL_KEY = 'atelier-last-checkpoint'
const LAST_VAE_KEY = 'atelier-last-vae'

export function setParams(patch: Partial<GenerationParams>): void {
  studio.set((s) => ({ params: { ...s.params, ...patch } }))
  // The chosen checkpoint and VAE survive a reload ('' = Automatic).
  try {
    if (patch.model) localStorage.setItem(LAST_MODEL_KEY, patch.model)
    if (patch.vae !== undefined) localStorage.setItem(LAST_VAE_KEY, patch.vae)
  } catch {
    // storage off (private mode): nothing to remember
  }
}

function storedValue(key: string): string | undefined {
  try {
    return localStorage.getItem(key) ?? undefined
  } catch {
    return undefined
  }
}

function rememberedModel(): string | undefined {
  return storedValue(LAST_MODEL_KEY)
}

export function setInput(tab: StudioTab, img: LoadedImage | undefined): void {
  const old = studio.get().inputs[tab]
  if (old && old !== img) releaseUnlessShared(old, tab)
  // A new input makes the tab's last error moot ("Add an input image first", the size of the old one).
  studio.set((s) => ({
    inputs: { ...s.inputs, [tab]: img },
    ...(s.message?.tab === tab && s.message.kind === 'error' ? { message: undefined } : {}),
  }))
}

function releaseUnlessShared(img: LoadedImage, tab: StudioTab): void {
  const inputs = studio.get().inputs
  const elsewhere = STUDIO_TABS.some((t) => t !== tab && inputs[t] === img)
  if (!elsewhere) releaseImage(img)
}

/**
 * Put bytes (a result, a gallery image) into a tab as its input with its prompt, negative prompt and seed,
 * and switch to that tab.
 */
export async function sendTo(tab: StudioTab, bytes: Uint8Array, name: string): Promise<void> {
  const img = await loadImage(bytes, name)
  setInput(tab, img)
  const r = await gallery.parameters(bytes)
  if (r.ok && r.value.text) {
    const { patch } = restoreParameters(r.value)
    const keep: Partial<GenerationParams> = {}
    if (patch.prompt !== undefined) keep.prompt = r.value.settings['Midjourney prompt'] ?? patch.prompt
    if (patch.negativePrompt !== undefined && r.value.settings['Midjourney prompt'] === undefined)
      keep.negativePrompt = patch.negativePrompt
    if (patch.seed !== undefined) Object.assign(keep, { seed: patch.seed, seedMode: 'fixed' as const })
    setParams(keep)
  }
  location.hash = `#/${tab}`
}

export function notify(tab: GenerateMode, kind: 'error' | 'info', text: string): void {
  studio.set({ message: { tab, kind, text } })
}

// ------------------------------------------------------------------------------------ library lists

let libraryLoaded = false

export async function refreshLibrary(): Promise<void> {
  const [c, l, e, v] = await Promise.all([
    library.list('checkpoint'),
    library.list('lora'),
    library.list('embedding'),
    library.list('vae'),
  ])
  if (!c.ok) {
    studio.set({ libraryError: c.error.message })
    return
  }
  const checkpoints = c.value.filter((m) => !m.problem)
  const loras = l.ok ? l.value.filter((m) => !m.problem) : []
  const embeddings = e.ok
    ? e.value.filter((m) => !m.problem).map((m) => m.fileName.replace(/\.(safetensors|pt|bin)$/i, ''))
    : []
  const vaes = v.ok ? v.value.filter((m) => !m.problem) : []
  studio.set({ checkpoints, loras, vaes, embeddings, libraryError: undefined })
  const p = studio.get().params
  const lastVae = storedValue(LAST_VAE_KEY)
  if (!p.vae && lastVae) {
    const hit = vaes.find((m) => m.id === lastVae || m.name === lastVae)
    if (hit) setParams({ vae: hit.id })
  }
  const runnable = checkpoints.filter((m) => !m.note)
  const last = rememberedModel()
  const remembered = last ? checkpoints.find((m) => m.id === last || m.name === last) : undefined
  if (!p.model && (remembered ?? runnable[0])) setParams({ model: (remembered ?? runnable[0])!.id })
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
  if (images.length > 0 && tab === 'txt2img' && job.request) {
    for (const old of s.create?.images ?? []) URL.revokeObjectURL(old.url)
    let request = job.request
    // A random variation seed (-1) was chosen in main: read it back, so U of a variation upscales that image.
    if (request.variationStrength && (request.variationSeed ?? -1) < 0 && images[0]) {
      const p = await gallery.parameters(images[0].bytes)
      const v = p.ok ? Number(p.value.settings['Variation seed']) : NaN
      if (Number.isInteger(v) && v >= 0) request = { ...request, variationSeed: v }
    }
    patch.create = { request, images, action: job.action ?? 'grid' }
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
  await startRequest(req, mode === 'txt2img' ? 'grid' : mode)
}

/** Start a built request (Create's U/V/re-roll build theirs from the grid's). */
export async function startRequest(req: GenerateRequest, action: string): Promise<void> {
  hookEvents()
  const s = studio.get()
  if (s.job || s.starting) return
  const mode = req.mode
  studio.set({ starting: true, message: undefined })
  const r = await generation.start(req)
  if (!r.ok) {
    studio.set({ starting: false, message: { tab: mode, kind: 'error', text: r.error.message } })
    return
  }
  const job: RunningJob = {
    jobId: r.value.jobId,
    mode,
    request: req,
    action,
    step: 0,
    total: 0,
    batch: 0,
    batchCount: req.batchCount ?? 1,
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

// ------------------------------------------------------------------------------------ reattach

let attached = false

/** Parameters shown again for a job found running after a reload. */
function paramsFromRequest(req: GenerateRequest): Partial<GenerationParams> {
  return {
    model: req.model,
    prompt: req.prompt,
    negativePrompt: req.negativePrompt ?? '',
    ...(req.sampler ? { sampler: req.sampler } : {}),
    scheduleType: req.scheduleType ?? 'Automatic',
    ...(req.steps ? { steps: req.steps } : {}),
    ...(req.cfgScale !== undefined ? { cfgScale: req.cfgScale } : {}),
    ...(req.seed !== undefined && req.seed >= 0
      ? { seed: req.seed, seedMode: 'fixed' as const }
      : { seed: -1, seedMode: 'random' as const }),
    ...(req.width && req.height ? { width: req.width, height: req.height } : {}),
    ...(req.batchSize ? { batchSize: req.batchSize } : {}),
    ...(req.batchCount ? { batchCount: req.batchCount } : {}),
    ...(req.strength !== undefined ? { strength: req.strength } : {}),
  }
}

/**
 * Finds generation jobs still running in main (after a reload, or when the connection comes back) and
 * shows the newest one: progress, preview, Cancel, and its parameters in the panel. A job this page
 * followed that is gone (finished while the connection was down, or the server restarted) is let go
 * with a message instead of leaving the panel frozen.
 */
export async function reattach(): Promise<void> {
  hookEvents()
  const r = await api.invoke('generate:active', {})
  if (!r.ok) return
  const s = studio.get()
  const active = r.value
  if (s.job && !active.some((a) => a.jobId === s.job?.jobId)) {
    const lost = s.job
    // Finished jobs stay in `jobs:list` for an hour; a job it does not know was lost with a restart.
    const jobs = await api.invoke('jobs:list', {})
    const record = jobs.ok ? jobs.value.find((j) => j.id === lost.jobId) : undefined
    if (studio.get().job?.jobId !== lost.jobId) return
    if (lost.previewUrl) URL.revokeObjectURL(lost.previewUrl)
    studio.set({
      job: undefined,
      starting: false,
      outputsVersion: studio.get().outputsVersion + 1,
      message: { tab: lost.mode, ...lostJobMessage(lost, record) },
    })
  }
  const newest = active[active.length - 1]
  if (!newest || studio.get().job) return
  const p = newest.progress
  const job: RunningJob = {
    jobId: newest.jobId,
    mode: newest.request.mode,
    request: newest.request,
    action: newest.request.mode === 'txt2img' ? 'grid' : newest.request.mode,
    step: p?.step ?? 0,
    total: p?.total ?? 0,
    batch: p?.batch ?? 0,
    batchCount: p?.batchCount ?? newest.request.batchCount ?? 1,
    etaMs: p?.etaMs ?? 0,
    startedAt: newest.startedAt,
    ...(p?.preview && p.preview.length > 0 ? { previewUrl: bytesUrl(p.preview) } : {}),
    cancelling: false,
  }
  setParams(paramsFromRequest(newest.request))
  studio.set({ job })
  const done = early.get(job.jobId)
  if (done) {
    early.delete(job.jobId)
    await finish(job, done)
  }
}

/** Once per page: reattach now, and again each time the connection comes back. */
export function ensureAttached(): void {
  if (attached) return
  attached = true
  void reattach()
  api.onConnection((state) => {
    if (state === 'open') void reattach()
  })
}
