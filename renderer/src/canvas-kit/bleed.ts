/**
 * A1111 `masking.fill` in floating point, for previews: the known pixels (premultiplied by their
 * coverage) are Gaussian-blurred at each radius (three box passes, as Pillow approximates a Gaussian),
 * un-premultiplied and alpha-composited in turn; the alpha is dropped at the end, so colours bleed
 * outwards at full strength. Pure: runs in vitest.
 */

export const FILL_LAYERS: readonly (readonly [number, number])[] = [
  [256, 1],
  [64, 1],
  [16, 2],
  [4, 4],
  [2, 2],
  [0, 1],
]

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
  r: number,
  horizontal: boolean,
): void {
  const len = horizontal ? w : h
  const lines = horizontal ? h : w
  const step = horizontal ? 4 : w * 4
  const norm = 1 / (2 * r + 1)
  for (let line = 0; line < lines; line++) {
    const base = horizontal ? line * w * 4 : line * 4
    for (let c = 0; c < 4; c++) {
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

export function gaussianPremultiplied(src: Float32Array, w: number, h: number, sigma: number): Float32Array {
  let a = src.slice()
  let b = new Float32Array(src.length)
  for (const box of boxesForSigma(sigma)) {
    const r = (box - 1) / 2
    boxPass(a, b, w, h, r, true)
    ;[a, b] = [b, a]
    boxPass(a, b, w, h, r, false)
    ;[a, b] = [b, a]
  }
  return a
}

/**
 * `rgba`: straight RGBA bytes; pixels with alpha 0 are the hole. `scale` shrinks the radii for a reduced
 * board. Returns opaque RGBA bytes with the hole filled.
 */
export function bleedFill(rgba: Uint8ClampedArray, w: number, h: number, scale = 1): Uint8ClampedArray {
  const n = w * h
  const known = new Float32Array(n * 4)
  for (let p = 0; p < n; p++) {
    const a = (rgba[p * 4 + 3] ?? 0) / 255
    known[p * 4] = ((rgba[p * 4] ?? 0) / 255) * a
    known[p * 4 + 1] = ((rgba[p * 4 + 1] ?? 0) / 255) * a
    known[p * 4 + 2] = ((rgba[p * 4 + 2] ?? 0) / 255) * a
    known[p * 4 + 3] = a
  }
  const mod = new Float32Array(n * 4) // straight colour + alpha
  for (const [radius, repeats] of FILL_LAYERS) {
    const blurred = radius > 0 ? gaussianPremultiplied(known, w, h, radius * scale) : known
    for (let p = 0; p < n; p++) {
      const sa = blurred[p * 4 + 3] ?? 0
      if (sa <= 1e-7) continue
      for (let r = 0; r < repeats; r++) {
        const da = mod[p * 4 + 3] ?? 0
        const oa = sa + da * (1 - sa)
        for (let c = 0; c < 3; c++) {
          const s = (blurred[p * 4 + c] ?? 0) / sa
          const d = mod[p * 4 + c] ?? 0
          mod[p * 4 + c] = (s * sa + d * da * (1 - sa)) / oa
        }
        mod[p * 4 + 3] = oa
      }
    }
  }
  const out = new Uint8ClampedArray(n * 4)
  for (let p = 0; p < n; p++) {
    out[p * 4] = Math.round((mod[p * 4] ?? 0) * 255)
    out[p * 4 + 1] = Math.round((mod[p * 4 + 1] ?? 0) * 255)
    out[p * 4 + 2] = Math.round((mod[p * 4 + 2] ?? 0) * 255)
    out[p * 4 + 3] = 255
  }
  return out
}
