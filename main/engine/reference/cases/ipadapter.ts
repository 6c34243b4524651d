import * as ort from 'onnxruntime-node'
import {
  clipPreprocess,
  clipPreprocessConfig,
  clipResize,
  configFromPreprocessorJson,
} from '../../ipadapter/preprocess'
import { appendImageTokens } from '../../ipadapter/image-prompt'
import type { ImageTokens } from '../../ipadapter/image-prompt'
import {
  combineEmbeds,
  projectImageEmbeds,
  projectRaw,
  unconditionalTokens,
} from '../../ipadapter/projection'
import type { RawImage } from '../../image/types'
import { coreImg2Img, coreTxt2Img } from '../../pipelines/core'
import type { CoreOptions } from '../../pipelines/core'
import type { LatentShape } from '../../pipelines/types'
import { createScheduler, nameForOracleKey } from '../../schedulers'
import type { ReferenceCase } from '../manifest'
import { IpAdapterCaseModels } from './ipadapter-models'
import { pipelineOutputs, Recorder, recordedNoise, scalingFactor } from './img2img'
import type { CaseContext, CaseRunner, RefTensor } from './types'
import { f32 } from './types'

/**
 * IP-Adapter cases (image prompts): CLIPImageProcessor, the CLIP image encoder, the projection to image
 * tokens, the UNet with the decoupled image attention at several scales, the /blend rule and a whole
 * txt2img run. Models are found by content (ipadapter-models.ts); sizes, scales, timesteps, schedulers and
 * step counts come from each case's parameters and tensors, never from constants of one set.
 */

type Json = Record<string, unknown>

function params(c: ReferenceCase): Json {
  const p = (c as Json).params
  return p && typeof p === 'object' ? (p as Json) : {}
}

function num(p: Json, key: string, fallback?: number): number {
  const v = p[key]
  if (typeof v === 'number') return v
  if (fallback !== undefined) return fallback
  throw new Error(`the case parameters have no number "${key}"`)
}

function tensor(t: RefTensor): ort.Tensor {
  return new ort.Tensor('float32', t.data as Float32Array, t.shape)
}

/** Given images `image_uint8_hwc` or `image_uint8_hwc_0`, `_1`, ... in index order. */
async function givenImages(ctx: CaseContext): Promise<RawImage[]> {
  const names = ctx.def.given
    .filter((n) => /^image_uint8_hwc(_\d+)?$/.test(n))
    .sort((a, b) => Number(/\d+$/.exec(a)?.[0] ?? -1) - Number(/\d+$/.exec(b)?.[0] ?? -1))
  const out: RawImage[] = []
  for (const n of names) {
    const t = await ctx.given(n)
    const [h = 0, w = 0, c = 3] = t.shape
    if (c !== 1 && c !== 3 && c !== 4) throw new Error(`${n}: ${c} channels`)
    out.push({ data: t.data as Uint8Array, height: h, width: w, channels: c })
  }
  return out
}

/** pixel_values: the given ones when the case lists them (they are its input), else preprocessed images. */
async function pixelValues(
  ctx: CaseContext,
  m: IpAdapterCaseModels,
): Promise<{ data: Float32Array; count: number }> {
  if (ctx.hasGiven('pixel_values')) {
    const t = await ctx.given('pixel_values')
    return { data: t.data as Float32Array, count: t.shape[0] ?? 1 }
  }
  const enc = (await m.imagePrompts()).encoder
  const images = await givenImages(ctx)
  return { data: clipPreprocess(images, enc.preprocess), count: images.length }
}

async function withModels<T>(ctx: CaseContext, run: (m: IpAdapterCaseModels) => Promise<T>): Promise<T> {
  const m = await IpAdapterCaseModels.open(ctx.manifest, ctx.models)
  try {
    return await run(m)
  } finally {
    await m.release()
  }
}

/** Crop/resize sizes from the case (`crop_size`, `size.shortest_edge`), else the encoder's. */
function preprocessConfigOf(
  ctx: CaseContext,
  imageSize: number | undefined,
): ReturnType<typeof clipPreprocessConfig> {
  const p = params(ctx.def)
  if (p.size !== undefined || p.crop_size !== undefined || p.image_mean !== undefined)
    return configFromPreprocessorJson(p, imageSize ?? 224)
  if (imageSize === undefined) throw new Error('no preprocessing size in the case and no image encoder')
  return clipPreprocessConfig(imageSize)
}

export const clipPreprocessCase: CaseRunner = async (ctx) => {
  const images = await givenImages(ctx)
  let size: number | undefined
  const p = params(ctx.def)
  if (p.size === undefined && p.crop_size === undefined)
    size = await withModels(ctx, async (m) => (await m.imagePrompts()).encoder.config.imageSize)
  const cfg = preprocessConfigOf(ctx, size)
  const out: Record<string, RefTensor> = {
    pixel_values: f32([images.length, 3, cfg.cropHeight, cfg.cropWidth], clipPreprocess(images, cfg)),
  }
  images.forEach((img, i) => {
    const r = clipResize(img, cfg)
    const name =
      ctx.def.trace.find((n) => n === `debug_resized_uint8_hwc_${i}`) ?? `debug_resized_uint8_hwc_${i}`
    out[name] = { dtype: 'U8', shape: [r.height, r.width, 3], data: r.data }
  })
  return out
}

export const imageEncoderCase: CaseRunner = (ctx) =>
  withModels(ctx, async (m) => {
    const enc = (await m.imagePrompts()).encoder
    const px = await pixelValues(ctx, m)
    const embeds = await enc.embedPixels(px.data, px.count)
    return { image_embeds: f32([px.count, enc.embedDim], embeds) }
  })

export const imageProjCase: CaseRunner = (ctx) =>
  withModels(ctx, async (m) => {
    const a = await m.adapter()
    const e = await ctx.given('image_embeds')
    const n = e.shape[0] ?? 1
    const data = e.data as Float32Array
    const shape = [n, a.tokens, a.crossAttentionDim]
    const uncond = unconditionalTokens(a)
    const repeated = new Float32Array(n * uncond.length)
    for (let i = 0; i < n; i++) repeated.set(uncond, i * uncond.length)
    return {
      image_prompt_embeds: f32(shape, projectImageEmbeds(a, data, n)),
      // upstream: the projection of zeros_like(image_embeds): one row per image
      uncond_image_prompt_embeds: f32(shape, repeated),
      debug_proj_reshaped: f32(shape, projectRaw(a, data, n)),
    }
  })

/** `eps_scale_1_0` -> 1.0, `eps_scale_0_5` -> 0.5, `eps_scale_m0_5` / `eps_scale_-0_5` -> -0.5. */
export function scaleOfName(name: string): number | undefined {
  const m = /^eps_scale_(m|-)?(\d+)(?:_(\d+))?$/.exec(name)
  if (!m) return undefined
  const v = Number(`${m[2]}.${m[3] ?? '0'}`)
  return m[1] ? -v : v
}

export const unetIpCase: CaseRunner = (ctx) =>
  withModels(ctx, async (m) => {
    const timesteps = (await ctx.given('timesteps')).data as Float32Array
    const sample = tensor(await ctx.given('sample'))
    const out: Record<string, RefTensor> = {}
    const stack = (rows: Float32Array[], dims: readonly number[]): RefTensor => {
      const data = new Float32Array(rows.reduce((a, r) => a + r.length, 0))
      rows.forEach((r, i) => data.set(r, i * r.length))
      return f32([rows.length, ...dims], data)
    }
    const names = [...ctx.def.expected, ...ctx.def.trace]
    const scaled = names.flatMap((n) => {
      const s = scaleOfName(n)
      return s === undefined ? [] : [{ name: n, scale: s }]
    })
    if (scaled.length) {
      const context = tensor(await ctx.given('encoder_hidden_states'))
      for (const { name, scale } of scaled) {
        const set = await m.ipSet(scale)
        const rows: Float32Array[] = []
        let dims: readonly number[] = []
        for (const t of timesteps) {
          const eps = await set.unet(sample, t, context)
          rows.push(eps.data as Float32Array)
          dims = eps.dims
        }
        out[name] = stack(rows, dims)
      }
    }
    if (names.includes('eps_text_only')) {
      const text = tensor(await ctx.given('text_embeds'))
      const base = await m.baseSet()
      const rows: Float32Array[] = []
      let dims: readonly number[] = []
      for (const t of timesteps) {
        const eps = await base.unet(sample, t, text)
        rows.push(eps.data as Float32Array)
        dims = eps.dims
      }
      out.eps_text_only = stack(rows, dims)
    }
    return out
  })

export const blendCase: CaseRunner = (ctx) =>
  withModels(ctx, async (m) => {
    const p = params(ctx.def)
    const ip = await m.imagePrompts()
    const a = ip.adapter
    const px = await pixelValues(ctx, m)
    const embeds = await ip.encoder.embedPixels(px.data, px.count)
    const weights = Array.isArray(p.weights) ? (p.weights as number[]) : undefined
    const blended = combineEmbeds(embeds, px.count, weights)
    const tokens = projectImageEmbeds(a, blended, 1)
    const uncond = unconditionalTokens(a)
    const out: Record<string, RefTensor> = {
      image_embeds: f32([px.count, ip.encoder.embedDim], embeds),
      blended_image_embeds: f32([1, ip.encoder.embedDim], blended),
      image_prompt_embeds: f32([1, a.tokens, a.crossAttentionDim], tokens),
      uncond_image_prompt_embeds: f32([1, a.tokens, a.crossAttentionDim], uncond),
    }
    if (ctx.wants('eps')) {
      const text = tensor(await ctx.given('text_embeds'))
      const context = appendImageTokens(
        text,
        { cond: tokens, uncond, tokens: a.tokens, width: a.crossAttentionDim },
        { batch: text.dims[0] ?? 1, withUncond: false },
      )
      const set = await m.ipSet(num(p, 'scale', 1))
      const eps = await set.unet(tensor(await ctx.given('sample')), num(p, 'timestep'), context)
      out.eps = f32([...eps.dims], eps.data as Float32Array)
    }
    return out
  })

interface IpPipeline {
  p: Json
  t: ImageTokens
  /** [negative x B, positive x B] rows of text + image tokens. */
  context: ort.Tensor
  b: number
  L: number
  D: number
  base: Omit<CoreOptions, 'model'>
  rec: Recorder
  noise: Awaited<ReturnType<typeof recordedNoise>>
  shape: LatentShape
}

/**
 * IPAdapter.generate's conditioning: prompt embeds = [text, image tokens], negative = [negative text,
 * unconditional image tokens], each prompt repeated num_samples times; the case's scheduler, recorded noise,
 * guidance (without CFG when guidance_scale <= 1: the positive rows alone).
 */
async function ipPipeline(
  ctx: CaseContext,
  m: IpAdapterCaseModels,
  pixels: { data: Float32Array; count: number },
  size: { height: number; width: number },
): Promise<IpPipeline> {
  const p = params(ctx.def)
  const ip = await m.imagePrompts()
  const embeds = await ip.encoder.embedPixels(pixels.data, pixels.count)
  const t = ip.tokensFromEmbeds(embeds, new Array<number>(pixels.count).fill(1))
  const pos = await ctx.given('text_prompt_embeds')
  const neg = ctx.hasGiven('text_negative_prompt_embeds')
    ? await ctx.given('text_negative_prompt_embeds')
    : { ...pos, data: new Float32Array(pos.data.length) }
  const [prompts = 1, L = 77, D = 0] = pos.shape
  // IPAdapter.generate repeats every prompt's embeddings num_samples times (repeat(1, n, 1).view(...))
  const samples = num(p, 'num_samples', 1)
  const b = prompts * samples
  const text = new Float32Array(2 * b * L * D)
  for (let i = 0; i < prompts; i++)
    for (let s = 0; s < samples; s++) {
      const row = (x: RefTensor): Float32Array =>
        (x.data as Float32Array).subarray(i * L * D, (i + 1) * L * D)
      text.set(row(neg), (i * samples + s) * L * D)
      text.set(row(pos), (b + i * samples + s) * L * D)
    }
  // diffusers order: [negative x B, positive x B]
  const context = appendImageTokens(new ort.Tensor('float32', text, [2 * b, L, D]), t, {
    batch: b,
    withUncond: true,
  })
  const key = String(p.scheduler ?? '')
  if (!key) throw new Error(`case ${ctx.def.name}: params.scheduler is missing`)
  const cfg =
    p.scheduler_config && typeof p.scheduler_config === 'object' ? (p.scheduler_config as object) : {}
  const eta = typeof p.eta === 'number' ? p.eta : 0
  const scheduler = createScheduler(nameForOracleKey(key) ?? key, { ...cfg, eta })
  const shape: LatentShape = { batch: b, channels: 4, height: size.height / 8, width: size.width / 8 }
  const rec = new Recorder()
  const noise = await recordedNoise(ctx)
  const guidanceScale = num(p, 'guidance_scale', 7.5)
  const cfgOn = guidanceScale > 1
  const rows = context.data as Float32Array
  const per = (L + t.tokens) * D
  const base: Omit<CoreOptions, 'model'> = {
    scheduler,
    steps: num(p, 'num_inference_steps', 50),
    context: cfgOn ? context : new ort.Tensor('float32', rows.slice(b * per), [b, L + t.tokens, D]),
    guidanceScale,
    noise,
    shape,
    scalingFactor: scalingFactor(ctx),
    signal: ctx.signal,
    trace: rec.trace,
  }
  return { p, t, context, b, L, D, base, rec, noise, shape }
}

async function ipOutputs(
  ctx: CaseContext,
  set: CoreOptions['model'],
  latents: Float32Array,
  x: IpPipeline,
): Promise<Record<string, RefTensor>> {
  const { b, L, D, t } = x
  const out = await pipelineOutputs(ctx, set, latents, x.shape, x.rec, x.noise)
  if (x.base.guidanceScale <= 1) {
    // without CFG every UNet call has one row per image (pipelineOutputs assumes the CFG pair)
    const { height: h, width: w } = x.shape
    const stack = (parts: Float32Array[]): RefTensor => {
      const size = parts[0]?.length ?? 0
      const data = new Float32Array(parts.length * size)
      parts.forEach((q, i) => data.set(q, i * size))
      return f32([parts.length, b, size / (b * h * w), h, w], data)
    }
    out.unet_inputs = stack(x.rec.inputs)
    out.unet_outputs = stack(x.rec.outputs)
  }
  const per = L * D + t.tokens * D
  const rows = x.context.data as Float32Array
  const tokShape = [b, t.tokens, t.width]
  const repeat = (v: Float32Array): Float32Array => {
    const o = new Float32Array(b * v.length)
    for (let i = 0; i < b; i++) o.set(v, i * v.length)
    return o
  }
  return {
    ...out,
    prompt_embeds: f32([b, L + t.tokens, D], rows.slice(b * per, 2 * b * per)),
    negative_prompt_embeds: f32([b, L + t.tokens, D], rows.slice(0, b * per)),
    image_prompt_embeds: f32(tokShape, repeat(t.cond)),
    uncond_image_prompt_embeds: f32(tokShape, repeat(t.uncond)),
  }
}

/**
 * IPAdapter.generate -> StableDiffusionPipeline (DDIM etc.), every IP layer at params.scale.
 */
export const txt2imgIpCase: CaseRunner = (ctx) =>
  withModels(ctx, async (m) => {
    const p = params(ctx.def)
    const x = await ipPipeline(ctx, m, await pixelValues(ctx, m), {
      height: num(p, 'height', 512),
      width: num(p, 'width', 512),
    })
    const set = await m.ipSet(num(p, 'scale', 1))
    const r = await coreTxt2Img({ ...x.base, model: set })
    return ipOutputs(ctx, set, r.latents, x)
  })

const IP_IMAGE_NAMES = ['ip_image_uint8_hwc', 'image_prompt_uint8_hwc', 'reference_image_uint8_hwc']
const INIT_IMAGE_NAMES = ['init_image_uint8_hwc', 'input_image_uint8_hwc']

/** uint8 HWC -> [-1, 1] NCHW (VaeImageProcessor.preprocess). */
function toMinusOneOne(u: RefTensor): { data: Float32Array; height: number; width: number } {
  const [h = 0, w = 0, c = 3] = u.shape
  const data = new Float32Array(3 * h * w)
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < 3; k++)
        data[k * h * w + y * w + x] = Math.fround(
          Math.fround(Number(u.data[(y * w + x) * c + k]) / 255) * 2 - 1,
        )
  return { data, height: h, width: w }
}

/**
 * IPAdapter.generate -> StableDiffusionImg2ImgPipeline: the init image (`init_image_uint8_hwc`, a float
 * `image`, or `image_uint8_hwc` when the image prompt comes as pixel_values / its own tensor) at
 * params.strength, the image prompt from pixel_values or its uint8 image.
 */
export const img2imgIpCase: CaseRunner = (ctx) =>
  withModels(ctx, async (m) => {
    const p = params(ctx.def)
    const initName =
      INIT_IMAGE_NAMES.find((n) => ctx.hasGiven(n)) ??
      (ctx.hasGiven('image') ? 'image' : ctx.hasGiven('image_uint8_hwc') ? 'image_uint8_hwc' : undefined)
    if (!initName) throw new Error(`case ${ctx.def.name}: no init image among the given tensors`)
    const given = await ctx.given(initName)
    const init =
      initName === 'image'
        ? { data: given.data as Float32Array, height: given.shape[2] ?? 0, width: given.shape[3] ?? 0 }
        : toMinusOneOne(given)
    let pixels: { data: Float32Array; count: number }
    const ipName = IP_IMAGE_NAMES.find((n) => ctx.hasGiven(n))
    if (ctx.hasGiven('pixel_values')) pixels = await pixelValues(ctx, m)
    else if (ipName) {
      const t = await ctx.given(ipName)
      const [h = 0, w = 0, c = 3] = t.shape
      const enc = (await m.imagePrompts()).encoder
      const img: RawImage = { data: t.data as Uint8Array, height: h, width: w, channels: c as 1 | 3 | 4 }
      pixels = { data: clipPreprocess([img], enc.preprocess), count: 1 }
    } else throw new Error(`case ${ctx.def.name}: no image prompt (pixel_values or ${IP_IMAGE_NAMES[0]})`)
    const x = await ipPipeline(ctx, m, pixels, init)
    const set = await m.ipSet(num(p, 'scale', 1))
    const image = new Float32Array(x.b * init.data.length)
    for (let i = 0; i < x.b; i++) image.set(init.data, i * init.data.length)
    const r = await coreImg2Img({ ...x.base, model: set, image, strength: num(p, 'strength', 0.8) })
    return ipOutputs(ctx, set, r.latents, x)
  })
