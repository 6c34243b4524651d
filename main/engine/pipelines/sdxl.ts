/**
 * What SDXL adds to the shared pipelines (everything else, from the denoise loop to paste-back, is the SD 1.x
 * code): two text encoders with their own padding, the pooled text embedding and six time ids fed to the
 * UNet as added conditioning, the zeroed negative for an empty negative prompt, its VAE scaling factor and
 * its sizes.
 */
import * as ort from 'onnxruntime-node'
import type { SdxlConditioning } from '../../../preload/contract-types'
import { applyWeights, embeddingRows, flattenChunks } from '../prompt'
import type { TokenizedPrompt } from '../prompt'
import { SD15_SCHEDULER_CONFIG } from '../schedulers'
import type { Scheduler, SchedulerConfig } from '../schedulers'
import type { AddedConditioning, DiffusionModel } from './types'

/** SDXL VAE latent scaling (diffusers AutoencoderKL config of SDXL base; not stored in single files). */
export const SDXL_SCALING_FACTOR = 0.13025
export const SDXL_DEFAULT_SIZE = 1024

/**
 * stabilityai/stable-diffusion-xl-base-1.0 scheduler_config.json: SD 1.5's numbers with 'leading' timestep
 * spacing for every sampler (what diffusers' SDXL pipelines, and its single-file loader, use).
 */
export const SDXL_SCHEDULER_CONFIG: Readonly<SchedulerConfig> = Object.freeze({
  ...SD15_SCHEDULER_CONFIG,
  timestep_spacing: 'leading',
  use_karras_sigmas: false,
} satisfies SchedulerConfig)

/** SDXL's training aspect buckets near one megapixel (width x height), offered as size presets. */
export const SDXL_ASPECT_BUCKETS: readonly { width: number; height: number; label: string }[] = [
  { width: 1024, height: 1024, label: '1:1' },
  { width: 1152, height: 896, label: '9:7' },
  { width: 896, height: 1152, label: '7:9' },
  { width: 1216, height: 832, label: '19:13' },
  { width: 832, height: 1216, label: '13:19' },
  { width: 1344, height: 768, label: '7:4' },
  { width: 768, height: 1344, label: '4:7' },
  { width: 1536, height: 640, label: '12:5' },
  { width: 640, height: 1536, label: '5:12' },
]

/** Sizes in pixels; every field optional (see sdxlTimeIds for the defaults). */
export type SdxlSizeConditioning = SdxlConditioning

/**
 * The six time ids (orig_h, orig_w, crop_top, crop_left, target_h, target_w) for an image of the given size,
 * with diffusers' and A1111's defaults (original = target = generated size, crop 0, 0).
 */
export function sdxlTimeIds(width: number, height: number, o: SdxlSizeConditioning = {}): Float32Array {
  return Float32Array.from([
    o.originalHeight ?? height,
    o.originalWidth ?? width,
    o.cropTop ?? 0,
    o.cropLeft ?? 0,
    o.targetHeight ?? height,
    o.targetWidth ?? width,
  ])
}

/**
 * A model whose UNet calls carry fixed added conditioning: `pooled` [rows, P] (rows = the context's batch,
 * e.g. [uncond x B, cond x B]) and the same six time ids for every row. The pipelines run it as any model.
 */
export function withAddedConditioning(
  model: DiffusionModel,
  pooled: ort.Tensor,
  timeIds: Float32Array,
  /** Prompt editing: the pooled embeddings of a context other than the first step's. */
  pooledOf?: (context: ort.Tensor) => ort.Tensor | undefined,
): DiffusionModel {
  const rows = pooled.dims[0] ?? 0
  if (timeIds.length !== 6) throw new Error(`SDXL time ids: expected 6 values, got ${timeIds.length}`)
  const ids = new Float32Array(rows * 6)
  for (let r = 0; r < rows; r++) ids.set(timeIds, r * 6)
  const added: AddedConditioning = {
    textEmbeds: pooled,
    timeIds: new ort.Tensor('float32', ids, [rows, 6]),
  }
  return {
    id: model.id,
    family: model.family,
    encodeText: (i, b, s, r) => model.encodeText(i, b, s, r),
    ...(model.encodeTextXL ? { encodeTextXL: model.encodeTextXL.bind(model) } : {}),
    encode: (image) => model.encode(image),
    decode: (latents) => model.decode(latents),
    unet: async (sample, t, context) => {
      const b = sample.dims[0] ?? 0
      if (b !== rows || (context.dims[0] ?? 0) !== rows)
        throw new Error(
          `SDXL added conditioning has ${rows} rows; the UNet call has ${b} samples and ${context.dims[0]} contexts`,
        )
      const own = pooledOf?.(context)
      return model.unet(sample, t, context, own ? { ...added, textEmbeds: own } : added)
    },
  }
}

/** Encoder 2's ids: the same chunks with everything after the first EOS set to 0 (OpenCLIP padding). */
function zeroPadded(ids: Int32Array, chunkSize: number, eos: number): BigInt64Array {
  const out = BigInt64Array.from(ids, (v) => BigInt(v))
  for (let start = 0; start < ids.length; start += chunkSize) {
    let seen = false
    for (let i = start; i < start + chunkSize; i++) {
      if (seen) out[i] = 0n
      else if (ids[i] === eos) seen = true
    }
  }
  return out
}

export interface Encoded {
  /** [K*77, W1 + W2] */
  data: Float32Array
  rows: number
  width: number
  /** [P]: encoder 2's pooled projection of the first chunk (A1111 and diffusers take it from there). */
  pooled: Float32Array
}

/**
 * One chunked prompt through both encoders: A1111 "emphasis: Original" on each encoder's output on its own
 * (the two are separate embedders upstream, each restoring its own mean), then concatenated on the last axis.
 */
export async function encodeChunksXL(
  model: DiffusionModel,
  tokens: TokenizedPrompt,
  vectorsOf: (name: string, key: 'clip_l' | 'clip_g') => Float32Array = () => {
    throw new Error('no embeddings given')
  },
): Promise<Encoded> {
  if (!model.encodeTextXL) throw new Error(`model ${model.id} has no SDXL text encoders`)
  const { ids, weights, chunkCount, chunkSize } = flattenChunks(tokens)
  const eos = tokens.chunks[0]?.tokens.at(-1) ?? 49407
  const l = embeddingRows(tokens.chunks, (n) => vectorsOf(n, 'clip_l'))
  const g = embeddingRows(tokens.chunks, (n) => vectorsOf(n, 'clip_g'))
  const out = await model.encodeTextXL(
    BigInt64Array.from(ids, (v) => BigInt(v)),
    zeroPadded(ids, chunkSize, eos),
    chunkCount,
    l.length ? { l, g } : undefined,
  )
  const w1 = out.hidden.dims[2] ?? 0
  const w2 = out.hidden2.dims[2] ?? 0
  const a = applyWeights(out.hidden.data as Float32Array, weights, chunkSize)
  const b = applyWeights(out.hidden2.data as Float32Array, weights, chunkSize)
  const rows = chunkCount * chunkSize
  const width = w1 + w2
  const data = new Float32Array(rows * width)
  for (let r = 0; r < rows; r++) {
    data.set(a.subarray(r * w1, (r + 1) * w1), r * width)
    data.set(b.subarray(r * w2, (r + 1) * w2), r * width + w1)
  }
  const p = out.pooled.dims[1] ?? 0
  return { data, rows, width, pooled: (out.pooled.data as Float32Array).slice(0, p) }
}

/**
 * diffusers' SDXL img2img `get_timesteps` with `denoising_start` (the refiner hand-off): the full schedule of
 * `steps`, keeping the timesteps below round(T - denoisingStart * T); strength is ignored.
 */
export function timestepsFromDenoisingStart(
  scheduler: Scheduler,
  steps: number,
  denoisingStart: number,
  trainTimesteps = 1000,
): Float64Array {
  if (!(denoisingStart > 0 && denoisingStart < 1))
    throw new Error(`denoising start must be between 0 and 1 (got ${denoisingStart})`)
  scheduler.setTimesteps(steps)
  // Python's round(): halves to even.
  const x = trainTimesteps - denoisingStart * trainTimesteps
  const r = Math.round(x)
  const cutoff = Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
  return scheduler.timesteps.filter((t) => t < cutoff)
}
