import { describe, expect, it } from 'vitest'
import { bleedFill, boxesForSigma, gaussianPremultiplied } from './bleed'

describe('bleedFill (A1111 masking.fill)', () => {
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
    const src = new Float32Array(w * w * 4)
    src[(32 * w + 32) * 4 + 3] = 1
    const out = gaussianPremultiplied(src, w, w, 3)
    let sum = 0
    for (let p = 0; p < w * w; p++) sum += out[p * 4 + 3] ?? 0
    expect(sum).toBeCloseTo(1, 4)
  })

  it('fills the hole with the colour of its surroundings at full strength and keeps known pixels', () => {
    const w = 40
    const h = 4
    const rgba = new Uint8ClampedArray(w * h * 4)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < 10; x++) {
        const p = (y * w + x) * 4
        rgba[p] = 200
        rgba[p + 1] = 40
        rgba[p + 2] = 10
        rgba[p + 3] = 255
      }
    const out = bleedFill(rgba, w, h, 0.1)
    const px = (x: number): number[] => [...out.slice((w + x) * 4, (w + x) * 4 + 4)]
    expect(px(3)).toEqual([200, 40, 10, 255])
    // Far into the hole the colour is the same red, not faded towards black.
    const far = px(39)
    expect(far[3]).toBe(255)
    expect(Math.abs((far[0] ?? 0) - 200)).toBeLessThanOrEqual(2)
    expect(Math.abs((far[1] ?? 0) - 40)).toBeLessThanOrEqual(2)
  })
})
