import { coreInpaint9, coreInpaintLegacy, pilNearestDownsample } from '../../pipelines/core'
import { expandPlanes } from '../../pipelines/tensor'
import type { CaseContext, CaseRunner } from './types'
import { f32 } from './types'
import { pipelineOutputs, pipelineSetup } from './img2img'

async function maskPixels(ctx: CaseContext): Promise<{ data: Uint8Array; height: number; width: number }> {
  const m = await ctx.given('mask_uint8_hw')
  const [height = 0, width = 0] = m.shape
  return { data: m.data as Uint8Array, height, width }
}

/**
 * StableDiffusionInpaintPipelineLegacy (ordinary UNet): mask resized to latent size with PIL NEAREST,
 * 1 - mask / 255 = keep, blended back after every step.
 */
export const inpaintLegacyCase: CaseRunner = async (ctx) => {
  const { p, image, base, rec, noise } = await pipelineSetup(ctx)
  const m = await maskPixels(ctx)
  const { height: h, width: w } = base.shape
  const small = pilNearestDownsample(m.data, m.height, m.width, h, w)
  const keep = Float32Array.from(small, (v) => Math.fround(1 - Math.fround(v / 255)))
  const set = await ctx.models.modelSet(await ctx.models.checkpoint(ctx.def, 'normal'))
  const r = await coreInpaintLegacy({
    ...base,
    model: set,
    image: image.data,
    strength: p.strength ?? 0.8,
    keep: expandPlanes(keep, 1, 4, h * w),
  })
  return pipelineOutputs(ctx, set, r.latents, base.shape, rec, noise)
}

/** StableDiffusionInpaintPipeline with a 9-channel inpainting UNet; mask binarised at 0.5. */
export const inpaint9Case: CaseRunner = async (ctx) => {
  const { p, image, base, rec, noise } = await pipelineSetup(ctx)
  const m = await maskPixels(ctx)
  const mask = Float32Array.from(m.data, (v) => (v / 255 < 0.5 ? 0 : 1))
  const set = await ctx.models.modelSet(await ctx.models.checkpoint(ctx.def, 'inpaint'))
  const r = await coreInpaint9({ ...base, model: set, image: image.data, mask, strength: p.strength ?? 1 })
  const out = await pipelineOutputs(ctx, set, r.latents, base.shape, rec, noise)
  out.mask_processed = f32([1, 1, m.height, m.width], mask)
  out.masked_image = f32([1, 3, image.height, image.width], r.maskedImage)
  return out
}
