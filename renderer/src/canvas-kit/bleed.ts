/**
 * The outpaint pre-fill, as the engine does it (engine/image/outpaint.ts), in floating point for
 * previews: every new pixel takes the nearest original pixel from a progressively blurred copy of the
 * image, σ = min(maxBlur, 0.5 · distance), interpolated between blur levels σ = 0, 1, 2, 4, ... Gaussian
 * blurs are three box passes (as Pillow approximates them). Pure: runs in vitest.
 */
import type { Extension } from './geometry'

/** Box widths of three passes approximating a Gaussian of this sigma (the "extended box" rule). */
export function boxesForSigma(sigma: number): number[] {
  if (sigma <= 0) return []
  const ideal = Math.sqrt((12 * sigma * sigma) / 3 + 1)
  let lo = Math.floor(ideal)
  if (lo % 2 === 0) lo--
  const hi = lo + 2
  const m = Math.round((12 * sigma * sigma - 3 * lo * lo - 12 * lo - 9) / (-4 * lo - 4))
  return [0, 1, 2].map((i) => (i < m ? lo : hi))
}

function boxPass(
  src: Float32Array,
  dst: Float32Array,
  w: number,
  h: number,
  ch: number,
  r: number,
  horizontal: boolean,
): void {
  const len = horizontal ? w : h
  const lines = horizontal ? h : w
  const step = horizontal ? ch : w * ch
  const norm = 1 / (2 * r + 1)
  for (let line = 0; line < lines; line++) {
    const base = horizontal ? line * w * ch : line * ch
    for (let c = 0; c < ch; c++) {
      // Edge pixels extend (clamp), as Pillow does.
      let acc = 0
      for (let k = -r; k <= r; k++) acc += src[base + Math.min(len - 1, Math.max(0, k)) * step + c] ?? 0
      for (let i = 0; i < len; i++) {
        dst[base + i * step + c] = acc * norm
        const add = Math.min(len - 1, i + r + 1)
        const sub = Math.max(0, i - r)
        acc += (src[base + add * step + c] ?? 0) - (src[base + sub * step + c] ?? 0)
      }
    }
  }
}

/** Gaussian blur of interleaved float channels. */
export function gaussianBlur(
  src: Float32Array,
  w: number,
  h: number,
  ch: number,
  sigma: number,
): Float32Array {
  let a = src.slice()
  let b = new Float32Array(src.length)
  for (const box of boxesForSigma(sigma)) {
    const r = (box - 1) / 2
    boxPass(a, b, w, h, ch, r, true)
    ;[a, b] = [b, a]
    boxPass(a, b, w, h, ch, r, false)
    ;[a, b] = [b, a]
  }
  return a
}

/**
 * `rgba`: the image (w × h, RGBA bytes); returns the board (w + left + right) × (h + top + bottom) as
 * opaque RGBA bytes with the new area pre-filled. `blurPerPixel` and `maxBlur` are in these pixels (scale
 * them for a reduced board).
 */
export function edgeBlurFill(
  rgba: Uint8ClampedArray,
  w: number,
  h: number,
  ext: Extension,
  opts: { blurPerPixel?: number; maxBlur?: number } = {},
): Uint8ClampedArray {
  const { left, top, right, bottom } = ext
  const W = w + left + right
  const H = h + top + bottom
  const perPixel = opts.blurPerPixel ?? 0.5
  const maxBlur = opts.maxBlur ?? 64
  const src = new Float32Array(w * h * 3)
  for (let p = 0; p < w * h; p++) for (let c = 0; c < 3; c++) src[p * 3 + c] = rgba[p * 4 + c] ?? 0
  const maxDist = Math.max(left, top, right, bottom)
  const topSigma = Math.min(maxBlur, maxDist * perPixel)
  const sigmas = [0]
  for (let s = 1; s <= topSigma; s *= 2) sigmas.push(s)
  if (topSigma > (sigmas[sigmas.length - 1] ?? 0)) sigmas.push(topSigma)
  const levels = sigmas.map((s) => (s === 0 ? src : gaussianBlur(src, w, h, 3, s)))

  const out = new Uint8ClampedArray(W * H * 4)
  for (let y = 0; y < H; y++) {
    const oy = y - top
    const cy = oy < 0 ? 0 : oy >= h ? h - 1 : oy
    for (let x = 0; x < W; x++) {
      const ox = x - left
      const cx = ox < 0 ? 0 : ox >= w ? w - 1 : ox
      const o = (y * W + x) * 4
      const si = (cy * w + cx) * 3
      const d = Math.max(Math.abs(ox - cx), Math.abs(oy - cy))
      const sigma = Math.min(maxBlur, d * perPixel)
      let k = 0
      while (k + 1 < sigmas.length && (sigmas[k + 1] ?? Infinity) <= sigma) k++
      const lo = sigmas[k] ?? 0
      const hi = sigmas[Math.min(k + 1, sigmas.length - 1)] ?? lo
      const t = hi > lo ? (sigma - lo) / (hi - lo) : 0
      const a = levels[k] ?? src
      const b = levels[Math.min(k + 1, levels.length - 1)] ?? a
      for (let c = 0; c < 3; c++) out[o + c] = (a[si + c] ?? 0) * (1 - t) + (b[si + c] ?? 0) * t
      out[o + 3] = 255
    }
  }
  return out
}
