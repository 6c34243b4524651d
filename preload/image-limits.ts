/**
 * Pixel limits shared by main (engine/image/limits.ts checks every decode and every pass against them) and
 * the renderer (which offers to resize an input image that is past them before anything is sent).
 */

/** Most pixels an input image may have (decoded by sharp): 36 MP covers 6000x6000 and 24 MP photos. */
export const MAX_INPUT_PIXELS = 36_000_000
/** Most pixels of an upscaled, outpainted or SD-upscaled picture (8192x8192). */
export const MAX_OUTPUT_PIXELS = 8192 * 8192
/** Most pixels the diffusion model runs at in one pass (txt2img, img2img, inpaint, hires fix): 4096x4096. */
export const MAX_GENERATION_PIXELS = 4096 * 4096
/** Longest side of a generation pass (the request schema's width / height limit). */
export const MAX_GENERATION_SIDE = 4096
/** Largest input an upscaler model runs on without tiling (tile 0). */
export const MAX_UNTILED_PIXELS = 1024 * 1024

/**
 * The largest width x height with the same aspect ratio, each a multiple of `multiple` and at most `maxSide`,
 * within `limit` pixels.
 */
export function largestWithin(
  width: number,
  height: number,
  limit: number,
  multiple = 1,
  maxSide = Infinity,
): { width: number; height: number } {
  const s = Math.min(1, Math.sqrt(limit / (width * height)), maxSide / width, maxSide / height)
  let w = Math.max(multiple, Math.floor((width * s) / multiple) * multiple)
  let h = Math.max(multiple, Math.floor((height * s) / multiple) * multiple)
  while (w * h > limit && (w > multiple || h > multiple)) {
    if (w >= h) w -= multiple
    else h -= multiple
  }
  return { width: w, height: h }
}

/**
 * The size an input image is offered to be resized to when it is past what one generation pass takes
 * (more than 4096 on a side or 16.8 MP): the largest that fits, aspect kept, multiples of 64. Undefined
 * when it fits as it is.
 */
export function generationResize(
  width: number,
  height: number,
): { width: number; height: number } | undefined {
  if (
    width <= MAX_GENERATION_SIDE &&
    height <= MAX_GENERATION_SIDE &&
    width * height <= MAX_GENERATION_PIXELS
  )
    return undefined
  return largestWithin(width, height, MAX_GENERATION_PIXELS, 64, MAX_GENERATION_SIDE)
}
