/**
 * Pure geometry for the studio canvases: snapping, A1111's only-masked crop region, zoom around a point,
 * and the step count a denoising strength runs. No DOM here, so every rule is unit-tested.
 */

import { expandCropRegion } from '../../../preload/crop-region'

export interface Rect {
  x1: number
  y1: number
  /** Exclusive. */
  x2: number
  /** Exclusive. */
  y2: number
}

export const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v))

/** Nearest multiple of 8 (SD latents are 1/8 of the image), never below `min`. */
export function snap8(v: number, min = 0): number {
  return Math.max(min, Math.round(v / 8) * 8)
}

/** Largest multiple of 8 not above v (how a size "from the image" is rounded down), at least 64. */
export function floor8(v: number, min = 64): number {
  return Math.max(min, Math.floor(v / 8) * 8)
}

/** Gaussian kernel half-width OpenCV uses for a sigma (A1111's mask blur: `2*int(2.5*s+0.5)+1` taps). */
export function blurReach(sigma: number): number {
  return sigma > 0 ? Math.floor(2.5 * sigma + 0.5) : 0
}

/**
 * A1111 `get_crop_region_v2`: the mask's bounding box grown by `pad` on every side, clamped to the image;
 * null for an empty mask (A1111 then falls back to the whole picture).
 */
export function cropRegion(bbox: Rect | null, pad: number, width: number, height: number): Rect | null {
  if (!bbox || bbox.x2 <= bbox.x1 || bbox.y2 <= bbox.y1) return null
  return {
    x1: Math.max(bbox.x1 - pad, 0),
    y1: Math.max(bbox.y1 - pad, 0),
    x2: Math.min(bbox.x2 + pad, width),
    y2: Math.min(bbox.y2 + pad, height),
  }
}

export { expandCropRegion }

/**
 * The area "Only masked" inpainting regenerates: the bounding box of the blurred mask (the painted box
 * grown by the blur's reach), padded, then widened to the processing aspect. Null when nothing is masked.
 */
export function onlyMaskedArea(
  painted: Rect | null,
  opts: { blur: number; padding: number; procW: number; procH: number; imgW: number; imgH: number },
): Rect | null {
  if (!painted) return null
  const reach = blurReach(opts.blur)
  const blurred: Rect = {
    x1: Math.max(0, painted.x1 - reach),
    y1: Math.max(0, painted.y1 - reach),
    x2: Math.min(opts.imgW, painted.x2 + reach),
    y2: Math.min(opts.imgH, painted.y2 + reach),
  }
  const crop = cropRegion(blurred, opts.padding, opts.imgW, opts.imgH)
  return crop ? expandCropRegion(crop, opts.procW, opts.procH, opts.imgW, opts.imgH) : null
}

/** Bounding box of the pixels whose alpha is above `threshold` in RGBA data; null when none are. */
export function alphaBounds(
  data: Uint8ClampedArray,
  width: number,
  height: number,
  threshold = 0,
): Rect | null {
  let x1 = width
  let y1 = height
  let x2 = -1
  let y2 = -1
  for (let y = 0; y < height; y++) {
    const row = y * width * 4
    let first = -1
    for (let x = 0; x < width; x++) {
      if ((data[row + x * 4 + 3] ?? 0) > threshold) {
        first = x
        break
      }
    }
    if (first < 0) continue
    let last = first
    for (let x = width - 1; x > first; x--) {
      if ((data[row + x * 4 + 3] ?? 0) > threshold) {
        last = x
        break
      }
    }
    if (first < x1) x1 = first
    if (last > x2) x2 = last
    if (y < y1) y1 = y
    y2 = y
  }
  return x2 < 0 ? null : { x1, y1, x2: x2 + 1, y2: y2 + 1 }
}

/**
 * Steps a denoising strength runs with a k-diffusion sampler: A1111's `int(min(strength, 0.999) * steps) + 1`
 * (its t_enc + 1), or exactly `steps` ("exact steps", A1111's img2img_fix_steps); with the diffusers
 * convention `int(steps * strength)`.
 */
export function stepsRun(steps: number, strength: number, exactSteps: boolean, diffusers = false): number {
  if (strength <= 0) return 0
  if (exactSteps) return steps
  if (diffusers) return strength >= 1 ? steps : Math.min(Math.floor(steps * strength + 1e-9), steps)
  return Math.min(Math.floor(Math.min(strength, 0.999) * steps + 1e-9) + 1, steps)
}

export interface View {
  scale: number
  x: number
  y: number
}

/** Scale and offset that fit content into a viewport with a margin, centred. */
export function fitView(contentW: number, contentH: number, viewW: number, viewH: number, margin = 16): View {
  const scale = Math.max(
    0.01,
    Math.min((viewW - 2 * margin) / Math.max(1, contentW), (viewH - 2 * margin) / Math.max(1, contentH)),
  )
  return { scale, x: (viewW - contentW * scale) / 2, y: (viewH - contentH * scale) / 2 }
}

/** Zoom by `factor` keeping the content point under (px, py) fixed on screen. */
export function zoomAt(view: View, px: number, py: number, factor: number, min = 0.05, max = 32): View {
  const scale = clamp(view.scale * factor, min, max)
  const cx = (px - view.x) / view.scale
  const cy = (py - view.y) / view.scale
  return { scale, x: px - cx * scale, y: py - cy * scale }
}

/** Screen point to content coordinates. */
export function toContent(view: View, px: number, py: number): { x: number; y: number } {
  return { x: (px - view.x) / view.scale, y: (py - view.y) / view.scale }
}

export const ASPECTS = [
  { label: '1:1', w: 1, h: 1 },
  { label: '4:3', w: 4, h: 3 },
  { label: '3:2', w: 3, h: 2 },
  { label: '16:9', w: 16, h: 9 },
  { label: '3:4', w: 3, h: 4 },
  { label: '2:3', w: 2, h: 3 },
  { label: '9:16', w: 9, h: 16 },
] as const

/** Width and height (multiples of 8) with about `base`² pixels at the aspect w:h (SD1 512, SDXL 1024). */
export function sizeForAspect(base: number, w: number, h: number): { width: number; height: number } {
  const area = base * base
  const width = snap8(Math.sqrt((area * w) / h), 64)
  const height = snap8(Math.sqrt((area * h) / w), 64)
  return { width, height }
}

export interface Extension {
  left: number
  right: number
  top: number
  bottom: number
}

/** Each side extended so the board is `factor` times the image (split evenly), snapped to multiples of 8. */
export function zoomOutExtension(width: number, height: number, factor: number): Extension {
  const dx = snap8((width * (factor - 1)) / 2)
  const dy = snap8((height * (factor - 1)) / 2)
  return { left: dx, right: dx, top: dy, bottom: dy }
}
