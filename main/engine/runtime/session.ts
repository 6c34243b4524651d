import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import type { ProviderName, ProviderPreference, ProviderSkip } from './providers'
import { markProviderFailed, physicalCores, providerCandidates } from './providers'
import type { Fp16Mode } from './fp16'
import { toFp16Compute } from './fp16'
import { webGpuHasF16, webGpuModel, webGpuProbe } from './webgpu'
import { createThroughCache, OPTIMIZED_CACHE_PROVIDERS } from './optimized-cache'
import type { OptimizedCacheOptions, OptimizedUse } from './optimized-cache'

export interface SessionConfig {
  preference?: ProviderPreference
  /** Intra-op threads; default: physical cores. */
  threads?: number
  /** Called once per provider that was skipped or failed, with the reason (shown to the user). */
  onFallback?: (skip: ProviderSkip) => void
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4
  /**
   * Low-memory mode: weights stored as fp16 stay fp16 in memory and each is cast when its layer runs (instead
   * of ORT folding every Cast into fp32 copies at session creation: half the weight memory, e.g. SDXL's UNet
   * 4.8 instead of 9.6 GiB, and no fp16 + fp32 peak while the session is created), and activation memory is
   * returned after every run (no CPU arena); a ModelSet then also keeps only the running stage's sessions
   * (text encoders, UNet or VAE) loaded. Slower; for models that do not fit otherwise.
   */
  lowMemory?: boolean
  /**
   * Compute precision on GPU providers (CUDA, DirectML, CoreML, WebGPU where the adapter has `shader-f16`):
   * 'fp16' opens the fp16 compute graph (fp16.ts: fp16 activations and weights, fp32 islands) for the graphs
   * that allow it (fp16Graphs). The CPU provider always computes in fp32. Default 'fp32'.
   */
  precision?: ComputePrecision
  /**
   * Oracle and tests only: run the fp16 graphs on the CPU provider too, 'native' (fp16 tensors; onnxruntime's
   * CPU kernels in fp16 where it has them, else upcast by its InsertCastTransformer) or 'emulate' (fp32
   * tensors rounded to fp16 wherever the fp16 graph stores one).
   */
  cpuFp16?: Fp16Mode
  /**
   * Keep onnxruntime's optimised form of each graph file beside it and load that next time
   * (optimized-cache.ts): for graphs inside the conversion cache, never for a user's own ONNX folder.
   * Not used in low-memory mode (its weights would be fp32) nor for in-memory models.
   */
  optimizedCache?: boolean | OptimizedCacheOptions
}

export type ComputePrecision = 'fp32' | 'fp16'

/**
 * The graphs that compute in fp16 when asked: text encoders, UNet, image encoder. The VAE (encoder and
 * decoder) stays fp32 on every provider, as diffusers runs it with `force_upcast` (SDXL's VAE overflows
 * fp16); TAESD and upscalers (opened without a graph name) stay fp32.
 */
export const FP16_GRAPHS: readonly string[] = ['text_encoder', 'text_encoder_2', 'unet', 'image_encoder']

/** How a graph is computed on a provider under this config: 'fp32', or the fp16 pass's mode. */
export function computeModeFor(
  p: ProviderName,
  cfg: SessionConfig,
  graph: string | undefined,
): 'fp32' | Fp16Mode {
  if (cfg.precision !== 'fp16' || !graph || !FP16_GRAPHS.includes(graph)) return 'fp32'
  if (p === 'cpu') return cfg.cpuFp16 ?? 'fp32'
  if (p === 'webgpu' && !webGpuHasF16()) return 'fp32'
  return 'native'
}

/**
 * How a converted model's weights should be stored for sessions with this config: 'fp32' (cast once at
 * conversion) when they will run on the CPU provider in normal memory mode without the optimised-model
 * cache — the session then has no casts to fold (bench/session.ts) — else 'fp16': GPU providers take the
 * fp16 graph; low-memory sessions keep fp16 weights and cast per layer; with the optimised-model cache the
 * fp32 form lives in ORT's saved copy, so the entry keeps hard links to the checkpoint (no second fp32 copy
 * on disk).
 */
export async function weightPrecisionFor(cfg: SessionConfig = {}): Promise<'fp16' | 'fp32'> {
  if (cfg.lowMemory || cfg.optimizedCache) return 'fp16'
  return (await firstUsableProvider(cfg)) === 'cpu' ? 'fp32' : 'fp16'
}

/**
 * The provider sessions with this config will most likely run on: the first candidate, after WebGPU's
 * adapter probe (cached per process; a failure is remembered like a failed session).
 */
export async function firstUsableProvider(cfg: SessionConfig = {}): Promise<ProviderName> {
  for (const p of providerCandidates(cfg.preference).order) {
    if (p !== 'webgpu') return p
    try {
      await webGpuProbe()
      return p
    } catch (err) {
      markProviderFailed(p, firstLine(err))
    }
  }
  return 'cpu'
}

/**
 * Whether a model of this base runs in low-memory mode by default: SDXL with fp32 weights needs about
 * 18 GiB while its UNet session is created (fp16 + fp32 copies), so below 32 GiB of RAM its weights stay
 * fp16 and are cast per layer (bench/sdxl.ts).
 */
export function defaultLowMemory(base: string | null | undefined, totalBytes = os.totalmem()): boolean {
  return base === 'sdxl' && totalBytes < 32 * 2 ** 30
}

/** ORT optimizers that turn fp16 weights feeding a Cast into fp32 copies (one list, ';'-separated). */
const FP32_WEIGHT_FOLDING = 'ConstantFolding;FuseFp16InitializerToFp32NodeTransformer'

export interface OpenedSession {
  session: ort.InferenceSession
  provider: ProviderName
  skipped: ProviderSkip[]
  /** What the session computes in: 'fp32', or the fp16 graph ('native'; 'emulate' on the CPU for the oracle). */
  compute: 'fp32' | Fp16Mode
  /** How the optimised-model cache was used (absent when the config does not ask for it). */
  optimized?: OptimizedUse
}

/** The model with the fp16 pass applied (bytes; external weights still load from the original folder). */
function fp16Model(
  model: string | Uint8Array,
  mode: Fp16Mode,
): { model: Uint8Array; options: ort.InferenceSession.SessionOptions } {
  const bytes = typeof model === 'string' ? fs.readFileSync(model) : model
  const r = toFp16Compute(bytes, { mode })
  return {
    model: r.model,
    options:
      typeof model === 'string'
        ? {
            extra: {
              session: { model_external_initializers_file_folder_path: path.dirname(path.resolve(model)) },
            },
          }
        : {},
  }
}

function providerOption(p: ProviderName): ort.InferenceSession.ExecutionProviderConfig {
  switch (p) {
    case 'cuda':
      return { name: 'cuda', deviceId: 0 }
    case 'dml':
      return { name: 'dml', deviceId: 0 }
    case 'coreml':
      return { name: 'coreml' }
    case 'webgpu':
      return { name: 'webgpu' }
    case 'cpu':
      return 'cpu'
  }
}

export function sessionOptions(
  p: ProviderName,
  cfg: SessionConfig = {},
): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: p === 'cpu' ? ['cpu'] : [providerOption(p), 'cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: cfg.threads ?? physicalCores(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: cfg.logSeverityLevel ?? 3,
    ...(cfg.lowMemory
      ? {
          enableCpuMemArena: false,
          enableMemPattern: false,
          extra: { optimization: { disable_specified_optimizers: FP32_WEIGHT_FOLDING } },
        }
      : {}),
  }
}

function mergeOptions(...all: ort.InferenceSession.SessionOptions[]): ort.InferenceSession.SessionOptions {
  const out: ort.InferenceSession.SessionOptions = {}
  const extra: Record<string, unknown> = {}
  for (const o of all) {
    Object.assign(out, o)
    for (const [k, v] of Object.entries(o.extra ?? {}))
      extra[k] = { ...((extra[k] as object | undefined) ?? {}), ...(v as object) }
  }
  return { ...out, extra }
}

function firstLine(err: unknown): string {
  const s = err instanceof Error ? err.message : String(err)
  return (s.split('\n').find((l) => l.trim()) ?? s).trim().slice(0, 300)
}

/**
 * Creates a session on the best provider that starts, falling back towards CPU. A provider that fails is
 * remembered (with its reason) and reported through onFallback; a CPU failure is the model's fault and
 * is thrown with the file named.
 */
export async function openSession(
  model: string | Uint8Array,
  cfg: SessionConfig = {},
  /** The graph's component name (text_encoder, unet, ...): decides whether it may compute in fp16. */
  graph?: string,
): Promise<OpenedSession> {
  const { order, skipped } = providerCandidates(cfg.preference)
  for (const s of skipped) cfg.onFallback?.(s)
  const create = async (
    p: ProviderName,
    compute: OpenedSession['compute'],
  ): Promise<{ session: ort.InferenceSession; optimized?: OptimizedUse }> => {
    const opts = sessionOptions(p, cfg)
    const half = compute === 'fp32' ? { model, options: {} } : fp16Model(model, compute)
    // Then ORT 1.30's WebGPU kernel workarounds (webgpu.ts), on the graph as it will run.
    const prepared = p === 'webgpu' ? await webGpuModel(half.model) : { model: half.model, options: {} }
    const merged = mergeOptions(opts, half.options, prepared.options)
    const m = prepared.model
    // A graph file as it is, on a provider whose optimised form is kept: through the cache.
    if (
      typeof m === 'string' &&
      cfg.optimizedCache &&
      !cfg.lowMemory &&
      OPTIMIZED_CACHE_PROVIDERS.includes(p)
    ) {
      const c = await createThroughCache(
        m,
        p,
        merged,
        typeof cfg.optimizedCache === 'object' ? cfg.optimizedCache : {},
      )
      return { session: c.session, optimized: c.use }
    }
    return {
      session:
        typeof m === 'string'
          ? await ort.InferenceSession.create(m, merged)
          : await ort.InferenceSession.create(m, merged),
    }
  }
  for (const p of order) {
    try {
      // WebGPU: the adapter probe first (a real adapter request; it also tells whether shader-f16 exists).
      if (p === 'webgpu') await webGpuProbe()
      const compute = computeModeFor(p, cfg, graph)
      try {
        return { ...(await create(p, compute)), provider: p, skipped, compute }
      } catch (err) {
        if (compute === 'fp32') throw err
        // The fp16 graph did not open on this provider: its fp32 graph, on the same provider, before the CPU.
        const skip = { provider: p, reason: `fp16 compute failed, running fp32: ${firstLine(err)}` }
        skipped.push(skip)
        cfg.onFallback?.(skip)
        return { ...(await create(p, 'fp32')), provider: p, skipped, compute: 'fp32' }
      }
    } catch (err) {
      if (p === 'cpu') {
        const what = typeof model === 'string' ? model : 'an in-memory model'
        throw new Error(`cannot load ${what}: ${firstLine(err)}`)
      }
      const skip = { provider: p, reason: firstLine(err) }
      markProviderFailed(p, skip.reason)
      skipped.push(skip)
      cfg.onFallback?.(skip)
    }
  }
  throw new Error('no execution provider could load the model')
}

export type Feeds = Record<string, ort.Tensor>

/** Checks feeds against the session's inputs (names, element types, ranks) with a readable error. */
export function validateFeeds(graph: string, session: ort.InferenceSession, feeds: Feeds): void {
  const expected = session.inputNames
  const missing = expected.filter((n) => !(n in feeds))
  const extra = Object.keys(feeds).filter((n) => !expected.includes(n))
  if (missing.length || extra.length) {
    const parts: string[] = []
    if (missing.length) parts.push(`missing input(s) ${missing.join(', ')}`)
    if (extra.length) parts.push(`unknown input(s) ${extra.join(', ')}`)
    throw new Error(`${graph}: ${parts.join('; ')} (the graph takes ${expected.join(', ')})`)
  }
  session.inputMetadata.forEach((meta) => {
    if (!meta.isTensor) return
    const t = feeds[meta.name] as ort.Tensor
    if (t.type !== meta.type)
      throw new Error(`${graph}: input ${meta.name} must be ${meta.type}, got ${t.type}`)
    if (meta.shape.length !== t.dims.length)
      throw new Error(
        `${graph}: input ${meta.name} must have rank ${meta.shape.length}, got [${t.dims.join(', ')}]`,
      )
    meta.shape.forEach((d, i) => {
      if (typeof d === 'number' && d !== t.dims[i])
        throw new Error(
          `${graph}: input ${meta.name} dimension ${i} must be ${d}, got [${t.dims.join(', ')}]`,
        )
    })
  })
}

let fp16Runs = 0

/** How many runs of fp16 graphs this process made (the oracle picks the fp16 tolerance rule by it). */
export function fp16RunCount(): number {
  return fp16Runs
}

/** One ONNX graph file owning at most one session: load / run / release. */
export class OnnxGraph {
  private opened: OpenedSession | undefined
  private loading: Promise<OpenedSession> | undefined

  /** Scalar float inputs fed with every run unless the caller passes them (LoRA multipliers). */
  private readonly scalars = new Map<string, number>()

  constructor(
    readonly name: string,
    readonly modelPath: string,
    private readonly cfg: SessionConfig = {},
    scalars: Record<string, number> = {},
  ) {
    this.setScalars(scalars)
  }

  setScalars(values: Record<string, number>): void {
    for (const [k, v] of Object.entries(values)) this.scalars.set(k, v)
  }

  get loaded(): boolean {
    return this.opened !== undefined
  }

  get provider(): ProviderName | undefined {
    return this.opened?.provider
  }

  /** 'fp32' or the fp16 graph's mode, once loaded. */
  get compute(): OpenedSession['compute'] | undefined {
    return this.opened?.compute
  }

  /** How the loaded session used the optimised-model cache, if the config asked for it. */
  get optimized(): OptimizedUse | undefined {
    return this.opened?.optimized
  }

  get inputNames(): readonly string[] {
    return this.opened?.session.inputNames ?? []
  }

  /** Element type per tensor input (e.g. 'float32', 'int64'), once loaded. */
  get inputTypes(): Map<string, string> {
    const m = new Map<string, string>()
    for (const meta of this.opened?.session.inputMetadata ?? [])
      if (meta.isTensor) m.set(meta.name, meta.type)
    return m
  }

  /** Declared shape per tensor input (numbers for fixed axes, names for symbolic ones), once loaded. */
  get inputShapes(): Map<string, readonly (number | string)[]> {
    const m = new Map<string, readonly (number | string)[]>()
    for (const meta of this.opened?.session.inputMetadata ?? [])
      if (meta.isTensor) m.set(meta.name, meta.shape)
    return m
  }

  get outputNames(): readonly string[] {
    return this.opened?.session.outputNames ?? []
  }

  async load(): Promise<void> {
    if (this.opened) return
    this.loading ??= openSession(this.modelPath, this.cfg, this.name)
    try {
      this.opened = await this.loading
    } finally {
      this.loading = undefined
    }
    // LoRA branch graphs take their multipliers as inputs; without explicit values, use the ones
    // applyLoras last wrote beside the graph.
    const missing = this.opened.session.inputNames.filter(
      (n) => /^lora_scale_\d+$/.test(n) && !this.scalars.has(n),
    )
    if (missing.length) {
      const sidecar = this.modelPath.replace(/\.onnx$/, '.scales.json')
      try {
        const values = JSON.parse(fs.readFileSync(sidecar, 'utf8')) as Record<string, number>
        for (const n of missing) if (typeof values[n] === 'number') this.scalars.set(n, values[n])
      } catch {
        // Reported by run() as a missing input.
      }
    }
  }

  async run(feeds: Feeds, outputs?: string[]): Promise<Record<string, ort.Tensor>> {
    await this.load()
    const s = (this.opened as OpenedSession).session
    for (const n of s.inputNames) {
      const v = this.scalars.get(n)
      if (!(n in feeds) && v !== undefined)
        feeds = { ...feeds, [n]: new ort.Tensor('float32', Float32Array.from([v]), []) }
    }
    validateFeeds(this.name, s, feeds)
    if (outputs) {
      const unknown = outputs.filter((o) => !s.outputNames.includes(o))
      if (unknown.length)
        throw new Error(
          `${this.name}: no output(s) ${unknown.join(', ')} (it has ${s.outputNames.join(', ')})`,
        )
    }
    if (this.opened?.compute !== 'fp32') fp16Runs++
    return outputs ? s.run(feeds, outputs) : s.run(feeds)
  }

  async release(): Promise<void> {
    const o = this.opened
    this.opened = undefined
    if (o) await o.session.release()
  }
}
