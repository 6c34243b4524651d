import { compositeThroughMask } from './mask'
import { flattenAlpha, pilGaussianBlur } from './pil'
import type { Mask, RawImage } from './types'
import { checkImage, toRgb } from './types'

/**
 * Outpainting: extend the canvas on any sides, pre-fill the new area, and build the masks.
 *
 * - New area pre-fill: edge replication (nearest original pixel) taken from progressively blurred copies of the
 *   image, σ = min(maxBlur, distance·blurPerPixel), so colours near the seam are sharp and far ones smooth; optional
 *   seeded Gaussian noise growing with distance (gives the sampler texture to work with at strength < 1).
 * - `mask` (binary, for the latent mask / generation): 255 on the new area and on an `overlap`-px band of the
 *   original along every extended side.
 * - `blendMask` (for pasting back): 255 on the new area, a smoothstep ramp across the band down to 0 at its inner
 *   edge, 0 elsewhere. pasteOutpaint composites through it, so original pixels outside the band are bit-identical.
 */

export interface Extents {
  left: number
  top: number
  right: number
  bottom: number
}

export interface OutpaintOptions {
  /** Band of the original regenerated and cross-faded (px, default 32; clamped to the image). */
  overlap?: number
  /** 'edge-blur' (default) or 'edge' (plain replication). */
  fill?: 'edge-blur' | 'edge'
  /** σ growth per pixel of distance from the original (default 0.5). */
  blurPerPixel?: number
  /** Largest σ (default 64). */
  maxBlur?: number
  /** Noise standard deviation (0–255 units) at the far edge of the new area (default 0 = none). */
  noise?: number
  /** Seed of that noise (default 0). */
  seed?: number
}

export interface OutpaintPrepared {
  /** Extended, pre-filled canvas: (W + left + right) × (H + top + bottom), RGB. */
  image: RawImage
  mask: Mask
  blendMask: Mask
  /** Where the original lies on the canvas. */
  original: { x: number; y: number; width: number; height: number }
  extents: Extents
  overlap: number
}

export function checkExtents(e: Extents): void {
  for (const side of ['left', 'top', 'right', 'bottom'] as const) {
    const v = e[side]
    if (!Number.isInteger(v) || v < 0 || v % 8 !== 0) {
      throw new RangeError(`outpaint ${side} extension must be a non-negative multiple of 8 px (got ${v})`)
    }
  }
  if (e.left + e.top + e.right + e.bottom === 0)
    throw new RangeError('outpaint needs at least one side to extend')
}

/** Round every extent up to a multiple of 8. */
export function snapExtents(e: Extents): Extents {
  const up = (v: number): number => Math.max(0, Math.ceil(v / 8) * 8)
  return { left: up(e.left), top: up(e.top), right: up(e.right), bottom: up(e.bottom) }
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function smoothstep(t: number): number {
  const c = t < 0 ? 0 : t > 1 ? 1 : t
  return c * c * (3 - 2 * c)
}

export function prepareOutpaint(
  image: RawImage,
  extents: Extents,
  opts: OutpaintOptions = {},
): OutpaintPrepared {
  checkImage(image, 'image')
  checkExtents(extents)
  const src = flattenAlpha(image)
  const { width: w, height: h } = src
  const { left, top, right, bottom } = extents
  const W = w + left + right
  const H = h + top + bottom
  const blurPerPixel = opts.fill === 'edge' ? 0 : (opts.blurPerPixel ?? 0.5)
  const maxBlur = opts.maxBlur ?? 64
  const noise = opts.noise ?? 0
  const rand = mulberry32(opts.seed ?? 0)
  const maxDist = Math.max(left, top, right, bottom)

  // blur levels σ = 0, 1, 2, 4, … ≤ maxBlur (only as far as the largest distance needs)
  const sigmas = [0]
  for (let s = 1; s <= Math.min(maxBlur, maxDist * blurPerPixel); s *= 2) sigmas.push(s)
  const topSigma = Math.min(maxBlur, maxDist * blurPerPixel)
  if (topSigma > (sigmas[sigmas.length - 1] as number)) sigmas.push(topSigma)
  const levels = sigmas.map((s) => (s === 0 ? src : pilGaussianBlur(src, s)))

  const out = new Uint8Array(W * H * 3)
  let spare: number | undefined
  const gauss = (): number => {
    if (spare !== undefined) {
      const v = spare
      spare = undefined
      return v
    }
    const u = Math.max(rand(), 1e-12)
    const v = rand()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
  for (let y = 0; y < H; y++) {
    const oy = y - top
    const cy = oy < 0 ? 0 : oy >= h ? h - 1 : oy
    for (let x = 0; x < W; x++) {
      const ox = x - left
      const cx = ox < 0 ? 0 : ox >= w ? w - 1 : ox
      const o = (y * W + x) * 3
      const si = (cy * w + cx) * 3
      const d = Math.max(Math.abs(ox - cx), Math.abs(oy - cy))
      if (d === 0) {
        out[o] = src.data[si] as number
        out[o + 1] = src.data[si + 1] as number
        out[o + 2] = src.data[si + 2] as number
        continue
      }
      const sigma = Math.min(maxBlur, d * blurPerPixel)
      let k = 0
      while (k + 1 < sigmas.length && (sigmas[k + 1] as number) <= sigma) k++
      const lo = sigmas[k] as number
      const hi = sigmas[Math.min(k + 1, sigmas.length - 1)] as number
      const t = hi > lo ? (sigma - lo) / (hi - lo) : 0
      const a = (levels[k] as RawImage).data
      const b = (levels[Math.min(k + 1, levels.length - 1)] as RawImage).data
      const amp = noise > 0 ? (noise * d) / maxDist : 0
      for (let c = 0; c < 3; c++) {
        let v = (a[si + c] as number) * (1 - t) + (b[si + c] as number) * t
        if (amp > 0) v += amp * gauss()
        out[o + c] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v)
      }
    }
  }

  const overlap = Math.max(0, Math.min(opts.overlap ?? 32, Math.min(w, h)))
  const mask = new Uint8Array(W * H)
  const blend = new Uint8Array(W * H)
  for (let y = 0; y < H; y++) {
    const oy = y - top
    for (let x = 0; x < W; x++) {
      const ox = x - left
      const i = y * W + x
      if (ox < 0 || oy < 0 || ox >= w || oy >= h) {
        mask[i] = 255
        blend[i] = 255
        continue
      }
      // distance (pixel centres) from each extended side into the original
      let m = 0
      let inBand = false
      const sides: [number, number][] = [
        [left, ox],
        [top, oy],
        [right, w - 1 - ox],
        [bottom, h - 1 - oy],
      ]
      for (const [ext, dist] of sides) {
        if (ext > 0 && dist < overlap) {
          inBand = true
          m = Math.max(m, smoothstep(1 - (dist + 0.5) / overlap))
        }
      }
      if (inBand) mask[i] = 255
      blend[i] = Math.round(m * 255)
    }
  }

  return {
    image: { data: out, width: W, height: H, channels: 3 },
    mask: { data: mask, width: W, height: H, channels: 1 },
    blendMask: { data: blend, width: W, height: H, channels: 1 },
    original: { x: left, y: top, width: w, height: h },
    extents: { ...extents },
    overlap,
  }
}

/**
 * Final outpaint image: the generated canvas composited onto the prepared canvas through blendMask — original
 * pixels outside the overlap band are bit-identical, the new area is the generated one. `generated` must have the
 * canvas size (resize it first if the model ran at another size).
 */
export function pasteOutpaint(prep: OutpaintPrepared, generated: RawImage): RawImage {
  const gen = toRgb(generated)
  if (gen.width !== prep.image.width || gen.height !== prep.image.height) {
    throw new RangeError(
      `pasteOutpaint: generated image is ${gen.width}x${gen.height}, the canvas is ${prep.image.width}x${prep.image.height}`,
    )
  }
  return compositeThroughMask(prep.image, gen, prep.blendMask)
}

export interface ZoomOutStep {
  extents: Extents
  /** Canvas after extending. */
  canvasWidth: number
  canvasHeight: number
  /** Size the result is scaled back to before the next step (the original size). */
  rescaleTo: { width: number; height: number }
  /** Cumulative zoom-out after this step. */
  zoom: number
}

/**
 * "Zoom out ×N" as a repeatable loop: `steps` iterations (default: enough that each grows the canvas by at most
 * `maxStepFactor`, 1.5×) that extend all four sides by equal multiple-of-8 amounts and rescale back to W×H.
 * The achieved factor can differ slightly from N because of the rounding; `zoom` reports it.
 */
export function zoomOutPlan(
  width: number,
  height: number,
  factor: number,
  opts: { steps?: number; maxStepFactor?: number } = {},
): ZoomOutStep[] {
  if (!(factor > 1)) throw new RangeError(`zoom-out factor must be greater than 1 (got ${factor})`)
  if (width % 8 !== 0 || height % 8 !== 0) {
    throw new RangeError(`zoom-out needs an image size that is a multiple of 8 (got ${width}x${height})`)
  }
  const maxStep = opts.maxStepFactor ?? 1.5
  const steps = opts.steps ?? Math.max(1, Math.ceil(Math.log(factor) / Math.log(maxStep)))
  const per = Math.pow(factor, 1 / steps)
  const grow = (side: number): number => Math.max(1, Math.round((side * (per - 1)) / 16)) * 8
  const ex = grow(width)
  const ey = grow(height)
  const plan: ZoomOutStep[] = []
  let zoom = 1
  for (let i = 0; i < steps; i++) {
    zoom *= (width + 2 * ex) / width
    plan.push({
      extents: { left: ex, right: ex, top: ey, bottom: ey },
      canvasWidth: width + 2 * ex,
      canvasHeight: height + 2 * ey,
      rescaleTo: { width, height },
      zoom,
    })
  }
  return plan
}
