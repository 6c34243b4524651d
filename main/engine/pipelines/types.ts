import type * as ort from 'onnxruntime-node'
import type { EmbeddingRows } from '../runtime/model-set'

/**
 * What the pipelines need from a loaded model. ModelSet (engine/runtime) satisfies it; tests and benches
 * wrap it (timing, tracing) without touching the pipelines.
 */
export interface DiffusionModel {
  readonly id: string
  /** ids [batch, seq] -> hidden states [batch, seq, width]; clipSkip N = the N-th layer from the end + final LN. */
  encodeText(
    ids: BigInt64Array,
    batch: number,
    clipSkip?: number,
    /** Textual-inversion vectors that replace token-embedding rows. */
    rows?: readonly EmbeddingRows[],
  ): Promise<ort.Tensor>
  /**
   * Noise prediction for sample [B, C, h, w] at one timestep, context [B, tokens, width]; SDXL models also
   * take the added conditioning (see AddedConditioning).
   */
  unet(
    sample: ort.Tensor,
    timestep: number,
    context: ort.Tensor,
    added?: AddedConditioning,
  ): Promise<ort.Tensor>
  /** 'sdxl': two text encoders (encodeTextXL) and added conditioning; absent or 'sd-1': SD 1.x. */
  readonly family?: 'sd-1' | 'sdxl'
  /** Width of the (first) text encoder's token embeddings, when known: embeddings of another width are skipped. */
  tokenEmbeddingWidth?(): Promise<number | undefined>
  /**
   * SDXL: encoder 1 on `ids` (EOS-padded) and encoder 2 on `ids2` (0-padded), [batch, seq] each: both
   * penultimate hidden states (no final LayerNorm) and encoder 2's pooled projection [batch, proj].
   */
  encodeTextXL?(
    ids: BigInt64Array,
    ids2: BigInt64Array,
    batch: number,
    rows?: { l: readonly EmbeddingRows[]; g: readonly EmbeddingRows[] },
  ): Promise<{ hidden: ort.Tensor; hidden2: ort.Tensor; pooled: ort.Tensor }>
  /** Image [B, 3, H, W] in [-1, 1] -> mean and std of the (unscaled) latent distribution. */
  encode(image: ort.Tensor): Promise<{ mean: ort.Tensor; std: ort.Tensor }>
  /** Latents already divided by the scaling factor -> raw image in about [-1, 1]. */
  decode(latents: ort.Tensor): Promise<ort.Tensor>
}

/**
 * SDXL's added conditioning of one UNet call, one row per batch row in the context's order: the pooled text
 * embedding [B, proj] and the six time ids [B, 6] (original h, w; crop top, left; target h, w).
 */
export interface AddedConditioning {
  textEmbeds: ort.Tensor
  timeIds: ort.Tensor
}

/** Where a random draw happens; diffusers' draw order per pipeline is documented at each call. */
export type NoiseOrigin = 'vae' | 'pipeline' | 'scheduler'

/**
 * Gaussian noise in the order the pipelines draw it. The default source is seeded (torch CPU generator
 * per image); the reference runner replays the oracle's recorded draws.
 */
export interface NoiseSource {
  /**
   * The next N(0, 1) tensor of this shape ([batch, ...]); origin names the drawing module (sources from
   * engine/random ignore it).
   */
  randn(shape: number[], origin?: NoiseOrigin): Float32Array
}

export interface LatentShape {
  batch: number
  channels: number
  height: number
  width: number
}

export function latentSize(s: LatentShape): number {
  return s.batch * s.channels * s.height * s.width
}

/** Per-step report (also used for the progress events). */
export interface StepInfo {
  /** Steps done, 1-based. */
  step: number
  total: number
  timestep: number
  elapsedMs: number
  etaMs: number
  /** The latents after this step (do not keep a reference; it is reused). */
  latents: Float32Array
  shape: LatentShape
}

/** Optional per-UNet-call trace (reference runner and tests). */
export interface UnetTrace {
  step: number
  timestep: number
  input: Float32Array
  output: Float32Array
  latents: Float32Array
}

export class GenerationCancelled extends Error {
  constructor(message = 'Generation cancelled.') {
    super(message)
    this.name = 'AbortError'
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new GenerationCancelled()
}
