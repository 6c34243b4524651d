import * as ort from 'onnxruntime-node'
import type { Scheduler } from '../schedulers'
import { blend, combine, concatChannels, guidance, repeat } from './tensor'
import type { DiffusionModel, LatentShape, NoiseSource, StepInfo, UnetTrace } from './types'
import { latentSize, throwIfAborted } from './types'

/**
 * Per-step latent blend for inpainting with an ordinary (4-channel) UNet, as diffusers'
 * StableDiffusionInpaintPipelineLegacy does: after each step
 * `latents = add_noise(original, noise, t) * keep + latents * (1 - keep)`, and after the last step the
 * kept area is set back to the clean original latents.
 */
export interface LatentBlend {
  /** Clean (un-noised) latents of the input image, [B, 4, h, w]. */
  original: Float32Array
  /** The noise the start latents were made with (re-used at every step). */
  noise: Float32Array
  /** 1 = keep the original, 0 = generate; [B, 4, h, w]. */
  keep: Float32Array
}

/** Extra UNet input channels of inpainting checkpoints: mask (1) + masked-image latents (4). */
export interface InpaintConditioning {
  /** [B, 1, h, w], 1 = repaint. */
  mask: Float32Array
  /** [B, 4, h, w], scaled latents of the image with the masked area blanked. */
  maskedLatents: Float32Array
}

export interface DenoiseOptions {
  model: DiffusionModel
  scheduler: Scheduler
  /** The timesteps to run (after strength truncation), in order. */
  timesteps: Float64Array
  /** Start latents [B, 4, h, w] (already noised / scaled by the caller). */
  latents: Float32Array
  shape: LatentShape
  /**
   * Text conditioning. With CFG (guidanceScale > 1): [uncond x B, cond x B] along the batch axis,
   * uncond first as diffusers orders it; without CFG: cond x B.
   */
  context: ort.Tensor
  guidanceScale: number
  /**
   * A1111 composable prompts (AND): weights of the cond blocks after the uncond block; the guided eps is
   * uncond + sum_i w_i * g * (cond_i - uncond). Default: one cond block of weight 1.
   */
  condWeights?: number[]
  /** Whether the context starts with an uncond block; default: guidanceScale > 1. */
  withUncond?: boolean
  noise: NoiseSource
  /**
   * Per-step conditioning (prompt editing / alternation): the context of model call `call` (0-based,
   * A1111's CFGDenoiser.step; one call per step here). Same layout as `context`; default: `context`.
   */
  contextAt?: ContextAt
  blend?: LatentBlend
  inpaint?: InpaintConditioning
  signal?: AbortSignal
  onStep?: (info: StepInfo) => void | Promise<void>
  trace?: (t: UnetTrace) => void
}

/** The conditioning of model call `call` (0-based); undefined = the constant context. */
export type ContextAt = (call: number) => ort.Tensor | undefined

/** What one guided UNet evaluation needs (shared by the diffusers loop and the k-diffusion samplers). */
export interface GuidedUnetOptions {
  model: DiffusionModel
  shape: LatentShape
  context: ort.Tensor
  guidanceScale: number
  condWeights?: number[]
  withUncond?: boolean
  inpaint?: InpaintConditioning
  contextAt?: ContextAt
}

export interface GuidedUnetCall {
  /** Guided eps [B, 4, h, w]. */
  eps: Float32Array
  /** The UNet input of all copies (after extra inpaint channels) and its raw output. */
  input: Float32Array
  raw: Float32Array
}

/**
 * One UNet evaluation with CFG: the latents (already input-scaled) repeated for [uncond, cond_1..k],
 * the inpaint channels appended, one batched UNet call, then guidance (or A1111 AND combination).
 */
export function guidedUnet(
  o: GuidedUnetOptions,
): (x: Float32Array, t: number, call: number) => Promise<GuidedUnetCall> {
  const { shape } = o
  const n = latentSize(shape)
  if (shape.channels !== 4) throw new Error(`denoise: latents must have 4 channels (got ${shape.channels})`)
  const weights = o.condWeights ?? [1]
  const cfg = o.withUncond ?? usesCfg(o.guidanceScale)
  if (!cfg && weights.length > 1) throw new Error('denoise: AND sub-prompts need the uncond block')
  const copies = (cfg ? 1 : 0) + weights.length
  if ((o.context.dims[0] ?? 0) !== copies * shape.batch)
    throw new Error(`denoise: context batch ${o.context.dims[0]} is not ${copies} x ${shape.batch}`)
  const hw = shape.height * shape.width
  const extra = o.inpaint
    ? {
        mask: repeat(o.inpaint.mask, copies),
        maskedLatents: repeat(o.inpaint.maskedLatents, copies),
      }
    : undefined
  const inChannels = extra ? 9 : 4
  const dims = [shape.batch * copies, inChannels, shape.height, shape.width]
  return async (x, t, call) => {
    if (x.length !== n) throw new Error(`denoise: latents have ${x.length} values, expected ${n}`)
    let input = copies > 1 ? repeat(x, copies) : x
    if (extra)
      input = concatChannels(
        [
          { data: input, channels: 4 },
          { data: extra.mask, channels: 1 },
          { data: extra.maskedLatents, channels: 4 },
        ],
        shape.batch * copies,
        hw,
      )
    const context = o.contextAt?.(call) ?? o.context
    if (context.dims[0] !== o.context.dims[0])
      throw new Error(
        `denoise: step conditioning has batch ${context.dims[0]}, expected ${o.context.dims[0]}`,
      )
    const out = await o.model.unet(new ort.Tensor('float32', input, dims), t, context)
    const raw = out.data as Float32Array
    const eps = !cfg
      ? raw
      : weights.length === 1 && weights[0] === 1
        ? guidance(raw, o.guidanceScale)
        : combine(raw, weights, o.guidanceScale)
    return { eps, input, raw }
  }
}

/** Whether classifier-free guidance runs (diffusers: guidance_scale > 1). */
export function usesCfg(guidanceScale: number): boolean {
  return guidanceScale > 1
}

/**
 * The one denoise loop every mode uses: CFG batching (uncond first, both halves in one UNet call),
 * optional 9-channel inpaint input, optional legacy latent blend, cancellation checked before every
 * step, progress after every step.
 */
export async function denoise(o: DenoiseOptions): Promise<Float32Array> {
  const { shape, scheduler } = o
  const n = latentSize(shape)
  if (o.latents.length !== n)
    throw new Error(`denoise: latents have ${o.latents.length} values, expected ${n}`)
  const unet = guidedUnet(o)
  const noiseShape = [shape.batch, shape.channels, shape.height, shape.width]
  const stepNoise = (): Float32Array => o.noise.randn(noiseShape, 'scheduler')

  let latents = o.latents
  const total = o.timesteps.length
  const started = performance.now()
  for (let i = 0; i < total; i++) {
    throwIfAborted(o.signal)
    const t = o.timesteps[i]!
    const { eps, input, raw } = await unet(scheduler.scaleModelInput(latents, t), t, i)
    latents = scheduler.step(eps, t, latents, stepNoise)
    if (o.blend) {
      const proper = scheduler.addNoise(o.blend.original, o.blend.noise, t)
      latents = blend(proper, latents, o.blend.keep)
    }
    o.trace?.({ step: i, timestep: t, input, output: raw, latents })
    if (o.onStep) {
      const elapsedMs = performance.now() - started
      await o.onStep({
        step: i + 1,
        total,
        timestep: t,
        elapsedMs,
        etaMs: (elapsedMs / (i + 1)) * (total - i - 1),
        latents,
        shape,
      })
    }
  }
  throwIfAborted(o.signal)
  if (o.blend) latents = blend(o.blend.original, latents, o.blend.keep)
  return latents
}
