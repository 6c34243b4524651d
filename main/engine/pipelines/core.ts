/**
 * Tensor-level pipelines, step for step as diffusers 0.21.4 runs them (same draws in the same order), so
 * that the oracle can check them. Images are NCHW float32 in [-1, 1]; latents are scaled
 * (x scaling factor). The studio wrappers (generate.ts) add prompts, image files, masks and paste-back.
 */
import * as ort from 'onnxruntime-node'
import type { Scheduler } from '../schedulers'
import type { ContextAt, DenoiseOptions, LatentBlend } from './denoise'
import { denoise } from './denoise'
import type { KSampling } from './ksampling'
import { runK } from './ksampling'
import type { StepPlan } from './strength'
import { fullSchedule, planSteps } from './strength'
import { sampleLatents, scale } from './tensor'
import type { DiffusionModel, LatentShape, NoiseSource, StepInfo, UnetTrace } from './types'
import { throwIfAborted } from './types'

export const SD1_SCALING_FACTOR = 0.18215

export interface CoreOptions {
  model: DiffusionModel
  scheduler: Scheduler
  steps: number
  /** [uncond x B, cond x B] with CFG, else cond x B. */
  context: ort.Tensor
  guidanceScale: number
  /** AND weights / uncond presence (see DenoiseOptions); defaults: one cond, uncond when g > 1. */
  condWeights?: number[]
  withUncond?: boolean
  noise: NoiseSource
  /**
   * Sample the A1111 / ComfyUI way (engine/kdiffusion) instead of with `scheduler` (diffusers): the
   * sampler, schedule type and step slicing of that convention.
   */
  sampling?: KSampling
  /** Noise of the VAE posterior sample (A1111 draws it from another generator); default `noise`. */
  vaeNoise?: NoiseSource
  /** Per-step conditioning (prompt editing): context of model call `call`; default `context`. */
  contextAt?: ContextAt
  /** Latent shape: batch, 4, height / 8, width / 8. */
  shape: LatentShape
  scalingFactor?: number
  signal?: AbortSignal
  onStep?: (info: StepInfo) => void | Promise<void>
  trace?: (t: UnetTrace) => void
}

export interface CoreResult {
  latents: Float32Array
  plan: StepPlan
}

function loopOptions(o: CoreOptions, timesteps: Float64Array, latents: Float32Array): DenoiseOptions {
  return {
    model: o.model,
    scheduler: o.scheduler,
    timesteps,
    latents,
    shape: o.shape,
    context: o.context,
    guidanceScale: o.guidanceScale,
    condWeights: o.condWeights,
    withUncond: o.withUncond,
    noise: o.noise,
    contextAt: o.contextAt,
    signal: o.signal,
    onStep: o.onStep,
    trace: o.trace,
  }
}

/** The k-diffusion run of a core call (see ksampling.ts). */
function kOptions(o: CoreOptions, sampling: KSampling): Parameters<typeof runK>[0] {
  return {
    model: o.model,
    shape: o.shape,
    context: o.context,
    guidanceScale: o.guidanceScale,
    condWeights: o.condWeights,
    withUncond: o.withUncond,
    contextAt: o.contextAt,
    sampling,
    steps: o.steps,
    noise: o.noise,
    signal: o.signal,
    onStep: o.onStep,
    trace: o.trace,
  }
}

/** Scaled clean latents of the image: A1111 samples the posterior (own generator), ComfyUI takes its mean. */
async function kInitLatents(o: CoreOptions, sampling: KSampling, image: Float32Array): Promise<Float32Array> {
  const zero = { randn: (shape: number[]) => new Float32Array(shape.reduce((a, b) => a * b, 1)) }
  const vae = sampling.convention === 'comfy' ? zero : (o.vaeNoise ?? o.noise)
  return encodeLatents(o.model, image, o.shape, vae, o.scalingFactor, o.signal)
}

function latentDims(s: LatentShape): number[] {
  return [s.batch, s.channels, s.height, s.width]
}

/**
 * VAE encode + sample: scaling * (mean + std * noise), noise drawn once for the whole batch (diffusers'
 * `latent_dist.sample(generator)`). Images are encoded one at a time to bound memory.
 */
export async function encodeLatents(
  model: DiffusionModel,
  image: Float32Array,
  shape: LatentShape,
  noise: NoiseSource,
  scalingFactor = SD1_SCALING_FACTOR,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const H = shape.height * 8
  const W = shape.width * 8
  const per = 3 * H * W
  if (image.length !== shape.batch * per)
    throw new Error(`encodeLatents: image has ${image.length} values, expected ${shape.batch}x3x${H}x${W}`)
  const lat = 4 * shape.height * shape.width
  const mean = new Float32Array(shape.batch * lat)
  const std = new Float32Array(shape.batch * lat)
  for (let b = 0; b < shape.batch; b++) {
    throwIfAborted(signal)
    const r = await model.encode(new ort.Tensor('float32', image.slice(b * per, (b + 1) * per), [1, 3, H, W]))
    mean.set(r.mean.data as Float32Array, b * lat)
    std.set(r.std.data as Float32Array, b * lat)
  }
  const eps = noise.randn(latentDims({ ...shape, channels: 4 }), 'vae')
  return sampleLatents(mean, std, eps, scalingFactor)
}

/** latents / scaling -> VAE decoder, one image at a time; raw output [B, 3, H, W] (about [-1, 1]). */
export async function decodeLatents(
  model: DiffusionModel,
  latents: Float32Array,
  shape: LatentShape,
  scalingFactor = SD1_SCALING_FACTOR,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const lat = 4 * shape.height * shape.width
  const per = 3 * shape.height * 8 * shape.width * 8
  const out = new Float32Array(shape.batch * per)
  for (let b = 0; b < shape.batch; b++) {
    throwIfAborted(signal)
    const z = new Float32Array(lat)
    // diffusers: latents / scaling_factor (a float32 division)
    for (let i = 0; i < lat; i++) z[i] = Math.fround(latents[b * lat + i]! / scalingFactor)
    const img = await model.decode(new ort.Tensor('float32', z, [1, 4, shape.height, shape.width]))
    out.set(img.data as Float32Array, b * per)
  }
  return out
}

/** txt2img: x_T = randn * init_noise_sigma (pipeline draw), full schedule. */
export async function coreTxt2Img(o: CoreOptions): Promise<CoreResult> {
  if (o.sampling) return runK(kOptions(o, o.sampling))
  const plan = fullSchedule(o.scheduler, o.steps)
  const x = o.noise.randn(latentDims(o.shape), 'pipeline')
  const latents = scale(x, o.scheduler.initNoiseSigma)
  return { latents: await denoise(loopOptions(o, plan.timesteps, latents)), plan }
}

export interface Img2ImgCoreOptions extends CoreOptions {
  /** [B, 3, H, W] in [-1, 1]. */
  image: Float32Array
  strength: number
  exactSteps?: boolean
  /**
   * Latent-noise masked content: where this plane ([B, h, w], 1 = replace) is set, the encoded latents
   * are replaced by fresh noise (A1111 "latent noise") or zero ("latent nothing") before noising.
   */
  prepareInit?: (init: Float32Array) => Float32Array
}

/**
 * img2img (StableDiffusionImg2ImgPipeline): draws vae noise, then the pipeline noise;
 * latents = add_noise(init, noise, timesteps[0]).
 */
export async function coreImg2Img(o: Img2ImgCoreOptions): Promise<CoreResult & { init: Float32Array }> {
  if (o.sampling) {
    let init = await kInitLatents(o, o.sampling, o.image)
    if (o.prepareInit) init = o.prepareInit(init)
    const r = await runK({ ...kOptions(o, o.sampling), init, strength: o.strength, fixSteps: o.exactSteps })
    return { ...r, init }
  }
  const plan = planSteps(o.scheduler, o.steps, o.strength, o.exactSteps)
  let init = await encodeLatents(o.model, o.image, o.shape, o.noise, o.scalingFactor, o.signal)
  if (o.prepareInit) init = o.prepareInit(init)
  const noise = o.noise.randn(latentDims(o.shape), 'pipeline')
  const start = o.scheduler.addNoise(init, noise, plan.timesteps[0]!)
  return { latents: await denoise(loopOptions(o, plan.timesteps, start)), plan, init }
}

export interface LegacyInpaintCoreOptions extends Img2ImgCoreOptions {
  /** 1 = keep, 0 = repaint, [B, 4, h, w] (see expandPlanes). */
  keep: Float32Array
}

/**
 * Inpainting with an ordinary UNet (StableDiffusionInpaintPipelineLegacy): img2img start (vae draw, then
 * pipeline draw), and after every step the kept area is replaced by the original noised to that step.
 */
export async function coreInpaintLegacy(o: LegacyInpaintCoreOptions): Promise<CoreResult> {
  if (o.sampling) {
    let init = await kInitLatents(o, o.sampling, o.image)
    if (o.prepareInit) init = o.prepareInit(init)
    return runK({
      ...kOptions(o, o.sampling),
      init,
      strength: o.strength,
      fixSteps: o.exactSteps,
      keep: o.keep,
    })
  }
  const plan = planSteps(o.scheduler, o.steps, o.strength, o.exactSteps)
  let init = await encodeLatents(o.model, o.image, o.shape, o.noise, o.scalingFactor, o.signal)
  if (o.prepareInit) init = o.prepareInit(init)
  const noise = o.noise.randn(latentDims(o.shape), 'pipeline')
  const start = o.scheduler.addNoise(init, noise, plan.timesteps[0]!)
  const blend: LatentBlend = { original: init, noise, keep: o.keep }
  return { latents: await denoise({ ...loopOptions(o, plan.timesteps, start), blend }), plan }
}

export interface Inpaint9CoreOptions extends CoreOptions {
  /** [B, 3, H, W] in [-1, 1]. */
  image: Float32Array
  /** Binarised pixel mask [B, 1, H, W], 1 = repaint. */
  mask: Float32Array
  strength: number
  exactSteps?: boolean
}

export interface Inpaint9Result extends CoreResult {
  /** image * (mask < 0.5), [B, 3, H, W]. */
  maskedImage: Float32Array
  /** Mask at latent size (nearest), [B, 1, h, w]. */
  latentMask: Float32Array
}

/** torch.nn.functional.interpolate(mode='nearest') from [B, 1, H, W] to [B, 1, h, w]: src = floor(dst * H / h). */
export function nearestDownsample(
  mask: Float32Array,
  batch: number,
  H: number,
  W: number,
  h: number,
  w: number,
): Float32Array {
  const out = new Float32Array(batch * h * w)
  for (let b = 0; b < batch; b++)
    for (let y = 0; y < h; y++) {
      const sy = Math.min(H - 1, Math.floor((y * H) / h))
      for (let x = 0; x < w; x++) {
        const sx = Math.min(W - 1, Math.floor((x * W) / w))
        out[(b * h + y) * w + x] = mask[(b * H + sy) * W + sx]!
      }
    }
  return out
}

/**
 * PIL `Image.resize(size, NEAREST)` of one 8-bit plane: output pixel (x, y) takes the source pixel under
 * its centre, floor((x + 0.5) * W / w) (diffusers' legacy inpaint mask preprocessing).
 */
export function pilNearestDownsample(
  plane: Uint8Array,
  H: number,
  W: number,
  h: number,
  w: number,
): Uint8Array {
  const out = new Uint8Array(h * w)
  for (let y = 0; y < h; y++) {
    const sy = Math.min(H - 1, Math.floor(((y + 0.5) * H) / h))
    for (let x = 0; x < w; x++) {
      const sx = Math.min(W - 1, Math.floor(((x + 0.5) * W) / w))
      out[y * w + x] = plane[sy * W + sx]!
    }
  }
  return out
}

/** image * (mask < 0.5) and the mask at latent size (nearest), for the 9-channel UNet. */
function inpaintInputs(o: Inpaint9CoreOptions): { maskedImage: Float32Array; latentMask: Float32Array } {
  const H = o.shape.height * 8
  const W = o.shape.width * 8
  const hw = H * W
  const maskedImage = new Float32Array(o.image.length)
  for (let b = 0; b < o.shape.batch; b++)
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < hw; i++) {
        const k = (b * 3 + c) * hw + i
        maskedImage[k] = o.mask[b * hw + i]! < 0.5 ? o.image[k]! : 0
      }
  const latentMask = nearestDownsample(o.mask, o.shape.batch, H, W, o.shape.height, o.shape.width)
  return { maskedImage, latentMask }
}

/**
 * Inpainting with a 9-channel inpainting UNet (StableDiffusionInpaintPipeline). Draw order: image vae
 * draw (only when strength < 1), pipeline noise, then the masked image's vae draw.
 */
export async function coreInpaint9(o: Inpaint9CoreOptions): Promise<Inpaint9Result> {
  if (o.sampling) return kInpaint9(o, o.sampling)
  const strengthMax = o.strength >= 1
  const plan = strengthMax
    ? fullSchedule(o.scheduler, o.steps)
    : planSteps(o.scheduler, o.steps, o.strength, o.exactSteps)
  const dims = latentDims(o.shape)
  const imageLatents = strengthMax
    ? undefined
    : await encodeLatents(o.model, o.image, o.shape, o.noise, o.scalingFactor, o.signal)
  const noise = o.noise.randn(dims, 'pipeline')
  const start = imageLatents
    ? o.scheduler.addNoise(imageLatents, noise, plan.timesteps[0]!)
    : scale(noise, o.scheduler.initNoiseSigma)
  const { maskedImage, latentMask } = inpaintInputs(o)
  const maskedLatents = await encodeLatents(o.model, maskedImage, o.shape, o.noise, o.scalingFactor, o.signal)
  const latents = await denoise({
    ...loopOptions(o, plan.timesteps, start),
    inpaint: { mask: latentMask, maskedLatents },
  })
  return { latents, plan, maskedImage, latentMask }
}

/** 9-channel inpainting sampled the A1111 way: the image is always encoded and noised (also at strength 1). */
async function kInpaint9(o: Inpaint9CoreOptions, sampling: KSampling): Promise<Inpaint9Result> {
  const { maskedImage, latentMask } = inpaintInputs(o)
  const init = await kInitLatents(o, sampling, o.image)
  const maskedLatents = await encodeLatents(
    o.model,
    maskedImage,
    o.shape,
    o.vaeNoise ?? o.noise,
    o.scalingFactor,
    o.signal,
  )
  const r = await runK({
    ...kOptions(o, sampling),
    inpaint: { mask: latentMask, maskedLatents },
    init,
    strength: o.strength,
    fixSteps: o.exactSteps,
  })
  return { latents: r.latents, plan: r.plan, maskedImage, latentMask }
}
