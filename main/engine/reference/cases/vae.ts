import * as ort from 'onnxruntime-node'
import type { CaseRunner, RefTensor } from './types'
import { f32, postprocess } from './types'

function scalingFactor(ctx: Parameters<CaseRunner>[0]): number {
  const v = ctx.manifest.conventions?.latent_scaling_factor
  return typeof v === 'number' ? v : 0.18215
}

/** image [-1, 1] (or image_uint8_hwc) -> moments, mean, logvar, std. */
export const vaeEncodeCase: CaseRunner = async (ctx) => {
  let image: RefTensor
  if (ctx.hasGiven('image')) image = await ctx.given('image')
  else {
    const u8 = await ctx.given('image_uint8_hwc')
    const [h = 0, w = 0, c = 3] = u8.shape
    const data = new Float32Array(c * h * w)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let k = 0; k < c; k++)
          data[k * h * w + y * w + x] = (Number(u8.data[(y * w + x) * c + k]) / 255) * 2 - 1
    image = f32([1, c, h, w], data)
  }
  const set = await ctx.models.modelSet(await ctx.models.checkpoint(ctx.def))
  const g = set.graph('vae_encoder')
  const r = await g.run({ image: new ort.Tensor('float32', image.data as Float32Array, image.shape) })
  const out: Record<string, RefTensor> = {}
  for (const name of ['moments', 'mean', 'logvar', 'std']) {
    const t = r[name] as ort.Tensor
    out[name] = f32([...t.dims], t.data as Float32Array)
  }
  return out
}

/** decoder_input (latents already divided by the scaling factor) -> image, image_postprocessed. */
export const vaeDecodeCase: CaseRunner = async (ctx) => {
  let z: RefTensor
  if (ctx.hasGiven('decoder_input')) z = await ctx.given('decoder_input')
  else {
    const lat = await ctx.given('latents')
    const s = scalingFactor(ctx)
    z = f32(
      lat.shape,
      Float32Array.from(lat.data as Float32Array, (v) => v / s),
    )
  }
  const set = await ctx.models.modelSet(await ctx.models.checkpoint(ctx.def))
  const img = await set.decode(new ort.Tensor('float32', z.data as Float32Array, z.shape))
  const data = img.data as Float32Array
  return { image: f32([...img.dims], data), image_postprocessed: f32([...img.dims], postprocess(data)) }
}
