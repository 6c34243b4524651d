import { decodeImageWithAlpha, resizeLanczos } from './codec'
import type { DecodeOptions } from './codec'
import { flattenAlpha, luminance } from './pil'
import { checkGenerationSize, resizeImage } from './resize'
import type { ResizeMode } from './resize'
import type { Mask, RawImage, Rect } from './types'
import { checkImage, createImage, cropImage, pasteImage, toRgb } from './types'
import { expandCropRegion } from '../../../preload/crop-region'

/**
 * Inpaint masks, A1111 semantics (`processing.py StableDiffusionProcessingImg2Img.init`, `masking.py`):
 * white (255) = repaint. Blur is a separable Gaussian like cv2.GaussianBlur with kernel 2·int(2.5σ+0.5)+1,
 * horizontal then vertical, each pass rounded to uint8. "Only masked" crops the blurred mask's bounding box plus
 * padding, grown to the generation's aspect ratio; the result is pasted back through the blurred mask so pixels
 * where it is 0 keep their original bytes.
 */

// ---------------------------------------------------------------------------------------------------------------
// loading

export interface MaskFromImageOptions {
  /** For masks taken from transparency: alpha > 128 → 255 else 0 (A1111 `mask_round`, default true). */
  round?: boolean
  /** When set, every mask value > threshold becomes 255, the rest 0. Default: keep greys (A1111 for L masks). */
  threshold?: number
}

/**
 * A1111 `create_binary_mask`: an RGBA image whose alpha is not all opaque gives its alpha channel (rounded at 128
 * unless `round: false`); anything else gives its luminance (PIL 'L' conversion), greys kept.
 */
export function maskFromImage(img: RawImage, opts: MaskFromImageOptions = {}): Mask {
  checkImage(img, 'mask')
  const n = img.width * img.height
  let data: Uint8Array
  let fromAlpha = false
  if (img.channels === 4) {
    for (let p = 0; p < n && !fromAlpha; p++) if ((img.data[p * 4 + 3] as number) !== 255) fromAlpha = true
  }
  if (fromAlpha) {
    data = new Uint8Array(n)
    const round = opts.round ?? true
    for (let p = 0; p < n; p++) {
      const a = img.data[p * 4 + 3] as number
      data[p] = round ? (a > 128 ? 255 : 0) : a
    }
  } else {
    data = luminance(img)
  }
  if (opts.threshold !== undefined) {
    const t = opts.threshold
    for (let p = 0; p < n; p++) data[p] = (data[p] as number) > t ? 255 : 0
  }
  return { data, width: img.width, height: img.height, channels: 1 }
}

/** Decode a mask file (any format sharp reads). */
export async function loadMask(
  bytes: Uint8Array,
  opts: MaskFromImageOptions & DecodeOptions = {},
): Promise<Mask> {
  return maskFromImage(await decodeImageWithAlpha(bytes, opts), opts)
}

export function invertMask(mask: Mask): Mask {
  const data = new Uint8Array(mask.data.length)
  for (let i = 0; i < data.length; i++) data[i] = 255 - (mask.data[i] as number)
  return { ...mask, data }
}

export function isMaskEmpty(mask: Mask): boolean {
  return mask.data.every((v) => v === 0)
}

// ---------------------------------------------------------------------------------------------------------------
// blur

/** cv2.getGaussianKernel(ksize, sigma) for sigma > 0 (normalised to sum 1). */
export function gaussianKernel(ksize: number, sigma: number): Float64Array {
  const k = new Float64Array(ksize)
  const c = (ksize - 1) / 2
  let sum = 0
  for (let i = 0; i < ksize; i++) {
    const x = i - c
    k[i] = Math.exp(-(x * x) / (2 * sigma * sigma))
    sum += k[i] as number
  }
  for (let i = 0; i < ksize; i++) k[i] = (k[i] as number) / sum
  return k
}

/** A1111 kernel size for a mask blur σ: 2·int(2.5σ + 0.5) + 1. */
export function maskBlurKernelSize(sigma: number): number {
  return 2 * Math.floor(2.5 * sigma + 0.5) + 1
}

/** OpenCV BORDER_REFLECT_101 index (…, 2, 1 | 0, 1, 2, … n-1 | n-2, …). */
export function reflect101(i: number, n: number): number {
  if (n === 1) return 0
  while (i < 0 || i >= n) {
    if (i < 0) i = -i
    if (i >= n) i = 2 * (n - 1) - i
  }
  return i
}

function blurAxis(src: Uint8Array, w: number, h: number, sigma: number, horizontal: boolean): Uint8Array {
  const ksize = maskBlurKernelSize(sigma)
  const k = gaussianKernel(ksize, sigma)
  const half = (ksize - 1) / 2
  const out = new Uint8Array(src.length)
  const n = horizontal ? w : h
  const idx = new Int32Array(n + 2 * half)
  for (let i = 0; i < idx.length; i++) idx[i] = reflect101(i - half, n)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const pos = horizontal ? x : y
      let acc = 0
      for (let t = 0; t < ksize; t++) {
        const j = idx[pos + t] as number
        acc += (k[t] as number) * (src[horizontal ? y * w + j : j * w + x] as number)
      }
      const v = Math.round(acc)
      out[y * w + x] = v < 0 ? 0 : v > 255 ? 255 : v
    }
  }
  return out
}

/**
 * A1111 mask blur: Gaussian σx along x then σy along y (0 skips an axis), kernel 2·int(2.5σ+0.5)+1, reflect-101
 * borders, each pass rounded to uint8 as the two cv2.GaussianBlur calls are.
 */
export function blurMask(mask: Mask, blurX: number, blurY: number = blurX): Mask {
  checkImage(mask, 'mask')
  let data = mask.data
  if (blurX > 0) data = blurAxis(data, mask.width, mask.height, blurX, true)
  if (blurY > 0) data = blurAxis(data, mask.width, mask.height, blurY, false)
  return { ...mask, data: data === mask.data ? data.slice() : data }
}

// ---------------------------------------------------------------------------------------------------------------
// crop region (only masked)

/** `masking.get_crop_region_v2`: bbox of non-zero pixels grown by `pad` and clamped; null for an empty mask. */
export function cropRegion(mask: Mask, pad = 0): Rect | null {
  let x1 = mask.width
  let y1 = mask.height
  let x2 = 0
  let y2 = 0
  for (let y = 0; y < mask.height; y++) {
    for (let x = 0; x < mask.width; x++) {
      if ((mask.data[y * mask.width + x] as number) !== 0) {
        if (x < x1) x1 = x
        if (y < y1) y1 = y
        if (x + 1 > x2) x2 = x + 1
        if (y + 1 > y2) y2 = y + 1
      }
    }
  }
  if (x2 === 0) return null
  if (!pad) return { x1, y1, x2, y2 }
  return {
    x1: Math.max(x1 - pad, 0),
    y1: Math.max(y1 - pad, 0),
    x2: Math.min(x2 + pad, mask.width),
    y2: Math.min(y2 + pad, mask.height),
  }
}

export { expandCropRegion } from '../../../preload/crop-region'

// ---------------------------------------------------------------------------------------------------------------
// inpaint preparation and paste back

export interface InpaintOptions {
  /** Generation size (multiples of 8). */
  width: number
  height: number
  /** Mask blur σ (A1111 default 4); a pair for separate x/y. */
  maskBlur?: number | { x: number; y: number }
  /** "Inpaint not masked". */
  invert?: boolean
  /** Inpaint area "Only masked" (A1111 inpaint_full_res). */
  onlyMasked?: boolean
  /** Masked area padding in px for onlyMasked (A1111 UI default 32). */
  padding?: number
  /** Resize mode for "Whole picture". */
  resizeMode?: ResizeMode
}

export interface InpaintPrepared {
  /** Image for the VAE encoder, width×height RGB (masked content not applied yet: see fillMaskedArea). */
  image: RawImage
  /** Processed (blurred, cropped/resized) mask, width×height: source of the latent mask and of the fill. */
  mask: Mask
  /** Image the result is composited onto (the original for onlyMasked, the resized input otherwise). */
  base: RawImage
  /** Alpha of the original in the final composite, at base size (A1111 mask_for_overlay). */
  overlayMask: Mask
  /** Where the generated image goes in `base` (onlyMasked), A1111 paste_to. */
  pasteTo?: { x: number; y: number; width: number; height: number }
  cropRegion?: Rect
}

/**
 * Everything A1111 does to image and mask before encoding. Returns null when onlyMasked is requested but the
 * blurred mask is empty (A1111 then falls back to plain img2img).
 */
export async function prepareInpaint(
  image: RawImage,
  rawMask: Mask,
  opts: InpaintOptions,
): Promise<InpaintPrepared | null> {
  checkGenerationSize(opts.width, opts.height)
  checkImage(image, 'image')
  checkImage(rawMask, 'mask')
  const rgb = flattenAlpha(image)
  let mask: Mask =
    rawMask.width === rgb.width && rawMask.height === rgb.height
      ? rawMask
      : await resizeLanczos(rawMask, rgb.width, rgb.height)
  if (opts.invert) mask = invertMask(mask)
  const blur = opts.maskBlur ?? 4
  const bx = typeof blur === 'number' ? blur : blur.x
  const by = typeof blur === 'number' ? blur : blur.y
  mask = blurMask(mask, bx, by)

  if (opts.onlyMasked) {
    const region0 = cropRegion(mask, opts.padding ?? 32)
    if (!region0) return null
    const region = expandCropRegion(region0, opts.width, opts.height, mask.width, mask.height)
    const procMask = await resizeImage(cropImage(mask, region), opts.width, opts.height, 'resize-and-fill')
    const procImage = await resizeImage(cropImage(rgb, region), opts.width, opts.height, 'resize-and-fill')
    return {
      image: procImage,
      mask: procMask,
      base: rgb,
      overlayMask: mask,
      pasteTo: { x: region.x1, y: region.y1, width: region.x2 - region.x1, height: region.y2 - region.y1 },
      cropRegion: region,
    }
  }

  const mode = opts.resizeMode ?? 'just-resize'
  const procMask = await resizeImage(mask, opts.width, opts.height, mode)
  const overlay = new Uint8Array(procMask.data.length)
  for (let i = 0; i < overlay.length; i++) overlay[i] = Math.min(255, (procMask.data[i] as number) * 2)
  const base = await resizeImage(rgb, opts.width, opts.height, mode)
  return {
    image: base,
    mask: procMask,
    base,
    overlayMask: { ...procMask, data: overlay },
  }
}

/**
 * out = round(generated·m + original·(1−m)), m = mask/255, computed in integers; where m = 0 the original byte is
 * copied unchanged (bit-identical), where m = 255 the generated byte. Same sizes, RGB or RGBA.
 */
export function compositeThroughMask(original: RawImage, generated: RawImage, mask: Mask): RawImage {
  if (
    original.width !== generated.width ||
    original.height !== generated.height ||
    original.channels !== generated.channels ||
    mask.width !== original.width ||
    mask.height !== original.height
  ) {
    throw new RangeError('compositeThroughMask: original, generated and mask must have the same size')
  }
  const out = original.data.slice()
  const ch = original.channels
  for (let p = 0; p < mask.data.length; p++) {
    const m = mask.data[p] as number
    if (m === 0) continue
    for (let c = 0; c < ch; c++) {
      const i = p * ch + c
      out[i] = Math.floor(
        ((generated.data[i] as number) * m + (original.data[i] as number) * (255 - m) + 127) / 255,
      )
    }
  }
  return { ...original, data: out }
}

/**
 * A1111 `apply_overlay`: the generated width×height image (resized back to the crop with crop-and-resize and
 * placed at pasteTo when onlyMasked) composited onto `base` through `overlayMask`.
 */
export async function pasteBack(prep: InpaintPrepared, generated: RawImage): Promise<RawImage> {
  const gen = toRgb(generated)
  let full: RawImage = gen
  if (prep.pasteTo) {
    const { x, y, width, height } = prep.pasteTo
    const resized = await resizeImage(gen, width, height, 'crop-and-resize')
    full = createImage(prep.base.width, prep.base.height, 3)
    full.data.set(prep.base.data) // outside the paste area the overlay mask is 0 anyway
    pasteImage(full, resized, x, y)
  } else if (gen.width !== prep.base.width || gen.height !== prep.base.height) {
    full = await resizeLanczos(gen, prep.base.width, prep.base.height)
  }
  return compositeThroughMask(prep.base, full, prep.overlayMask)
}
