/**
 * The worker thread's side: loads (converts, applies LoRAs to) the requested model, keeps it loaded
 * between jobs, runs the studio pipeline, and sends back progress, PNGs with A1111 metadata, and errors
 * as readable {code, message} pairs. Nothing here touches the main thread's state.
 */
import fs from 'node:fs'
import path from 'node:path'
import type { ApiError } from '../../../preload/contract-types'
import { encodePngWithParameters } from '../../engine/metadata'
import type { GenerationParameters } from '../../engine/metadata'
import { ImageDecodeError } from '../../engine/image/codec'
import { runStudio, samplerInfotext, withDefaults } from '../../engine/pipelines/generate'
import type { StudioRequest } from '../../engine/pipelines/generate'
import { latentPreviewPng } from '../../engine/image/tensor'
import { ModelSet } from '../../engine/runtime/model-set'
import { SD1_SCALING_FACTOR } from '../../engine/pipelines/core'
import { SDXL_SCALING_FACTOR } from '../../engine/pipelines/sdxl'
import { TaesdModel, withDraftDecoder } from '../../engine/taesd/model'
import { calibrate, CalibrationStore } from '../../engine/estimate/calibrate'
import { defaultLowMemory, firstUsableProvider, weightPrecisionFor } from '../../engine/runtime/session'
import type { SessionConfig } from '../../engine/runtime/session'
import type { Fp16Mode } from '../../engine/runtime/fp16'
import { settleProvider } from '../../engine/runtime/provider-check'
import type { ProviderSkip } from '../../engine/runtime/providers'
import { upscaleService } from '../../engine/upscale/service'
import { findTokenizer, TokenizerError } from '../../engine/tokenizer'
import { convertCheckpoint } from '../../engine/convert/convert'
import { convertVae } from '../../engine/convert/vae'
import type { ConvertedModel } from '../../engine/convert/convert'
import { autoV3 } from '../../model-formats/hash'
import { LoraError } from '../../model-formats/lora/lora-file'
import { applyLoras } from '../../engine/lora/variant'
import {
  assertLoraCompatible,
  assertRunnable,
  familyLabel,
  probeModel,
  ProbeError,
} from '../../model-formats/probe'
import type { ProbeResult } from '../../model-formats/probe'
import { PickleRefusedError } from '../../model-formats/pickle'
import type { FromWorker, TaesdFile, ToWorker, WorkerImage, WorkerJob } from './protocol'
import { PreviewClock } from './previews'
import { ImagePromptRuntime } from '../../engine/ipadapter/runtime'
import { ipUnetVariant, IP_SCALE_INPUT } from '../../engine/ipadapter/unet-variant'
import { IpAdapterError } from '../../engine/ipadapter/adapter'
import { imagePromptParameters } from '../image-prompts/metadata'
import { readEmbedding } from '../../model-formats/embedding'
import type { EmbeddingFile } from '../../model-formats/embedding'
import { sha256File } from '../../model-formats/hash'
import { EmbeddingIndex, extractExtraNetworks } from '../../engine/prompt'

type Post = (m: FromWorker, transfer?: ArrayBuffer[]) => void

const OOM =
  /out of memory|failed to allocate|bad_alloc|cannot allocate|array buffer allocation failed|ENOMEM/i

/** Any error -> the {code, message} the user sees. */
export function toApiError(err: unknown): ApiError {
  const message = err instanceof Error ? err.message : String(err)
  if (err instanceof Error && err.name === 'AbortError') return { code: 'cancelled', message: 'Cancelled.' }
  if (err instanceof RangeError && /allocation|Invalid typed array length|Array buffer/i.test(message))
    return { code: 'out-of-memory', message: `Out of memory: ${message}. Try a smaller size or batch.` }
  if (OOM.test(message))
    return { code: 'out-of-memory', message: `Out of memory: ${message}. Try a smaller size or batch.` }
  if (err instanceof LoraError) return { code: 'unsupported', message }
  if (err instanceof ProbeError)
    return { code: err.code === 'not-found' ? 'not-found' : 'unsupported', message }
  if (err instanceof PickleRefusedError) return { code: 'unsupported', message }
  if (err instanceof TokenizerError)
    return { code: err.code === 'tokenizer-missing' ? 'not-found' : 'invalid-input', message }
  if (err instanceof ImageDecodeError) return { code: 'invalid-input', message }
  if (err instanceof IpAdapterError) return { code: 'unsupported', message }
  if (/multiple of 8|strength|steps|no step/.test(message)) return { code: 'invalid-input', message }
  if ((err as { code?: string }).code === 'ENOENT') return { code: 'not-found', message }
  return { code: 'internal', message }
}

interface Loaded {
  key: string
  /** Why a preferred provider was skipped for this model's sessions (latest), if one was. */
  fallback?: ProviderSkip
  set: ModelSet
  probe: ProbeResult
  converted: ConvertedModel
  /** The standalone VAE the current job decodes and encodes with (infotext `VAE`, `VAE hash`). */
  vae?: { name: string; hash: string }
}

/** The TAESD for a model family (previews, draft decode), loaded once and kept while it is the one used. */
class TaesdCache {
  private current: { path: string; model: Promise<TaesdModel> } | undefined

  async get(file: TaesdFile, session: SessionConfig = {}): Promise<TaesdModel> {
    const key = `${file.path}#${session.preference ?? 'auto'}`
    if (this.current?.path !== key) {
      const old = this.current
      this.current = undefined
      if (old) await (await old.model.catch(() => undefined))?.release()
      const model = TaesdModel.load(file.path, session)
      model.catch(() => {
        if (this.current?.model === model) this.current = undefined
      })
      this.current = { path: key, model }
    }
    return this.current.model
  }

  async release(): Promise<void> {
    const old = this.current
    this.current = undefined
    if (old) await (await old.model.catch(() => undefined))?.release()
  }
}

/** The provider(s) the loaded sessions opened on: "webgpu", or "webgpu (vae_decoder: cpu)" when mixed. */
/**
 * `ATELIER_CPU_FP16=emulate|native`: the CPU provider runs the fp16 graphs too (tests and checks of the
 * fp16 path on machines without a GPU; never a user setting: the CPU computes fp32).
 */
function cpuFp16FromEnv(): { cpuFp16?: Fp16Mode } {
  const v = process.env.ATELIER_CPU_FP16
  return v === 'emulate' || v === 'native' ? { cpuFp16: v } : {}
}

/** What the UNet (else the first loaded graph) computes in: 'fp16', 'fp16 (emulated on CPU)' or 'fp32'. */
function computeOf(loaded: Loaded): string | undefined {
  const g = loaded.set.graphs.unet?.compute
    ? loaded.set.graphs.unet
    : Object.values(loaded.set.graphs).find((x) => x?.compute)
  const c = g?.compute
  if (!c) return undefined
  return c === 'fp32'
    ? 'fp32'
    : c === 'emulate'
      ? 'fp16 (emulated on CPU)'
      : g.provider === 'cpu'
        ? 'fp16 (CPU kernels)'
        : 'fp16'
}

function providerOf(loaded: Loaded): string | undefined {
  const opened = Object.entries(loaded.set.graphs).flatMap(([c, g]) => (g?.provider ? [[c, g.provider]] : []))
  const main = loaded.set.graphs.unet?.provider ?? opened[0]?.[1]
  if (!main) return undefined
  const others = opened.filter(([, p]) => p !== main).map(([c, p]) => `${c}: ${p}`)
  return others.length ? `${main} (${others.join(', ')})` : main
}

function label(job: WorkerJob): string {
  return path.basename(job.model.path)
}

const SAMPLER_CONTENT: Record<StudioRequest['maskedContent'], string> = {
  fill: 'fill',
  original: 'original',
  'latent-noise': 'latent noise',
  'latent-nothing': 'latent nothing',
}

export class JobRunner {
  private loaded: Loaded | undefined
  private readonly hashes = new Map<string, Promise<string>>()
  private current: { jobId: string; abort: AbortController } | undefined
  private readonly taesd = new TaesdCache()
  /** Embedding files read once per path + size + mtime. */
  private readonly embeddingFiles = new Map<string, { stamp: string; file: Promise<EmbeddingFile> }>()
  private readonly sha256s = new Map<string, Promise<string>>()
  private imagePrompts = new ImagePromptRuntime()
  private imagePromptsPreference: string | undefined
  /** Fallback reasons already shown (each once per worker). */
  private readonly shownFallbacks = new Set<string>()

  constructor(private readonly post: Post) {}

  /** Reports a skipped provider once (a job status line) and keeps it for the status bar. */
  private onFallback(job: WorkerJob, skip: ProviderSkip): void {
    if (this.loaded) this.loaded.fallback = skip
    const key = `${skip.provider}: ${skip.reason}`
    if (this.shownFallbacks.has(key)) return
    this.shownFallbacks.add(key)
    this.post({
      type: 'status',
      jobId: job.jobId,
      message: `${skip.provider.toUpperCase()} unavailable (${skip.reason}); using the next provider`,
    })
  }

  handle(m: ToWorker): void {
    if (m.type === 'cancel') {
      if (this.current?.jobId === m.jobId) this.current.abort.abort()
    } else if (m.type === 'run') {
      void this.run(m.job)
    } else if (m.type === 'dispose') {
      this.current?.abort.abort()
      void this.loaded?.set.release()
      void this.imagePrompts.release()
      void this.taesd.release()
      this.loaded = undefined
    }
  }

  private async load(job: WorkerJob, signal: AbortSignal): Promise<Loaded> {
    const specs = job.loras.map((l) => ({
      path: l.path,
      multiplier: l.unetWeight ?? l.weight,
      teMultiplier: l.weight,
    }))
    // LoRA multipliers are graph inputs: a multiplier change keeps the graphs and their sessions and only
    // changes the feeds (which LoRAs are active, or image prompts with LoRAs, still pick other graphs).
    const preference = job.executionProvider ?? 'auto'
    const precision = job.computePrecision ?? 'fp16'
    const key = JSON.stringify([
      preference,
      precision,
      job.model.path,
      job.imagePrompt
        ? job.loras.map((l) => [l.path, l.weight, l.unetWeight])
        : specs.map((l) => [l.path, l.multiplier !== 0 || l.teMultiplier !== 0]),
      job.imagePrompt?.adapter.path ?? null,
      job.request.lowMemory ?? null,
    ])
    if (this.loaded?.key === key) {
      if (specs.length && !job.imagePrompt)
        this.loaded.set.setInputs(
          (await applyLoras(this.loaded.converted, specs, { cacheRoot: job.cacheRoot, signal })).inputs,
        )
      return this.loaded
    }
    const status = (message: string): void => this.post({ type: 'status', jobId: job.jobId, message })
    const probe = await probeModel(job.model.path)
    if (probe.format !== 'onnx') assertRunnable(probe)
    if (probe.type !== 'checkpoint')
      throw new ProbeError(`${job.model.path} is not a checkpoint (it is a ${probe.type})`, 'not-checkpoint')
    for (const l of job.loras) assertLoraCompatible(await probeModel(l.path), probe)
    status(`preparing ${label(job)}`)
    const lowMemory = job.request.lowMemory ?? defaultLowMemory(probe.base)
    // A WebGPU candidate is settled by a real adapter request first, so the weights are stored for the
    // provider that will open (fp16: GPUs take them as they are; the CPU's fp32 form is the optimised copy
    // its first session saves).
    const settled = await settleProvider(preference)
    for (const s of settled.skipped) this.onFallback(job, s)
    const converted = await convertCheckpoint(job.model.path, {
      cacheRoot: job.cacheRoot,
      precision: await weightPrecisionFor({ lowMemory, preference, optimizedCache: true }),
      signal,
      onProgress: (p) =>
        status(
          `${p.phase === 'hash' ? 'hashing' : 'converting'} ${label(job)}: ${Math.round((100 * p.done) / Math.max(1, p.total))}%`,
        ),
    })
    let paths = specs.length
      ? (await applyLoras(converted, specs, { cacheRoot: job.cacheRoot, signal })).paths
      : converted.paths
    // Image prompts: the UNet with IP-Adapter's image attention (and the LoRAs' UNet branches, if any).
    if (job.imagePrompt) {
      status(`preparing image prompts for ${label(job)}`)
      const v = await ipUnetVariant(converted, job.imagePrompt.adapter.path, {
        cacheRoot: job.cacheRoot,
        signal,
        loras: specs,
      })
      paths = { ...paths, unet: v.path }
    }
    await this.loaded?.set.release()
    this.loaded = undefined
    const set = new ModelSet(key, paths, {
      lowMemory,
      preference,
      precision,
      ...cpuFp16FromEnv(),
      // ORT's optimised form of each graph, kept in the conversion cache (never in a user's ONNX folder).
      optimizedCache: converted.manifest.source.kind !== 'onnx',
      onFallback: (s) => this.onFallback(job, s),
    })
    this.loaded = {
      key,
      set,
      probe,
      converted,
      ...(settled.skipped[0] ? { fallback: settled.skipped[0] } : {}),
    }
    return this.loaded
  }

  /**
   * Puts the job's VAE (or the checkpoint's own) into the loaded set. A standalone VAE is converted once
   * (cached by its SHA-256) and only the set's VAE sessions change: the UNet and text encoders stay loaded.
   * A VAE of another family (an SDXL VAE on an SD 1.x checkpoint) is refused before anything runs.
   */
  private async applyVae(job: WorkerJob, loaded: Loaded, signal: AbortSignal): Promise<void> {
    const ref = job.vae
    if (!ref) {
      await loaded.set.useVae()
      delete loaded.vae
      return
    }
    const probe = await probeModel(ref.path)
    if (probe.type !== 'vae' || !probe.vae)
      throw new ProbeError(`${ref.path} is not a VAE (it is a ${probe.type})`, 'not-vae')
    const base = loaded.probe.base
    const family = probe.base ?? (ref.family === 'sd-1' || ref.family === 'sdxl' ? ref.family : null)
    if (probe.vae.latentChannels !== 4)
      throw new ProbeError(
        `VAE ${ref.name} makes ${probe.vae.latentChannels}-channel latents; ${familyLabel(base)} checkpoints use 4 (it is for another model family)`,
        'vae-incompatible',
      )
    if (family && base && family !== base)
      throw new ProbeError(
        `VAE ${ref.name} is for ${familyLabel(family)}, but the checkpoint ${job.model.name} is ${familyLabel(base)}: pick a ${familyLabel(base)} VAE or Automatic`,
        'vae-incompatible',
      )
    const converted = await convertVae(ref.path, {
      cacheRoot: job.cacheRoot,
      precision: loaded.converted.manifest.precision,
      signal,
      onProgress: (p) =>
        this.post({
          type: 'status',
          jobId: job.jobId,
          message: `${p.phase === 'hash' ? 'hashing' : 'converting'} VAE ${ref.name}: ${Math.round((100 * p.done) / Math.max(1, p.total))}%`,
        }),
    })
    await loaded.set.useVae({
      vae_encoder: converted.paths.vae_encoder,
      vae_decoder: converted.paths.vae_decoder,
    })
    const sha = ref.sha256 ?? converted.manifest.source.files[0]?.sha256 ?? ''
    loaded.vae = { name: ref.name, hash: sha.slice(0, 10).toLowerCase() }
  }

  private async embeddings(job: WorkerJob): Promise<EmbeddingFile[]> {
    const out: EmbeddingFile[] = []
    for (const ref of job.embeddings ?? []) {
      const st = await fs.promises.stat(ref.path)
      const stamp = `${st.size}:${st.mtimeMs}`
      let e = this.embeddingFiles.get(ref.path)
      if (!e || e.stamp !== stamp) {
        e = { stamp, file: readEmbedding(ref.path) }
        this.embeddingFiles.set(ref.path, e)
        e.file.catch(() => this.embeddingFiles.delete(ref.path))
      }
      out.push({ ...(await e.file), name: ref.name })
    }
    return out
  }

  /** A1111's embedding short hash: the first 12 hex digits of the file's SHA-256. */
  private shortHash(file: string): Promise<string> {
    let h = this.sha256s.get(file)
    if (!h) {
      h = sha256File(file).then((x) => x.slice(0, 12).toLowerCase())
      h.catch(() => this.sha256s.delete(file))
      this.sha256s.set(file, h)
    }
    return h
  }

  /**
   * Pre-flight estimates need this machine's speed: the first job of a family on a provider runs the short
   * calibration (its sessions are being loaded anyway) and caches it. Low-memory sets are left alone (the
   * calibration would load every stage at once).
   */
  private async calibrateOnce(job: WorkerJob, loaded: Loaded): Promise<void> {
    if (!job.calibrationFile || loaded.set.lowMemory) return
    const family = loaded.probe.base === 'sdxl' ? 'sdxl' : 'sd-1'
    const store = new CalibrationStore(job.calibrationFile)
    if (store.get(await firstUsableProvider(), family)) return
    this.post({ type: 'status', jobId: job.jobId, message: 'calibrating time estimates (once per machine)' })
    const cal = await calibrate(loaded.set, family)
    store.put(loaded.set.graph('unet').provider ?? 'cpu', family, cal)
  }

  private hashOf(file: string): Promise<string> {
    let h = this.hashes.get(file)
    if (!h) {
      h = autoV3(file).then((x) => x.toLowerCase())
      h.catch(() => this.hashes.delete(file))
      this.hashes.set(file, h)
    }
    return h
  }

  private async parameters(
    job: WorkerJob,
    req: StudioRequest,
    loaded: Loaded,
    width: number,
    height: number,
    seed: number,
    draft = false,
    variationSeed?: number,
    usedEmbeddings: EmbeddingFile[] = [],
  ): Promise<GenerationParameters> {
    const sha = job.model.sha256 ?? loaded.converted.manifest.source.files[0]?.sha256
    const modelHash = sha ? sha.slice(0, 10).toLowerCase() : undefined
    const loraHashes = []
    for (const l of job.loras)
      if (l.path.endsWith('.safetensors')) loraHashes.push({ name: l.name, hash: await this.hashOf(l.path) })
    const hashes: Record<string, string> = {}
    if (modelHash) hashes.model = modelHash
    for (const h of loraHashes) hashes[`lora:${h.name}`] = h.hash
    const resources = [
      ...(job.model.civitaiVersionId
        ? [{ type: 'checkpoint', modelVersionId: job.model.civitaiVersionId }]
        : []),
      ...job.loras
        .filter((l) => l.civitaiVersionId)
        .map((l) => ({ type: 'lora', weight: l.weight, modelVersionId: l.civitaiVersionId })),
    ]
    const img = req.mode !== 'txt2img'
    const masked = req.mode === 'inpaint' || req.mode === 'outpaint'
    const extra: Record<string, string> = {}
    if (variationSeed !== undefined && req.variationStrength) {
      // A1111 writes both only when the strength is not 0.
      extra['Variation seed'] = String(variationSeed)
      extra['Variation seed strength'] = String(req.variationStrength)
    }
    if (req.batchSize > 1) extra['Batch size'] = String(req.batchSize)
    if (req.mode === 'outpaint' && req.outpaint.zoomOut > 1)
      extra['Outpaint zoom out'] = String(req.outpaint.zoomOut)
    const upscalerLabel = (n: string | undefined, def: string): string =>
      n ? n.replace(/^.*[\\/]/, '').replace(/\.(pth|pt|safetensors|ckpt|bin)$/i, '') : def
    if (req.mode === 'txt2img' && req.hires) {
      // A1111 infotext names (Hires fix).
      extra['Denoising strength'] = String(req.hires.strength ?? 0.7)
      if (req.hires.width || req.hires.height)
        extra['Hires resize'] = `${req.hires.width ?? 0}x${req.hires.height ?? 0}`
      else extra['Hires upscale'] = String(req.hires.scale ?? 2)
      if (req.hires.steps) extra['Hires steps'] = String(req.hires.steps)
      extra['Hires upscaler'] = upscalerLabel(req.hires.upscaler, 'Latent')
    }
    const samplerFields = samplerInfotext(req, loaded.probe.base === 'sdxl')
    Object.assign(extra, samplerFields.extra)
    Object.assign(extra, imagePromptParameters(job))
    // A1111's name for a non-default decoder (its "sd_vae_decode_method": Full / TAESD).
    if (draft) extra['VAE Decoder'] = 'TAESD'
    if (job.midjourneyPrompt !== undefined) extra['Midjourney prompt'] = job.midjourneyPrompt
    if (usedEmbeddings.length) {
      // A1111 (textual_inversion_add_hashes_to_infotext): "name: shorthash" with ':' and ',' removed from names.
      const ti: string[] = []
      for (const e of usedEmbeddings) {
        const short = await this.shortHash(e.file)
        ti.push(`${e.name.replace(/[:,]/g, '')}: ${short}`)
        hashes[`embed:${e.name}`] = short.slice(0, 10)
      }
      extra['TI hashes'] = ti.join(', ')
    }
    const provider = providerOf(loaded)
    if (provider) extra['Execution provider'] = provider
    const compute = computeOf(loaded)
    if (compute) extra['Compute precision'] = compute
    if (req.mode === 'img2img' && req.sdUpscale) {
      extra['SD upscale'] = String(req.sdUpscale.scale ?? 2)
      extra['SD upscale upscaler'] = upscalerLabel(req.sdUpscale.upscaler, 'Lanczos')
      extra['SD upscale overlap'] = String(req.sdUpscale.tileOverlap ?? 64)
    }
    return {
      prompt: req.prompt,
      negativePrompt: req.negativePrompt,
      steps: req.steps,
      sampler: samplerFields.sampler,
      ...(samplerFields.scheduleType ? { scheduleType: samplerFields.scheduleType } : {}),
      cfgScale: req.cfgScale,
      seed,
      // A1111 writes the hires fix's base size as Size (the image is Hires upscale times larger).
      width:
        req.mode === 'txt2img' && req.hires
          ? (req.width ?? Math.round(width / (req.hires.scale ?? 2)))
          : width,
      height:
        req.mode === 'txt2img' && req.hires
          ? (req.height ?? Math.round(height / (req.hires.scale ?? 2)))
          : height,
      ...(modelHash ? { modelHash } : {}),
      model: job.model.name,
      // A1111: `VAE hash` (first 10 hex of the file's SHA-256) and `VAE` (the file name) only for a separate VAE.
      ...(loaded.vae ? { vaeHash: loaded.vae.hash, vae: loaded.vae.name } : {}),
      ...(img ? { denoisingStrength: req.strength, exactSteps: req.exactSteps } : {}),
      ...(req.clipSkip !== 1 ? { clipSkip: req.clipSkip } : {}),
      rng: req.rng === 'gpu' ? 'NV' : 'CPU',
      ...(masked
        ? {
            maskBlur: req.maskBlur,
            maskedContent: SAMPLER_CONTENT[req.maskedContent],
            ...(req.mode === 'inpaint'
              ? {
                  inpaintArea: req.inpaintArea === 'only-masked' ? 'Only masked' : 'Whole picture',
                  maskedAreaPadding: req.onlyMaskedPadding,
                  ...(req.invertMask ? { maskMode: 'Inpaint not masked' } : {}),
                }
              : {
                  outpaint: {
                    left: req.outpaint.left * req.outpaint.repeat,
                    top: req.outpaint.top * req.outpaint.repeat,
                    right: req.outpaint.right * req.outpaint.repeat,
                    bottom: req.outpaint.bottom * req.outpaint.repeat,
                  },
                  outpaintOverlap: req.outpaint.overlap,
                }),
          }
        : {}),
      ...(loraHashes.length ? { loraHashes } : {}),
      ...(Object.keys(hashes).length ? { hashes } : {}),
      ...(resources.length ? { civitaiResources: resources } : {}),
      extra,
    }
  }

  async run(job: WorkerJob): Promise<void> {
    const abort = new AbortController()
    this.current = { jobId: job.jobId, abort }
    try {
      const loaded = await this.load(job, abort.signal)
      await this.applyVae(job, loaded, abort.signal)
      const preference = job.executionProvider ?? 'auto'
      // Image encoders and upscalers (hires fix, SD upscale) open their sessions on the same provider.
      const session = { preference, onFallback: (s: ProviderSkip) => this.onFallback(job, s) }
      upscaleService().setSession(session)
      // The image encoder computes in the job's precision too (upscalers stay fp32).
      const precision = job.computePrecision ?? 'fp16'
      const ipKey = `${preference}/${precision}`
      if (this.imagePromptsPreference !== ipKey) {
        await this.imagePrompts.release()
        this.imagePrompts = new ImagePromptRuntime({ ...session, precision, ...cpuFp16FromEnv() })
        this.imagePromptsPreference = ipKey
      }
      const req = withDefaults(job.request)
      const tokenizer = await findTokenizer(
        job.tokenizer
          ? { explicit: job.tokenizer }
          : loaded.converted.manifest.tokenizerDir
            ? { explicit: loaded.converted.manifest.tokenizerDir }
            : { cacheDir: job.tokenizerCacheDir },
      )
      const imageTokens = job.imagePrompt
        ? await this.imagePrompts.tokens(
            { adapter: job.imagePrompt.adapter.path, encoder: job.imagePrompt.encoder.path },
            (job.request.imagePrompts ?? []).flatMap((p) =>
              p.image ? [{ bytes: p.image, weight: p.weight ?? 1 }] : [],
            ),
            { cacheRoot: job.cacheRoot, signal: abort.signal },
          )
        : undefined
      // The image weight is a graph input: a new weight is a new feed, never a new session.
      if (imageTokens) loaded.set.setInputs({ unet: { [IP_SCALE_INPUT]: imageTokens.scale } })
      await this.calibrateOnce(job, loaded)
      // TAESD for this family, if the library has one: previews (unless approx is asked for) and draft decode.
      const family = loaded.probe.base === 'sdxl' ? 'sdxl' : 'sd-1'
      const taesdFile = job.taesd?.find((t) => t.family === family)
      if (job.request.draftDecode && !taesdFile)
        throw new ProbeError(
          `Draft decode needs a ${family === 'sdxl' ? 'TAESDXL' : 'TAESD'} model in the library (Hugging Face madebyollin/${family === 'sdxl' ? 'taesdxl' : 'taesd'})`,
          'not-found',
        )
      const taesd =
        taesdFile && (job.request.draftDecode || job.request.previewDecoder !== 'approx')
          ? await this.taesd.get(taesdFile, session)
          : undefined
      const draft = job.request.draftDecode === true && taesd !== undefined
      const scalingFactor =
        loaded.probe.vae?.scalingFactor ?? (family === 'sdxl' ? SDXL_SCALING_FACTOR : SD1_SCALING_FACTOR)
      const previews = new PreviewClock(taesd ? 'taesd' : 'approx')
      const embeddings = await this.embeddings(job)
      const index = new EmbeddingIndex(embeddings, (t) => tokenizer.encode(t))
      const usedNames = [
        ...index.usedIn(extractExtraNetworks(req.prompt).text, (t) => tokenizer.encode(t)),
        ...index.usedIn(req.negativePrompt, (t) => tokenizer.encode(t)),
      ]
      const used = embeddings.filter((e) => usedNames.includes(e.name))
      await runStudio(req, job.seed, {
        model: draft && taesd ? withDraftDecoder(loaded.set, taesd, scalingFactor) : loaded.set,
        encode: (t) => tokenizer.encode(t),
        inpaintModel: loaded.probe.variant === 'inpaint',
        // Not stored in single files: the probe gives the diffusers config's value or the family's.
        ...(loaded.probe.vae?.scalingFactor ? { scalingFactor: loaded.probe.vae.scalingFactor } : {}),
        signal: abort.signal,
        ...(imageTokens ? { imageTokens } : {}),
        ...(embeddings.length ? { embeddings } : {}),
        onProgress: async (p) => {
          const preview = previews.due(p.step, p.total)
            ? await previews.time(async () =>
                taesd
                  ? new Uint8Array(await taesd.previewPng(p.latents, p.shape.width, p.shape.height))
                  : new Uint8Array(
                      await latentPreviewPng(p.latents, p.shape.width, p.shape.height, {
                        scale: 2,
                        ...(family === 'sdxl' ? { family: 'sdxl' as const } : {}),
                      }),
                    ),
              )
            : undefined
          this.post(
            {
              type: 'progress',
              jobId: job.jobId,
              batch: p.batch,
              batchCount: p.batchCount,
              step: p.step,
              total: p.total,
              etaMs: p.etaMs,
              ...(preview ? { preview } : {}),
            },
            preview ? [preview.buffer as ArrayBuffer] : [],
          )
        },
        onBatch: async (b) => {
          const images: WorkerImage[] = []
          for (const [i, img] of b.images.entries()) {
            const seed = b.seeds[i] ?? job.seed
            const params = await this.parameters(
              job,
              req,
              loaded,
              img.width,
              img.height,
              seed,
              draft,
              b.variationSeeds?.[i],
              used,
            )
            const buf = await encodePngWithParameters(img, params)
            const png = new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength))
            images.push({ png, seed, width: img.width, height: img.height })
          }
          this.post(
            { type: 'images', jobId: job.jobId, batch: b.batch, images },
            images.map((x) => x.png.buffer as ArrayBuffer),
          )
        },
      })
      this.post({
        type: 'engine',
        jobId: job.jobId,
        preference,
        provider: providerOf(loaded) ?? 'cpu',
        ...(computeOf(loaded) ? { compute: computeOf(loaded) } : {}),
        ...(loaded.fallback
          ? { fallbackReason: `${loaded.fallback.provider}: ${loaded.fallback.reason}` }
          : {}),
      })
      this.post({ type: 'done', jobId: job.jobId })
    } catch (err) {
      this.post({ type: 'error', jobId: job.jobId, error: toApiError(err) })
    } finally {
      if (this.current?.jobId === job.jobId) this.current = undefined
    }
  }
}
