/**
 * The studio pipelines: a GenerateRequest (prompt, images as encoded bytes, A1111 controls) -> finished
 * RGB images, one batch at a time. Composes prompt conditioning, the tensor-level cores (core.ts), and
 * the image preparation / paste-back steps (prepare.ts).
 */
import type { GenerateRequest } from '../../../preload/contract-types'
import { resizeImage, zoomOutPlan } from '../image'
import type { RawImage } from '../image/types'
import { createScheduler, schedulerInfo } from '../schedulers'
import { a1111InfotextFields, findKSampler, sdeNoiseField } from '../kdiffusion'
import type { ResolvedSampler } from './ksampling'
import { planK, resolveSampler } from './ksampling'
import type { EmbeddingFile } from '../../model-formats/embedding'
import { isSecondOrderSampler } from '../prompt'
import { encodePrompts } from './conditioning'
import type { Conditioning } from './conditioning'
import type { CoreOptions } from './core'
import {
  coreImg2Img,
  coreInpaint9,
  coreInpaintLegacy,
  coreTxt2Img,
  decodeLatents,
  SD1_SCALING_FACTOR,
} from './core'
import { imageToTensor, tensorToImage } from '../image/tensor'
import { SeededNoise } from './noise'
import type { NoiseVariation } from './noise'
import {
  SDXL_DEFAULT_SIZE,
  SDXL_SCALING_FACTOR,
  SDXL_SCHEDULER_CONFIG,
  sdxlTimeIds,
  withAddedConditioning,
} from './sdxl'
import type { PreparedInpaint } from './prepare'
import { decodeOutpaintSource, prepareImg2Img, prepareInpaint, prepareOutpaint } from './prepare'
import type { StepPlan } from './strength'
import { expandPlanes, repeat } from './tensor'
import type { DiffusionModel, LatentShape, StepInfo } from './types'
import { throwIfAborted } from './types'
import { decodeImage } from '../image/codec'
import { checkPixels, MAX_GENERATION_PIXELS } from '../image/limits'
import { hiresFix, sdUpscale } from '../upscale/hires'
import { withImageTokens } from '../ipadapter/image-prompt'
import type { ImageTokens } from '../ipadapter/image-prompt'

/** A request with every default filled in (what metadata records). */
export type StudioRequest = Required<
  Pick<
    GenerateRequest,
    | 'mode'
    | 'prompt'
    | 'negativePrompt'
    | 'sampler'
    | 'steps'
    | 'cfgScale'
    | 'batchSize'
    | 'batchCount'
    | 'clipSkip'
    | 'strength'
    | 'exactSteps'
    | 'resizeMode'
    | 'maskBlur'
    | 'maskedContent'
    | 'inpaintArea'
    | 'onlyMaskedPadding'
    | 'invertMask'
    | 'rng'
  >
> &
  Pick<
    GenerateRequest,
    | 'width'
    | 'height'
    | 'image'
    | 'mask'
    | 'hires'
    | 'sdUpscale'
    | 'sdxl'
    | 'variationSeed'
    | 'variationStrength'
    | 'sameSeed'
    | 'scheduleType'
    | 'samplerConvention'
  > & {
    outpaint: Required<NonNullable<GenerateRequest['outpaint']>>
  }

export const DEFAULT_SAMPLER = 'Euler a'
export const DEFAULT_OUTPAINT_OVERLAP = 32

export function withDefaults(r: GenerateRequest): StudioRequest {
  const o = r.outpaint ?? {}
  return {
    mode: r.mode,
    prompt: r.prompt,
    negativePrompt: r.negativePrompt ?? '',
    sampler: r.sampler ?? DEFAULT_SAMPLER,
    ...(r.scheduleType ? { scheduleType: r.scheduleType } : {}),
    ...(r.samplerConvention ? { samplerConvention: r.samplerConvention } : {}),
    steps: r.steps ?? 20,
    cfgScale: r.cfgScale ?? 7,
    batchSize: r.batchSize ?? 1,
    batchCount: r.batchCount ?? 1,
    clipSkip: r.clipSkip ?? 1,
    strength: r.strength ?? (r.mode === 'outpaint' ? 1 : 0.75),
    exactSteps: r.exactSteps ?? false,
    resizeMode: r.resizeMode ?? 'just-resize',
    maskBlur: r.maskBlur ?? 4,
    maskedContent: r.maskedContent ?? (r.mode === 'outpaint' ? 'fill' : 'original'),
    inpaintArea: r.inpaintArea ?? 'whole-picture',
    onlyMaskedPadding: r.onlyMaskedPadding ?? 32,
    invertMask: r.invertMask ?? false,
    rng: r.rng ?? 'cpu',
    width: r.width,
    height: r.height,
    image: r.image,
    mask: r.mask,
    ...(r.mode === 'txt2img' && r.hires ? { hires: r.hires } : {}),
    ...(r.mode === 'img2img' && r.sdUpscale ? { sdUpscale: r.sdUpscale } : {}),
    ...(r.sdxl ? { sdxl: r.sdxl } : {}),
    ...(r.variationStrength && r.variationSeed !== undefined && r.variationSeed >= 0
      ? { variationSeed: r.variationSeed, variationStrength: r.variationStrength }
      : {}),
    ...(r.sameSeed ? { sameSeed: true } : {}),
    outpaint: {
      left: o.left ?? 0,
      right: o.right ?? 0,
      top: o.top ?? 0,
      bottom: o.bottom ?? 0,
      overlap: o.overlap ?? DEFAULT_OUTPAINT_OVERLAP,
      repeat: o.repeat ?? 1,
      zoomOut: o.zoomOut ?? 1,
    },
  }
}

export interface StudioProgress extends StepInfo {
  /** Batch (0-based) of batchCount; outpaint repeats count as batches of their own. */
  batch: number
  batchCount: number
}

export interface StudioBatch {
  batch: number
  images: RawImage[]
  seeds: number[]
  /** A1111 variation seeds of the images, when the request has a variation strength. */
  variationSeeds?: number[]
}

export interface StudioEnv {
  model: DiffusionModel
  /** BPE ids of a text without BOS/EOS. */
  encode: (text: string) => readonly number[]
  /** The UNet takes 9 input channels (inpainting checkpoint). */
  inpaintModel: boolean
  scalingFactor?: number
  signal?: AbortSignal
  onProgress?: (p: StudioProgress) => void | Promise<void>
  onBatch?: (b: StudioBatch) => void | Promise<void>
  /** Image prompt (IP-Adapter): tokens appended to every conditioning row; `model` must have the IP UNet. */
  imageTokens?: ImageTokens
  /** Textual-inversion embeddings the prompts may use by file name (the library's). */
  embeddings?: readonly EmbeddingFile[]
}

export interface StudioSummary {
  width: number
  height: number
  /** UNet steps per image (after strength). */
  stepsRun: number
  scheduleLength: number
  warnings: string[]
  /** LoRA tags found in the prompt (resolved by the caller). */
  promptLoras: Conditioning['loras']
  /** Embeddings the prompts used, by name. */
  embeddings: string[]
}

/** Rejects sizes the VAE cannot take: not a multiple of 8 (with the field named). */
export function checkSize(width: number, height: number, what = 'size'): void {
  for (const [k, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(v) || v < 8)
      throw new Error(`${what}: ${k} ${v} is not a positive whole number of pixels`)
    if (v % 8 !== 0) throw new Error(`${what}: ${k} ${v} is not a multiple of 8`)
  }
  checkPixels(width, height, what, MAX_GENERATION_PIXELS, 8)
}

interface BatchCtx {
  req: StudioRequest
  env: StudioEnv
  cond: Conditioning
  /** The hires pass's conditioning when its prompt schedule differs (prompt editing). */
  hiresCond?: Conditioning
  batch: number
  batchCount: number
  seeds: number[]
  variation?: NoiseVariation
}

/** The context of one image of a batch (seed, and its variation seed) for passes that run image by image. */
function single(c: BatchCtx, seed: number, index: number): BatchCtx {
  const { variation, ...rest } = c
  return {
    ...rest,
    seeds: [seed],
    ...(variation
      ? { variation: { seeds: [variation.seeds[index] as number], strength: variation.strength } }
      : {}),
  }
}

/** The latent scaling of the env's model: given, else its family's (SD 1.x 0.18215, SDXL 0.13025). */
function scalingOf(env: StudioEnv): number {
  return env.scalingFactor ?? (env.model.family === 'sdxl' ? SDXL_SCALING_FACTOR : SD1_SCALING_FACTOR)
}

/** Default generation size of the env's model family (SD 1.x 512, SDXL 1024). */
export function defaultSize(model: DiffusionModel): number {
  return model.family === 'sdxl' ? SDXL_DEFAULT_SIZE : 512
}

/**
 * The request's sampler, schedule type and convention resolved (A1111 names run the A1111 way unless
 * the request asks for 'diffusers'); throws a readable error for unknown names.
 */
export function studioSampler(
  req: Pick<StudioRequest, 'sampler' | 'scheduleType' | 'samplerConvention'>,
  sdxl = false,
): ResolvedSampler {
  return resolveSampler(
    req.sampler,
    req.scheduleType,
    req.samplerConvention,
    (n) => schedulerInfo(n) !== undefined,
    sdxl,
  )
}

/**
 * The infotext fields of the sampler as A1111 writes them (`Sampler`, `Schedule type` when A1111 would
 * write one, Beta parameters), plus `Sampler convention` when it is not A1111's.
 */
export function samplerInfotext(
  req: Pick<StudioRequest, 'sampler' | 'scheduleType' | 'samplerConvention' | 'steps'>,
  sdxl = false,
): { sampler: string; scheduleType?: string; extra: Record<string, string> } {
  const r = studioSampler(req, sdxl)
  if (!r.sampling) {
    const extra: Record<string, string> = { 'Sampler convention': 'diffusers' }
    return {
      sampler: r.sampler,
      ...(r.scheduleType !== 'Automatic' ? { scheduleType: r.scheduleType } : {}),
      extra,
    }
  }
  if (r.convention === 'comfy')
    return {
      sampler: r.sampler,
      scheduleType: planK(r.sampling, req.steps).resolvedSchedule,
      extra: {
        'Sampler convention': 'comfy',
        ...(findKSampler(r.sampler) ? sdeNoiseField(findKSampler(r.sampler)!) : {}),
      },
    }
  const fields = a1111InfotextFields(planK(r.sampling, req.steps))
  const { 'Schedule type': scheduleType, ...extra } = fields
  return { sampler: r.sampler, ...(scheduleType ? { scheduleType } : {}), extra }
}

function coreBase(c: BatchCtx, shape: LatentShape, cond: Conditioning = c.cond): CoreOptions {
  const { req, env } = c
  const sdxl = env.model.family === 'sdxl'
  const resolved = studioSampler(req, sdxl)
  // SDXL: the pooled embeddings and the time ids of this canvas ride along with every UNet call.
  const model = cond.pooled
    ? withAddedConditioning(
        env.model,
        cond.pooled,
        sdxlTimeIds(shape.width * 8, shape.height * 8, req.sdxl),
        cond.pooledOf,
      )
    : env.model
  return {
    model,
    // With an A1111 / ComfyUI sampling plan the diffusers scheduler is not used.
    scheduler: createScheduler(resolved.sampling ? 'Euler' : resolved.sampler, {
      ...(sdxl ? SDXL_SCHEDULER_CONFIG : {}),
      ...resolved.diffusersConfig,
    }),
    ...(resolved.sampling ? { sampling: resolved.sampling, vaeNoise: new SeededNoise(c.seeds, 'cpu') } : {}),
    steps: req.steps,
    context: cond.context,
    ...(cond.contextAt ? { contextAt: cond.contextAt } : {}),
    guidanceScale: req.cfgScale,
    condWeights: cond.condWeights,
    withUncond: cond.withUncond,
    noise: new SeededNoise(c.seeds, req.rng, c.variation),
    shape,
    scalingFactor: scalingOf(env),
    signal: env.signal,
    onStep: env.onProgress
      ? (info) => env.onProgress?.({ ...info, batch: c.batch, batchCount: c.batchCount })
      : undefined,
  }
}

async function decode(c: BatchCtx, latents: Float32Array, shape: LatentShape): Promise<RawImage[]> {
  const px = await decodeLatents(c.env.model, latents, shape, scalingOf(c.env), c.env.signal)
  const H = shape.height * 8
  const W = shape.width * 8
  const per = 3 * H * W
  return Array.from({ length: shape.batch }, (_, b) =>
    tensorToImage(px.subarray(b * per, (b + 1) * per), W, H),
  )
}

/** One inpainting pass on a prepared canvas (also used by outpaint); returns pasted-back images. */
async function inpaintPass(
  c: BatchCtx,
  prep: PreparedInpaint,
): Promise<{ images: RawImage[]; plan: StepPlan }> {
  const { req, env } = c
  const W = prep.image.width
  const H = prep.image.height
  checkSize(W, H, 'inpaint processing size')
  const shape: LatentShape = { batch: c.seeds.length, channels: 4, height: H / 8, width: W / 8 }
  const image = repeat(imageToTensor(prep.image), shape.batch)
  const base = coreBase(c, shape)
  const hw = shape.height * shape.width
  const keepPlane = prep.latentKeep
  let latents: Float32Array
  let plan: StepPlan
  if (env.inpaintModel) {
    const pixels = prep.binaryMask.data
    const mask = new Float32Array(shape.batch * W * H)
    for (let b = 0; b < shape.batch; b++)
      for (let i = 0; i < W * H; i++) mask[b * W * H + i] = pixels[i]! >= 128 ? 1 : 0
    const r = await coreInpaint9({ ...base, image, mask, strength: req.strength, exactSteps: req.exactSteps })
    latents = r.latents
    plan = r.plan
  } else {
    const keep = expandPlanes(keepPlane, shape.batch, 4, hw)
    const prepareInit =
      req.maskedContent === 'latent-noise' || req.maskedContent === 'latent-nothing'
        ? (init: Float32Array): Float32Array => {
            const fresh =
              req.maskedContent === 'latent-noise'
                ? base.noise.randn([shape.batch, 4, shape.height, shape.width])
                : undefined
            const out = new Float32Array(init.length)
            for (let i = 0; i < init.length; i++) {
              const k = keep[i]!
              out[i] = Math.fround(init[i]! * k) + (fresh ? Math.fround(fresh[i]! * (1 - k)) : 0)
            }
            return out
          }
        : undefined
    const r = await coreInpaintLegacy({
      ...base,
      image,
      keep,
      strength: req.strength,
      exactSteps: req.exactSteps,
      prepareInit,
    })
    latents = r.latents
    plan = r.plan
  }
  const generated = await decode(c, latents, shape)
  const images = []
  for (const g of generated) images.push(await prep.paste(g))
  return { images, plan }
}

/**
 * Runs every batch of a request; each finished batch goes to env.onBatch. The prompt is encoded once.
 * Throws plain Errors with readable messages (sizes, images), GenerationCancelled on abort.
 */
export async function runStudio(req: StudioRequest, seed: number, env: StudioEnv): Promise<StudioSummary> {
  const size = defaultSize(env.model)
  // Only-masked inpainting works at a fixed size: the family's default unless given.
  if (req.mode === 'inpaint' && req.inpaintArea === 'only-masked')
    req = { ...req, width: req.width ?? size, height: req.height ?? size }
  const condOptions = {
    model: env.model,
    encode: env.encode,
    prompt: req.prompt,
    negativePrompt: req.negativePrompt,
    // outpaint and SD upscale run image by image (each pass has its own canvas)
    batch: req.mode === 'outpaint' || req.sdUpscale ? 1 : req.batchSize,
    clipSkip: req.clipSkip,
    cfg: req.cfgScale > 1,
    embeddings: env.embeddings,
    // prompt editing counts model calls, as A1111 does (doubled for its second-order samplers)
    scheduleSteps: req.steps * (isSecondOrderSampler(req.sampler) ? 2 : 1),
  }
  const textCond = await encodePrompts(condOptions)
  const cond = env.imageTokens ? withImageTokens(textCond, env.imageTokens) : textCond
  let hiresCond: Conditioning | undefined
  if (req.mode === 'txt2img' && req.hires && textCond.contextAt) {
    const hs = req.hires.steps && req.hires.steps > 0 ? req.hires.steps : req.steps
    const h = await encodePrompts({
      ...condOptions,
      hiresSteps: hs * (isSecondOrderSampler(req.sampler) ? 2 : 1),
    })
    hiresCond = env.imageTokens ? withImageTokens(h, env.imageTokens) : h
  }
  const summary: StudioSummary = {
    width: 0,
    height: 0,
    stepsRun: 0,
    scheduleLength: 0,
    warnings: [...cond.warnings],
    promptLoras: cond.loras,
    embeddings: cond.embeddings ?? [],
  }
  const note = (plan: StepPlan, w: number, h: number): void => {
    summary.stepsRun = plan.stepsRun
    summary.scheduleLength = plan.scheduleLength
    summary.width = w
    summary.height = h
  }

  const prepared =
    req.mode === 'img2img'
      ? req.sdUpscale
        ? await decodeImage(req.image ?? new Uint8Array(0), { name: 'input image' })
        : await prepareImg2Img(req)
      : req.mode === 'inpaint'
        ? await prepareInpaint(req, env.inpaintModel)
        : req.mode === 'outpaint'
          ? await decodeOutpaintSource(req)
          : undefined

  for (let b = 0; b < req.batchCount; b++) {
    throwIfAborted(env.signal)
    const seeds = Array.from({ length: req.batchSize }, (_, i) =>
      req.sameSeed ? seed : seed + b * req.batchSize + i,
    )
    const variation: NoiseVariation | undefined =
      req.variationStrength && req.variationSeed !== undefined
        ? {
            seeds: seeds.map((_, i) => req.variationSeed! + b * req.batchSize + i),
            strength: req.variationStrength,
          }
        : undefined
    const c: BatchCtx = {
      req,
      env,
      cond,
      hiresCond,
      batch: b,
      batchCount: req.batchCount,
      seeds,
      ...(variation ? { variation } : {}),
    }
    let images: RawImage[]
    if (req.mode === 'txt2img') {
      const W = req.width ?? size
      const H = req.height ?? size
      checkSize(W, H)
      const shape: LatentShape = { batch: seeds.length, channels: 4, height: H / 8, width: W / 8 }
      const r = await coreTxt2Img(coreBase(c, shape))
      if (req.hires) {
        // Hires fix: upscale (latent or pixels), then img2img at the target size (engine/upscale/hires.ts).
        const h = await hiresFix(r.latents, shape, req.hires, {
          core: (s) => coreBase(c, s, c.hiresCond),
          scalingFactor: scalingOf(env),
          signal: env.signal,
        })
        images = await decode(c, h.latents, h.shape)
        note(h.plan, h.shape.width * 8, h.shape.height * 8)
      } else {
        images = await decode(c, r.latents, shape)
        note(r.plan, W, H)
      }
    } else if (req.mode === 'img2img' && req.sdUpscale) {
      // SD upscale: upscale, img2img every tile (seed + tile index), blend (engine/upscale/hires.ts).
      images = []
      for (const [i, s] of seeds.entries()) {
        const out = await sdUpscale(prepared as RawImage, s, req.sdUpscale, {
          tileWidth: req.width ?? size,
          tileHeight: req.height ?? size,
          signal: env.signal,
          img2img: async (tile, tileSeed) => {
            const tc = single(c, tileSeed, i)
            const shape: LatentShape = {
              batch: 1,
              channels: 4,
              height: tile.height / 8,
              width: tile.width / 8,
            }
            const r = await coreImg2Img({
              ...coreBase(tc, shape),
              image: imageToTensor(tile),
              strength: req.strength,
              exactSteps: req.exactSteps,
            })
            note(r.plan, 0, 0)
            return (await decode(tc, r.latents, shape))[0] as RawImage
          },
        })
        summary.width = out.width
        summary.height = out.height
        images.push(out)
      }
    } else if (req.mode === 'img2img') {
      const img = prepared as RawImage
      checkSize(img.width, img.height)
      const shape: LatentShape = {
        batch: seeds.length,
        channels: 4,
        height: img.height / 8,
        width: img.width / 8,
      }
      const r = await coreImg2Img({
        ...coreBase(c, shape),
        image: repeat(imageToTensor(img), seeds.length),
        strength: req.strength,
        exactSteps: req.exactSteps,
      })
      images = await decode(c, r.latents, shape)
      note(r.plan, img.width, img.height)
    } else if (req.mode === 'inpaint') {
      const prep = prepared as PreparedInpaint
      const r = await inpaintPass(c, prep)
      images = r.images
      note(r.plan, images[0]?.width ?? 0, images[0]?.height ?? 0)
    } else {
      images = []
      const source = prepared as RawImage
      for (const [i, s] of seeds.entries()) {
        let current = source
        const zoom = req.outpaint.zoomOut
        const steps = zoom > 1 ? zoomOutPlan(source.width, source.height, zoom) : undefined
        const passes = steps ? steps.length : req.outpaint.repeat
        if (!steps) {
          const o = req.outpaint
          const grow = (a: number, b: number): number => Math.ceil(a / 8) * 8 + Math.ceil(b / 8) * 8
          checkPixels(
            source.width + grow(o.left, o.right) * passes,
            source.height + grow(o.top, o.bottom) * passes,
            'outpaint',
            MAX_GENERATION_PIXELS,
            8,
          )
        }
        for (let k = 0; k < passes; k++) {
          const step = steps?.[k]
          const prep = await prepareOutpaint(req, current, env.inpaintModel, step?.extents ?? req.outpaint)
          const r = await inpaintPass(single(c, s, i), prep)
          current = r.images[0] as RawImage
          if (step) current = await resizeImage(current, step.rescaleTo.width, step.rescaleTo.height)
          note(r.plan, current.width, current.height)
        }
        images.push(current)
      }
    }
    await env.onBatch?.({
      batch: b,
      images,
      seeds,
      ...(variation ? { variationSeeds: variation.seeds } : {}),
    })
  }
  return summary
}
