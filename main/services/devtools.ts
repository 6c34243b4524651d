/**
 * Developer tools behind `atelier convert` and `atelier reference`: a checkpoint (a file, a folder, or a library
 * model) to ONNX graphs in the data folder's conversion cache, LoRAs applied on top; and the golden-data sets run
 * from their manifests. Both use the cache of the services they are given.
 */
import path from 'node:path'
import type { ConvertProgress } from '../engine/convert/convert'
import { convertCheckpoint } from '../engine/convert/convert'
import { applyLoras } from '../engine/lora/variant'
import { formatResults, runReference, type CaseResult } from '../engine/reference/run'
import type { ProviderSkip } from '../engine/runtime/providers'
import type { Services } from './container'
import { AppError } from './errors'
import { providerPreference } from './upscale-file'

export type { CaseResult, ConvertProgress }
export { formatResults }

export interface ConvertLora {
  /** A LoRA file, or a LoRA in the library (name or id). */
  ref: string
  multiplier: number
}

export interface ConvertRequest {
  /** A checkpoint file or diffusers folder, or a library checkpoint (name or id). */
  checkpoint: string
  loras?: ConvertLora[]
  /** branch: multipliers as graph inputs; merge: weights baked in. */
  loraMode?: 'branch' | 'merge'
  precision?: 'fp16' | 'fp32'
  signal?: AbortSignal
  onProgress?: (p: ConvertProgress) => void
}

type Converted = Awaited<ReturnType<typeof convertCheckpoint>>

export interface ConvertResult {
  model: Converted
  /** The LoRA set's graphs when LoRAs were given, with the files they resolved to. */
  loras?: {
    variant: Awaited<ReturnType<typeof applyLoras>>
    files: { path: string; multiplier: number }[]
    ms: number
  }
  /** Conversion time (near 0 when it was cached). */
  ms: number
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err))

export async function convertModel(
  services: Pick<Services, 'resolvers' | 'conversionCache'>,
  req: ConvertRequest,
): Promise<ConvertResult> {
  const checkpoint = (await services.resolvers.model(req.checkpoint)).path
  const files: { path: string; multiplier: number }[] = []
  for (const l of req.loras ?? [])
    files.push({ path: (await services.resolvers.lora(l.ref, 'request')).path, multiplier: l.multiplier })
  const cacheRoot = services.conversionCache
  const cancelled = (): never => {
    throw new AppError('cancelled', 'conversion cancelled; nothing was left in the cache')
  }
  try {
    const t0 = performance.now()
    const model = await convertCheckpoint(path.resolve(checkpoint), {
      cacheRoot,
      precision: req.precision ?? 'fp16',
      signal: req.signal,
      onProgress: req.onProgress,
    })
    const ms = performance.now() - t0
    if (!files.length) return { model, ms }
    const t1 = performance.now()
    const variant = await applyLoras(model, files, {
      cacheRoot,
      signal: req.signal,
      mode: req.loraMode ?? 'branch',
    })
    return { model, loras: { variant, files, ms: performance.now() - t1 }, ms }
  } catch (err) {
    if (req.signal?.aborted) cancelled()
    if (err instanceof AppError) throw err
    throw new AppError('invalid-input', message(err))
  }
}

export interface ReferenceRequest {
  manifest: string
  out: string
  cases?: string[]
  /** Default cpu. */
  provider?: string
  /**
   * Compute precision of the text encoders, UNet and image encoder (default fp32). 'fp16' runs them as fp16
   * graphs on GPU providers, and on the CPU as `cpuFp16` says (default 'emulate'); the tensors that passed
   * through them are then held to the fp16 rule (engine/reference/tolerance.ts).
   */
  precision?: string
  cpuFp16?: string
  log?: (line: string) => void
  onFallback?: (s: ProviderSkip) => void
}

export async function runReferenceSet(
  services: Pick<Services, 'conversionCache'>,
  req: ReferenceRequest,
): Promise<CaseResult[]> {
  const preference = providerPreference(req.provider ?? 'cpu')
  const precision = req.precision ?? 'fp32'
  if (precision !== 'fp32' && precision !== 'fp16')
    throw new AppError('invalid-input', `precision must be fp32 or fp16, got "${precision}"`)
  const cpuFp16 = req.cpuFp16 ?? 'emulate'
  if (cpuFp16 !== 'emulate' && cpuFp16 !== 'native')
    throw new AppError('invalid-input', `the CPU's fp16 mode must be emulate or native, got "${cpuFp16}"`)
  try {
    return await runReference(path.resolve(req.manifest), {
      out: path.resolve(req.out),
      cases: req.cases ?? [],
      cacheRoot: services.conversionCache,
      log: req.log,
      session: {
        preference,
        ...(precision === 'fp16' ? { precision, cpuFp16 } : {}),
        ...(req.onFallback ? { onFallback: req.onFallback } : {}),
      },
    })
  } catch (err) {
    throw new AppError('invalid-input', message(err))
  }
}
