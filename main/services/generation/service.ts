import path from 'node:path'
import type {
  ActiveGeneration,
  ApiError,
  GenerateRequest,
  GenerationEstimateInfo,
  GenerationProgress,
  GenerationResult,
  MidjourneyParse,
  JobRef,
  OutputImage,
} from '../../../preload/contract-types'
import { generateRequestSchema } from '../../../preload/contract'
import { extractExtraNetworks } from '../../engine/prompt'
import { schedulerInfo, schedulerNames } from '../../engine/schedulers'
import { K_SAMPLERS, splitSamplerName } from '../../engine/kdiffusion'
import { hasKSampler } from '../../engine/pipelines/ksampling'
import { DEFAULT_SAMPLER, studioSampler } from '../../engine/pipelines/generate'
import { AppError, invalidInput } from '../errors'
import { estimateGeneration } from '../estimate/estimate'
import type { EventBus } from '../events'
import type { JobContext, JobManager } from '../jobs'
import type { GalleryStore } from './gallery'
import type { FromWorker, ResolvedLora, ResolvedVae, WorkerJob } from './protocol'
import type { GenerationResolvers } from './resolve'
import { OWN_VAE } from './resolve'
import { GenerationWorker, type WorkerHandlers } from './worker-client'
import { describeMidjourney, prepareImagePrompts } from '../image-prompts/prepare'
import type { ImageFetcher } from '../models/images'
import type { ProviderPreference } from '../../engine/runtime/providers'
import type { ComputePrecision } from '../../engine/runtime/session'

/** What the last job's sessions opened on (the status bar's provider). */
export interface EngineState {
  preference: ProviderPreference
  provider: string
  fallbackReason?: string
  /** What the UNet computed in: 'fp16' (a GPU provider, or the CPU's emulated check) or 'fp32'. */
  compute?: string
}

export interface GenerationServiceOptions {
  bus: EventBus
  jobs: JobManager
  gallery: GalleryStore
  resolvers: GenerationResolvers
  cacheRoot: string
  appVersion: string
  /** Tokenizer folder or BPE file for checkpoints without one (default lookup otherwise). */
  tokenizer?: string
  /** The data folder's CLIP tokenizer cache (appPaths().tokenizers/openai-clip-vit-large-patch14). */
  tokenizerCacheDir?: string
  /** The Settings execution provider, read when a job starts. */
  executionProvider?: () => ProviderPreference
  /** The Settings GPU compute precision, read when a job starts (default fp16; the CPU computes fp32). */
  computePrecision?: () => ComputePrecision
  /** `<data folder>/calibration.json` (pre-flight estimates; the worker calibrates once per family). */
  calibrationFile?: string
  /** Test hook: how the worker is made. */
  makeWorker?: (h: WorkerHandlers) => GenerationWorker
  /**
   * After a cancel, how long the worker may take to stop at its next step before it is terminated (a
   * 4096² step can take minutes); default 2 s. The next job starts a fresh worker.
   */
  cancelGraceMs?: number
  /** How image-prompt URLs are fetched (default: services/models/images fetchImage). */
  fetchImage?: ImageFetcher
}

interface Running {
  jobId: string
  started: number
  images: OutputImage[]
  saving: Promise<void>
  ctx: JobContext
  resolve: () => void
  reject: (e: AppError) => void
}

/** A request as the studio shows it again: without the bytes of input images, masks and image prompts. */
function forDisplay(req: GenerateRequest): GenerateRequest {
  const { image: _image, mask: _mask, imagePrompts, ...rest } = req
  const refs = (imagePrompts ?? []).filter((p) => p.image === undefined)
  return { ...rest, ...(refs.length ? { imagePrompts: refs } : {}) }
}

function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32)
}

/** Semantic checks the schema cannot express; every message names the field. */
export function checkRequest(req: GenerateRequest): void {
  const needsImage = req.mode !== 'txt2img'
  if (needsImage && !req.image)
    throw new AppError('invalid-input', `${req.mode} needs an input image (image).`)
  if (req.mode === 'inpaint' && !req.mask)
    throw new AppError('invalid-input', 'inpaint needs a mask image (mask).')
  if (req.mode === 'outpaint') {
    const o = req.outpaint ?? {}
    const total = (o.left ?? 0) + (o.right ?? 0) + (o.top ?? 0) + (o.bottom ?? 0)
    if (total === 0 && !((o.zoomOut ?? 1) > 1))
      throw new AppError(
        'invalid-input',
        'outpaint needs at least one of left/right/top/bottom > 0 (or zoomOut > 1).',
      )
  }
  if (
    req.sampler !== undefined &&
    !schedulerInfo(req.sampler) &&
    !hasKSampler(splitSamplerName(req.sampler).sampler)
  )
    throw new AppError(
      'invalid-input',
      `Unknown sampler "${req.sampler}"; known samplers: ${[...new Set([...K_SAMPLERS.map((k) => k.name), ...schedulerNames()])].join(', ')}.`,
    )
  try {
    studioSampler({
      sampler: req.sampler ?? DEFAULT_SAMPLER,
      scheduleType: req.scheduleType,
      samplerConvention: req.samplerConvention,
    })
  } catch (err) {
    throw new AppError('invalid-input', `${err instanceof Error ? err.message : String(err)}.`)
  }
  if (req.strength !== undefined && req.strength <= 0 && req.mode !== 'txt2img')
    throw new AppError('invalid-input', 'strength must be greater than 0.')
}

/**
 * Generation jobs: one queue, run one at a time on a worker thread (the model stays loaded between
 * jobs), progress as `generate:progress` events (and `jobs:progress`), cancellation through the job's
 * signal (the worker stops before its next step), results saved to the gallery and announced with
 * `generate:finished`. A crashed worker fails its job with a readable error and is restarted for the next.
 */
export class GenerationService {
  private worker: GenerationWorker | undefined
  private queue: Promise<void> = Promise.resolve()
  private running: Running | undefined
  private disposed = false
  /** Queued and running jobs, for a studio that reattaches after a reload. */
  private readonly active = new Map<string, ActiveGeneration>()
  private engineState: EngineState | undefined

  constructor(private readonly o: GenerationServiceOptions) {}

  /** Pre-flight time and peak-memory estimate of a request (nothing is loaded or run). */
  async estimate(input: GenerateRequest): Promise<GenerationEstimateInfo> {
    const parsed = generateRequestSchema.safeParse(input)
    if (!parsed.success)
      throw new AppError(
        'invalid-input',
        parsed.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; '),
      )
    const model = await this.o.resolvers.model(parsed.data.model)
    return estimateGeneration(parsed.data as GenerateRequest, {
      modelPath: model.path,
      calibrationFile: this.o.calibrationFile ?? path.join(this.o.cacheRoot, 'calibration.json'),
      cacheRoot: this.o.cacheRoot,
    })
  }

  /** Validates and resolves a request, queues it, and returns its job id at once. */
  async start(input: GenerateRequest): Promise<JobRef> {
    const parsed = generateRequestSchema.safeParse(input)
    if (!parsed.success) throw invalidInput(parsed.error.issues)
    checkRequest(parsed.data as GenerateRequest)
    const model = await this.o.resolvers.model(parsed.data.model)
    // Image prompts (IP-Adapter, Midjourney image syntax): references to bytes, adapter and encoder to files.
    const {
      request: prepared,
      imagePrompt,
      warnings,
      midjourneyPrompt,
    } = await prepareImagePrompts(parsed.data as GenerateRequest, model, {
      resolvers: this.o.resolvers,
      gallery: this.o.gallery,
      ...(this.o.fetchImage ? { fetchImage: this.o.fetchImage } : {}),
    })
    let req = prepared
    const loras: ResolvedLora[] = []
    const tags = extractExtraNetworks(req.prompt).loras
    for (const l of [
      ...(req.loras ?? []).map((x) => ({
        name: x.name,
        weight: x.weight,
        unetWeight: x.weight,
        from: 'request' as const,
      })),
      ...tags.map((t) => ({
        name: t.name,
        weight: t.weight,
        unetWeight: t.unetWeight,
        from: 'prompt' as const,
      })),
    ]) {
      // Prompt tags resolve inside the library only (`<lora:/etc/shadow:1>` is not a path to read).
      const f = await this.o.resolvers.lora(l.name, l.from)
      const same = loras.find((x) => x.path === f.path)
      const unet = l.unetWeight !== l.weight ? { unetWeight: l.unetWeight } : {}
      if (same) {
        same.weight = l.weight
        delete same.unetWeight
        Object.assign(same, unet)
      } else loras.push({ ...f, weight: l.weight, ...unet })
    }
    // Upscaler names (hires fix, SD upscale) to files; keywords (Latent..., Lanczos, Nearest) stay as they are.
    for (const part of [req.hires, req.sdUpscale])
      if (part?.upscaler && this.o.resolvers.upscaler)
        part.upscaler = await this.o.resolvers.upscaler(part.upscaler)
    // Embeddings by file name: pass those whose name occurs in the text; the worker matches them on tokens.
    const text = `${req.prompt}\n${req.negativePrompt ?? ''}`.toLowerCase()
    const embeddings = ((await this.o.resolvers.embeddings?.()) ?? []).filter((e) =>
      text.includes(e.name.toLowerCase()),
    )
    const vaeRef = req.vae?.trim()
    let vae: ResolvedVae | undefined
    if (vaeRef && !OWN_VAE.test(vaeRef)) {
      if (!this.o.resolvers.vae) throw new AppError('unsupported', 'This host cannot resolve VAE names.')
      vae = await this.o.resolvers.vae(vaeRef)
    }
    const seed = req.seed === undefined || req.seed < 0 ? randomSeed() : req.seed
    const taesd = this.o.resolvers.taesd?.() ?? []
    // A1111 variation seed: random when absent or -1 (the infotext records the one used).
    if (req.variationStrength && (req.variationSeed === undefined || req.variationSeed < 0))
      req = { ...req, variationSeed: randomSeed() }
    const label = `${req.mode}: ${req.prompt.slice(0, 60)}`
    const box: { id?: string } = {}
    const info = this.o.jobs.start('generate', label, async (ctx) => {
      await Promise.resolve() // let start() return the id first
      const jobId = box.id as string
      const job: WorkerJob = {
        jobId,
        request: req,
        seed,
        model,
        loras,
        ...(vae ? { vae } : {}),
        ...(imagePrompt ? { imagePrompt } : {}),
        ...(taesd.length ? { taesd } : {}),
        ...(midjourneyPrompt !== undefined ? { midjourneyPrompt } : {}),
        ...(embeddings.length ? { embeddings } : {}),
        cacheRoot: this.o.cacheRoot,
        calibrationFile: this.o.calibrationFile ?? path.join(this.o.cacheRoot, 'calibration.json'),
        tokenizer: this.o.tokenizer,
        tokenizerCacheDir: this.o.tokenizerCacheDir,
        appVersion: this.o.appVersion,
        executionProvider: this.o.executionProvider?.() ?? 'auto',
        computePrecision: this.o.computePrecision?.() ?? 'fp16',
      }
      let started = false
      const turn = this.queue.then(() => {
        started = true
        return this.run(job, ctx)
      })
      this.queue = turn.catch(() => undefined)
      ctx.report(0, warnings.length ? warnings.join(' ') : 'queued')
      // a job cancelled while it waits for its turn finishes at once (run() then skips it)
      const cancelledWhileQueued = new Promise<never>((_, reject) =>
        ctx.signal.addEventListener(
          'abort',
          () => {
            if (started) return
            this.o.bus.emit('generate:finished', { jobId, state: 'cancelled', images: [], elapsedMs: 0 })
            reject(new AppError('cancelled', 'Cancelled before it started.'))
          },
          { once: true },
        ),
      )
      cancelledWhileQueued.catch(() => undefined)
      await Promise.race([turn, cancelledWhileQueued])
    })
    box.id = info.id
    this.active.set(info.id, {
      jobId: info.id,
      state: 'queued',
      request: forDisplay(parsed.data as GenerateRequest),
      startedAt: info.startedAt,
    })
    return { jobId: info.id }
  }

  /** Jobs still queued or running, with their requests and latest progress (newest last). */
  activeJobs(): ActiveGeneration[] {
    return [...this.active.values()].map((a) => ({ ...a }))
  }

  /** The one Midjourney parser applied to a prompt line, for the prompt bar. */
  async describePrompt(text: string, negativePrompt?: string, model?: string): Promise<MidjourneyParse> {
    const resolved = model
      ? await Promise.resolve(this.o.resolvers.model(model)).catch(() => undefined)
      : undefined
    return describeMidjourney(text, {
      ...(negativePrompt !== undefined ? { negativePrompt } : {}),
      ...(resolved ? { model: resolved } : {}),
      gallery: this.o.gallery,
    })
  }

  /** The provider the latest job ran on (undefined before the first job). */
  get engine(): EngineState | undefined {
    return this.engineState
  }

  cancel(jobId: string): JobRef {
    this.o.jobs.cancel(jobId)
    return { jobId }
  }

  private ensureWorker(): GenerationWorker {
    if (this.worker?.alive) return this.worker
    const handlers: WorkerHandlers = {
      message: (m) => this.onMessage(m),
      exit: (reason) => {
        this.worker = undefined
        this.running?.reject(new AppError('internal', `Generation failed: ${reason}.`))
      },
    }
    this.worker = this.o.makeWorker ? this.o.makeWorker(handlers) : new GenerationWorker(handlers)
    return this.worker
  }

  private async run(job: WorkerJob, ctx: JobContext): Promise<void> {
    const started = Date.now()
    const finish = (state: GenerationResult['state'], images: OutputImage[], error?: ApiError): void => {
      this.active.delete(job.jobId)
      this.o.bus.emit('generate:finished', {
        jobId: job.jobId,
        state,
        images,
        ...(error ? { error } : {}),
        elapsedMs: Date.now() - started,
      })
    }
    const entry = this.active.get(job.jobId)
    if (entry) entry.state = 'running'
    if (ctx.signal.aborted) throw new AppError('cancelled', 'Cancelled before it started.')
    if (this.disposed) {
      finish('cancelled', [])
      throw new AppError('cancelled', 'Atelier is shutting down.')
    }
    const worker = this.ensureWorker()
    const done = new Promise<void>((resolve, reject) => {
      this.running = {
        jobId: job.jobId,
        started,
        images: [],
        saving: Promise.resolve(),
        ctx,
        resolve,
        reject,
      }
    })
    const running = this.running as Running
    let stopTimer: ReturnType<typeof setTimeout> | undefined
    const onAbort = (): void => {
      worker.send({ type: 'cancel', jobId: job.jobId })
      // The worker checks between steps; one long step must not keep the job (and the queue) running.
      stopTimer = setTimeout(() => {
        if (this.running !== running) return
        if (this.worker === worker) this.worker = undefined
        void worker.terminate()
        running.reject(new AppError('cancelled', 'Cancelled by the user (the running step was stopped).'))
      }, this.o.cancelGraceMs ?? 2000)
    }
    ctx.signal.addEventListener('abort', onAbort, { once: true })
    ctx.report(0, 'starting')
    worker.send({ type: 'run', job })
    try {
      await done
      await running.saving
      finish('done', running.images)
    } catch (err) {
      await running.saving.catch(() => undefined)
      const e = err instanceof AppError ? err : new AppError('internal', String(err))
      if (e.code === 'cancelled' || ctx.signal.aborted) {
        finish('cancelled', running.images)
        throw new AppError('cancelled', 'Cancelled by the user.')
      }
      finish('failed', running.images, { code: e.code, message: e.message })
      throw e
    } finally {
      clearTimeout(stopTimer)
      ctx.signal.removeEventListener('abort', onAbort)
      this.running = undefined
    }
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'engine') {
      const { preference, provider, fallbackReason, compute } = m
      this.engineState = {
        preference,
        provider,
        ...(fallbackReason ? { fallbackReason } : {}),
        ...(compute ? { compute } : {}),
      }
    }
    const r = this.running
    if (m.type === 'ready' || !r || m.jobId !== r.jobId) return
    switch (m.type) {
      case 'progress': {
        const overall = (m.batch + m.step / Math.max(1, m.total)) / Math.max(1, m.batchCount)
        r.ctx.report(overall, `step ${m.step}/${m.total}`)
        const progress: GenerationProgress = {
          jobId: m.jobId,
          batch: m.batch,
          batchCount: m.batchCount,
          step: m.step,
          total: m.total,
          etaMs: m.etaMs,
          ...(m.preview ? { preview: m.preview } : {}),
        }
        const entry = this.active.get(m.jobId)
        if (entry) {
          // keep the last preview for a studio that reattaches between two previews
          const preview = m.preview ?? entry.progress?.preview
          entry.progress = { ...progress, ...(preview ? { preview } : {}) }
        }
        this.o.bus.emit('generate:progress', progress)
        break
      }
      case 'status':
        r.ctx.report(0, m.message)
        break
      case 'images':
        r.saving = r.saving.then(async () => {
          for (const img of m.images) r.images.push(await this.o.gallery.save(img.png, img.seed))
        })
        break
      case 'done':
        r.resolve()
        break
      case 'error':
        r.reject(new AppError(m.error.code, m.error.message))
        break
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true
    this.running?.reject(new AppError('cancelled', 'Atelier is shutting down.'))
    const w = this.worker
    this.worker = undefined
    if (w) await w.terminate()
  }
}
