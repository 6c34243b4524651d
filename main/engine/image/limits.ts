/**
 * Size limits on pixels, shared by every decode and every operation that makes a larger picture. A 249 KB
 * PNG can declare 16000x16000 (4.7 GB decoded) and a Lanczos x16 of 4096² asks for 4.3 G pixels: both are
 * refused before any pixel buffer is allocated, with an error that names the limit and the largest size
 * that fits.
 */

/** Most pixels an input image may have (decoded by sharp): 36 MP covers 6000x6000 and 24 MP photos. */
export const MAX_INPUT_PIXELS = 36_000_000
/** Most pixels of an upscaled, outpainted or SD-upscaled picture (8192x8192). */
export const MAX_OUTPUT_PIXELS = 8192 * 8192
/** Most pixels the diffusion model runs at in one pass (txt2img, img2img, inpaint, hires fix): 4096x4096. */
export const MAX_GENERATION_PIXELS = 4096 * 4096
/** Largest input an upscaler model runs on without tiling (tile 0). */
export const MAX_UNTILED_PIXELS = 1024 * 1024

export class ImageSizeError extends RangeError {
  constructor(message: string) {
    super(message)
    this.name = 'ImageSizeError'
  }
}

function mp(pixels: number): string {
  return `${Math.round(pixels / 1e5) / 10} MP`
}

/** The largest width x height with the same aspect ratio, each a multiple of `multiple`, within `limit`. */
export function largestWithin(
  width: number,
  height: number,
  limit: number,
  multiple = 1,
): { width: number; height: number } {
  const s = Math.min(1, Math.sqrt(limit / (width * height)))
  let w = Math.max(multiple, Math.floor((width * s) / multiple) * multiple)
  let h = Math.max(multiple, Math.floor((height * s) / multiple) * multiple)
  while (w * h > limit && (w > multiple || h > multiple)) {
    if (w >= h) w -= multiple
    else h -= multiple
  }
  return { width: w, height: h }
}

/**
 * Throws ImageSizeError when `width x height` is past `limit` pixels (or not a real size): "<what>: 65536x65536
 * (4295 MP) is larger than the limit of 67.1 MP (8192x8192 pixels); the largest allowed at this aspect
 * ratio is 8192x8192".
 */
export function checkPixels(
  width: number,
  height: number,
  what: string,
  limit = MAX_OUTPUT_PIXELS,
  multiple = 1,
): void {
  if (!Number.isFinite(width) || !Number.isFinite(height) || width < 1 || height < 1)
    throw new ImageSizeError(`${what}: ${width}x${height} is not an image size`)
  if (width * height <= limit) return
  const side = Math.floor(Math.sqrt(limit))
  const best = largestWithin(width, height, limit, multiple)
  throw new ImageSizeError(
    `${what}: ${width}x${height} (${mp(width * height)}) is larger than the limit of ${mp(limit)} ` +
      `(${side}x${side} pixels); the largest allowed at this aspect ratio is ${best.width}x${best.height}`,
  )
}
