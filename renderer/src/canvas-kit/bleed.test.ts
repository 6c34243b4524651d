import { describe, expect, it } from 'vitest'
import { boxesForSigma, edgeBlurFill, gaussianBlur } from './bleed'

describe('outpaint edge-blur pre-fill', () => {
  it('approximates a Gaussian with three odd boxes of the right variance', () => {
    for (const sigma of [2, 4, 16, 64]) {
      const boxes = boxesForSigma(sigma)
      expect(boxes).toHaveLength(3)
      for (const b of boxes) expect(b % 2).toBe(1)
      const variance = boxes.reduce((s, b) => s + (b * b - 1) / 12, 0)
      expect(Math.abs(Math.sqrt(variance) - sigma) / sigma).toBeLessThan(0.1)
    }
    expect(boxesForSigma(0)).toEqual([])
  })

  it('keeps the sum of a blurred plane away from the edges', () => {
    const w = 64
    const src = new Float32Array(w * w)
    src[32 * w + 32] = 1
    const out = gaussianBlur(src, w, w, 1, 3)
    expect(out.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 4)
  })

  it('keeps the original, replicates the edge next to it and blurs further out', () => {
    // 16 x 2: left half black, right half white; extend 32 to the right.
    const w = 16
    const h = 2
    const rgba = new Uint8ClampedArray(w * h * 4)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const p = (y * w + x) * 4
        const v = x < 8 ? 0 : 255
        rgba[p] = v
        rgba[p + 1] = v
        rgba[p + 2] = v
        rgba[p + 3] = 255
      }
    const out = edgeBlurFill(rgba, w, h, { left: 0, right: 32, top: 0, bottom: 0 })
    const W = w + 32
    const at = (x: number): number => out[x * 4] ?? -1
    expect(out.length).toBe(W * h * 4)
    expect(at(3)).toBe(0)
    expect(at(12)).toBe(255)
    // right next to the seam: σ = 0.5 -> nearly the edge pixel (white)
    expect(at(16)).toBeGreaterThan(250)
    // far out: σ = 16 over a 16 px image -> the mean grey pulls it well below white
    expect(at(W - 1)).toBeLessThan(200)
    expect(at(W - 1)).toBeGreaterThan(60)
    expect(out[3]).toBe(255)
  })
})
