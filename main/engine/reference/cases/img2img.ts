import * as ort from 'onnxruntime-node'
import { coreImg2Img, decodeLatents, SD1_SCALING_FACTOR } from '../../pipelines/core'
import type { CoreOptions } from '../../pipelines/core'
import { sdxlTimeIds, withAddedConditioning } from '../../pipelines/sdxl'
import type { LatentShape, UnetTrace } from '../../pipelines/types'
import { RecordedNoise } from '../../random'
import { createScheduler, nameForOracleKey } from '../../schedulers'
import type { CaseContext, CaseRunner, RefTensor } from './types'
import { f32, postprocess } from './types'

/**
 * Pipeline cases (img2img_*, and the inpaint cases in inpaint.ts): the real pipelines run with the
 * case's prompt embeddings and its recorded noise (noise_00, noise_01, ... in draw order), then the final
 * latents, decoded image, per-step latents and the UNet trace are returned.
 */

interface PipelineParams {
  scheduler?: string
  strength?: number
  num_inference_steps?: number
  guidance_scale?: number
  eta?: number | null
  height?: number
  width?: number
}

export function params(ctx: CaseContext): Required<Pick<PipelineParams, 'scheduler'>> & PipelineParams {
  const p = ((ctx.def as { params?: PipelineParams }).params ?? {}) as PipelineParams
  if (!p.scheduler) throw new Error(`case ${ctx.def.name}: params.scheduler is missing`)
  return { ...p, scheduler: p.scheduler }
}

export function scalingFactor(ctx: CaseContext): number {
  const v = ctx.manifest.conventions?.latent_scaling_factor
  return typeof v === 'number' ? v : SD1_SCALING_FACTOR
}

/** The recorded draws in the order the manifest lists them (else noise_NN by name). */
export async function recordedNoise(ctx: CaseContext): Promise<RecordedNoise> {
  const listed = (ctx.def as { noise?: { tensor: string }[] }).noise?.map((n) => n.tensor)
  const names = listed ?? ctx.def.given.filter((n) => /^noise_\d+$/.test(n)).sort()
  const draws = []
  for (const name of names) {
    const t = await ctx.given(name)
    draws.push({ data: t.data as Float32Array, shape: t.shape, name })
  }
  return new RecordedNoise(draws)
}

/** [negative; positive] prompt embeddings along the batch axis (diffusers' CFG order). */
export async function promptContext(ctx: CaseContext): Promise<ort.Tensor> {
  const pos = await ctx.given('prompt_embeds')
  const neg = await ctx.given('negative_prompt_embeds')
  const [b = 1, seq = 77, width = 0] = pos.shape
  const data = new Float32Array(2 * b * seq * width)
  data.set(neg.data as Float32Array)
  data.set(pos.data as Float32Array, b * seq * width)
  return new ort.Tensor('float32', data, [2 * b, seq, width])
}

/** image_uint8_hwc / 255 * 2 - 1 as NCHW float32 (VaeImageProcessor.preprocess), or the given `image`. */
export async function inputImage(
  ctx: CaseContext,
): Promise<{ data: Float32Array; height: number; width: number }> {
  if (ctx.hasGiven('image')) {
    const t = await ctx.given('image')
    return { data: t.data as Float32Array, height: t.shape[2] ?? 0, width: t.shape[3] ?? 0 }
  }
  const u8 = await ctx.given('image_uint8_hwc')
  const [h = 0, w = 0, c = 3] = u8.shape
  const data = new Float32Array(3 * h * w)
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < 3; k++) {
        const v = Math.fround(Number(u8.data[(y * w + x) * c + k]) / 255)
        data[k * h * w + y * w + x] = Math.fround(v * 2 - 1)
      }
  return { data, height: h, width: w }
}

/** Collects step latents and the UNet trace of a run. */
export class Recorder {
  readonly latents: Float32Array[] = []
  readonly inputs: Float32Array[] = []
  readonly outputs: Float32Array[] = []
  readonly timesteps: number[] = []

  readonly trace = (t: UnetTrace): void => {
    this.latents.push(t.latents.slice())
    this.inputs.push(t.input.slice())
    this.outputs.push(t.output.slice())
    this.timesteps.push(t.timestep)
  }
}

function stack(parts: Float32Array[], inner: number[]): RefTensor {
  const size = parts[0]?.length ?? 0
  const out = new Float32Array(parts.length * size)
  parts.forEach((p, i) => out.set(p, i * size))
  return f32([parts.length, ...inner], out)
}

/** Common setup of a pipeline case. */
export async function pipelineSetup(ctx: CaseContext): Promise<{
  p: ReturnType<typeof params>
  image: Awaited<ReturnType<typeof inputImage>>
  base: Omit<CoreOptions, 'model'>
  rec: Recorder
  noise: RecordedNoise
}> {
  const p = params(ctx)
  // "euler (SDXL base config)": the oracle key, run with the set's scheduler config (its schedulers case).
  const annotated = /^(\S+)\s*\(.*config\)\s*$/.exec(p.scheduler)
  const key = annotated?.[1] ?? p.scheduler
  const name = nameForOracleKey(key) ?? key
  const config = annotated
    ? (ctx.manifest.cases.find((c) => c.name === 'schedulers') as { base_config?: object } | undefined)
        ?.base_config
    : undefined
  const scheduler = createScheduler(name, { ...config, eta: p.eta ?? 0 })
  const image = await inputImage(ctx)
  const shape: LatentShape = { batch: 1, channels: 4, height: image.height / 8, width: image.width / 8 }
  const rec = new Recorder()
  const noise = await recordedNoise(ctx)
  const base: Omit<CoreOptions, 'model'> = {
    scheduler,
    steps: p.num_inference_steps ?? 50,
    context: await promptContext(ctx),
    guidanceScale: p.guidance_scale ?? 7.5,
    noise,
    shape,
    scalingFactor: scalingFactor(ctx),
    signal: ctx.signal,
    trace: rec.trace,
  }
  return { p, image, base, rec, noise }
}

/** Decodes and packs the standard pipeline outputs. */
export async function pipelineOutputs(
  ctx: CaseContext,
  set: CoreOptions['model'],
  latents: Float32Array,
  shape: LatentShape,
  rec: Recorder,
  noise: RecordedNoise,
): Promise<Record<string, RefTensor>> {
  if (noise.remaining > 0) ctx.log(`${noise.remaining} recorded draw(s) were not used`)
  const lat = [shape.batch, shape.channels, shape.height, shape.width]
  const image = await decodeLatents(set, latents, shape, scalingFactor(ctx), ctx.signal)
  const img = [shape.batch, 3, shape.height * 8, shape.width * 8]
  const unetIn = [
    2 * shape.batch,
    rec.inputs[0] ? rec.inputs[0].length / (2 * shape.batch * shape.height * shape.width) : 4,
    shape.height,
    shape.width,
  ]
  return {
    final_latents: f32(lat, latents),
    output_image: f32(img, image),
    output_image_postprocessed: f32(img, postprocess(image)),
    step_latents: stack(rec.latents, lat),
    step_timesteps: f32([rec.timesteps.length], Float32Array.from(rec.timesteps)),
    unet_inputs: stack(rec.inputs, unetIn),
    unet_outputs: stack(rec.outputs, [2 * shape.batch, 4, shape.height, shape.width]),
    unet_timesteps: f32([rec.timesteps.length], Float32Array.from(rec.timesteps)),
  }
}

/**
 * SDXL cases give pooled embeddings: the UNet then gets them ([negative; positive]) with the time ids the
 * case's sizes give (original_size, crops_coords_top_left, target_size as [h, w]; default the image size).
 */
async function sdxlAdded(
  ctx: CaseContext,
  height: number,
  width: number,
): Promise<{ pooled: ort.Tensor; timeIds: Float32Array } | undefined> {
  if (!ctx.hasGiven('pooled_prompt_embeds')) return undefined
  const pos = await ctx.given('pooled_prompt_embeds')
  const neg = ctx.hasGiven('negative_pooled_prompt_embeds')
    ? await ctx.given('negative_pooled_prompt_embeds')
    : { data: new Float32Array(pos.data.length) }
  const [b = 1, d = 0] = pos.shape
  const pooled = new Float32Array(2 * b * d)
  pooled.set(neg.data as Float32Array)
  pooled.set(pos.data as Float32Array, b * d)
  const q = (ctx.def as { params?: Record<string, unknown> }).params ?? {}
  const pair = (k: string): [number, number] | undefined => {
    const v = q[k]
    return Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')
      ? [v[0] as number, v[1] as number]
      : undefined
  }
  const [oh, ow] = pair('original_size') ?? [height, width]
  const [ct, cl] = pair('crops_coords_top_left') ?? [0, 0]
  const [th, tw] = pair('target_size') ?? [height, width]
  const timeIds = sdxlTimeIds(width, height, {
    originalHeight: oh,
    originalWidth: ow,
    cropTop: ct,
    cropLeft: cl,
    targetHeight: th,
    targetWidth: tw,
  })
  return { pooled: new ort.Tensor('float32', pooled, [2 * b, d]), timeIds }
}

/** StableDiffusionImg2ImgPipeline (or the SDXL one) with the case's scheduler and strength. */
export const img2imgCase: CaseRunner = async (ctx) => {
  const { p, image, base, rec, noise } = await pipelineSetup(ctx)
  const set = await ctx.models.modelSet(await ctx.models.checkpoint(ctx.def, 'normal'))
  const added = await sdxlAdded(ctx, image.height, image.width)
  const model = added ? withAddedConditioning(set, added.pooled, added.timeIds) : set
  const r = await coreImg2Img({ ...base, model, image: image.data, strength: p.strength ?? 0.8 })
  const out = await pipelineOutputs(ctx, set, r.latents, base.shape, rec, noise)
  if (added) {
    const rows = added.pooled.dims[0] ?? 2
    const ids = new Float32Array(rows * 6)
    for (let i = 0; i < rows; i++) ids.set(added.timeIds, i * 6)
    out.add_time_ids = f32([rows, 6], ids)
  }
  return out
}
