/**
 * Size limits on pixels, shared by every decode and every operation that makes a larger picture. A 249 KB
 * PNG can declare 16000x16000 (4.7 GB decoded) and a Lanczos x16 of 4096² asks for 4.3 G pixels: both are
 * refused before any pixel buffer is allocated, with an error that names the limit and the largest size
 * that fits.
 */

import { largestWithin, MAX_OUTPUT_PIXELS } from '../../../preload/image-limits'

export {
  largestWithin,
  MAX_GENERATION_PIXELS,
  MAX_GENERATION_SIDE,
  MAX_INPUT_PIXELS,
  MAX_OUTPUT_PIXELS,
  MAX_UNTILED_PIXELS,
} from '../../../preload/image-limits'

export class ImageSizeError extends RangeError {
  constructor(message: string) {
    super(message)
    this.name = 'ImageSizeError'
  }
}

function mp(pixels: number): string {
  return `${Math.round(pixels / 1e5) / 10} MP`
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
