import { resizeLanczos } from './codec'
import { pilResize } from './pil'
import type { RawImage } from './types'
import { checkSize, createImage, pasteImage } from './types'

/**
 * A1111 img2img resize modes (`modules/images.py::resize_image`):
 *   0 'just-resize'      stretch to W×H
 *   1 'crop-and-resize'  cover W×H keeping the aspect ratio, centre, crop the excess
 *   2 'resize-and-fill'  fit inside W×H keeping the aspect ratio, centre, fill the two empty bands with the edge
 *                        row/column stretched outwards (Pillow Lanczos over a zero-height box = a 3-tap Lanczos
 *                        extrapolation of the edge, as upstream)
 * The main resize is Lanczos-3 through sharp; the fill strips use the Pillow-exact resampler.
 * Output is always exactly width×height.
 */

export type ResizeMode = 'just-resize' | 'crop-and-resize' | 'resize-and-fill'

export const RESIZE_MODES: readonly ResizeMode[] = ['just-resize', 'crop-and-resize', 'resize-and-fill']

/** Python floor division for non-negative / mixed ints. */
const fdiv = (a: number, b: number): number => Math.floor(a / b)

export function resizeModeFromA1111(index: number): ResizeMode {
  const m = RESIZE_MODES[index]
  if (!m) throw new RangeError(`unknown A1111 resize mode ${index} (0, 1 or 2)`)
  return m
}

/** Generation sizes must be multiples of 8 (latent = pixels / 8). */
export function checkGenerationSize(width: number, height: number): void {
  checkSize(width, height)
  if (width % 8 !== 0 || height % 8 !== 0) {
    throw new RangeError(`generation size ${width}x${height} must be a multiple of 8 on both sides`)
  }
}

export async function resizeImage<T extends RawImage>(
  img: T,
  width: number,
  height: number,
  mode: ResizeMode = 'just-resize',
): Promise<T> {
  checkSize(width, height)
  if (mode === 'just-resize') return resizeLanczos(img, width, height)

  const ratio = width / height
  const srcRatio = img.width / img.height
  if (mode === 'crop-and-resize') {
    const srcW = ratio > srcRatio ? width : fdiv(img.width * height, img.height)
    const srcH = ratio <= srcRatio ? height : fdiv(img.height * width, img.width)
    const resized = await resizeLanczos(img, srcW, srcH)
    const res = createImage(width, height, img.channels) as T
    pasteImage(res, resized, fdiv(width, 2) - fdiv(srcW, 2), fdiv(height, 2) - fdiv(srcH, 2))
    return res
  }

  // resize-and-fill
  const srcW = ratio < srcRatio ? width : fdiv(img.width * height, img.height)
  const srcH = ratio >= srcRatio ? height : fdiv(img.height * width, img.width)
  const resized = await resizeLanczos(img, Math.max(1, srcW), Math.max(1, srcH))
  const res = createImage(width, height, img.channels) as T
  pasteImage(res, resized, fdiv(width, 2) - fdiv(resized.width, 2), fdiv(height, 2) - fdiv(resized.height, 2))
  if (ratio < srcRatio) {
    const fillHeight = fdiv(height, 2) - fdiv(resized.height, 2)
    if (fillHeight > 0) {
      const rh = resized.height
      pasteImage(res, pilResize(resized, width, fillHeight, 'lanczos', [0, 0, width, 0]), 0, 0)
      pasteImage(
        res,
        pilResize(resized, width, fillHeight, 'lanczos', [0, rh, width, rh]),
        0,
        fillHeight + rh,
      )
    }
  } else if (ratio > srcRatio) {
    const fillWidth = fdiv(width, 2) - fdiv(resized.width, 2)
    if (fillWidth > 0) {
      const rw = resized.width
      pasteImage(res, pilResize(resized, fillWidth, height, 'lanczos', [0, 0, 0, height]), 0, 0)
      pasteImage(
        res,
        pilResize(resized, fillWidth, height, 'lanczos', [rw, 0, rw, height]),
        fillWidth + rw,
        0,
      )
    }
  }
  return res
}
