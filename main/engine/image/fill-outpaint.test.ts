import { describe, expect, it } from 'vitest'
import { applyLatentNoise, applyLatentNothing, applyMaskedContent, fillMaskedArea } from './fill'
import { checkExtents, pasteOutpaint, prepareOutpaint, snapExtents, zoomOutPlan } from './outpaint'
import { alphaCompositeInPlace, flattenAlpha, premultiply, unpremultiply } from './pil'
import type { Mask, RawImage } from './types'

function halves(w: number, h: number): RawImage {
  // left half red, right half blue
  const data = new Uint8Array(w * h * 3)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) data.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3)
  }
  return { data, width: w, height: h, channels: 3 }
}

function noiseImage(w: number, h: number, seed = 1): RawImage {
  let s = seed
  const data = Uint8Array.from({ length: w * h * 3 }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s >>> 24
  })
  return { data, width: w, height: h, channels: 3 }
}

describe('masked content: fill (A1111 masking.fill)', () => {
  it('keeps unmasked pixels and fills the hole with the surrounding colours', () => {
    const img = halves(48, 32)
    const mask: Mask = { data: new Uint8Array(48 * 32), width: 48, height: 32, channels: 1 }
    for (let y = 8; y < 24; y++) for (let x = 12; x < 36; x++) mask.data[y * 48 + x] = 255
    const out = fillMaskedArea(img, mask)
    for (let i = 0; i < 48 * 32; i++) {
      if (mask.data[i] === 0)
        for (let c = 0; c < 3; c++) expect(out.data[i * 3 + c]).toBe(img.data[i * 3 + c])
    }
    const at = (x: number, y: number): number[] => [
      ...out.data.subarray((y * 48 + x) * 3, (y * 48 + x) * 3 + 3),
    ]
    // inside the hole: reddish on the left, bluish on the right, no green
    const left = at(13, 16)
    const right = at(34, 16)
    expect(left[0]!).toBeGreaterThan(left[2]!)
    expect(right[2]!).toBeGreaterThan(right[0]!)
    expect(left[1]).toBe(0)
    expect(right[1]).toBe(0)
    // fully opaque result: no black holes
    expect(left[0]! + left[2]!).toBeGreaterThan(200)
  })

  it('original mode leaves the image alone', () => {
    const img = noiseImage(8, 8)
    const mask: Mask = { data: new Uint8Array(64).fill(255), width: 8, height: 8, channels: 1 }
    expect(applyMaskedContent(img, mask, 'original').data).toEqual(img.data)
  })

  it('flattenAlpha composites RGBA onto white like A1111 images.flatten', () => {
    const img: RawImage = {
      data: Uint8Array.from([128, 128, 128, 128, 10, 20, 30, 255, 0, 0, 0, 0]),
      width: 3,
      height: 1,
      channels: 4,
    }
    expect([...flattenAlpha(img).data]).toEqual([191, 191, 191, 10, 20, 30, 255, 255, 255])
  })

  it('Pillow premultiply / alpha_composite arithmetic', () => {
    expect([...premultiply(Uint8Array.from([200, 100, 50, 128]))]).toEqual([100, 50, 25, 128])
    expect([...unpremultiply(Uint8Array.from([100, 50, 25, 128]))]).toEqual([199, 99, 49, 128])
    const dst = Uint8Array.from([0, 0, 0, 0, 10, 10, 10, 255])
    alphaCompositeInPlace(dst, Uint8Array.from([200, 100, 50, 255, 250, 250, 250, 128]))
    expect([...dst.subarray(0, 4)]).toEqual([200, 100, 50, 255])
    // 250 over 10 at α 128: (250·128 + 10·127)/255 ≈ 130.5
    expect(Math.abs(dst[4]! - 130.5)).toBeLessThanOrEqual(1)
    expect(dst[7]).toBe(255)
  })
})

describe('latent noise / latent nothing', () => {
  it('mix per channel with the latent mask (1 = repaint)', () => {
    const lat = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) // [1, 2, 2, 2]
    const m = Float32Array.from([0, 1, 0, 1])
    const noise = Float32Array.from([10, 20, 30, 40, 50, 60, 70, 80])
    expect([...applyLatentNoise(lat, m, noise)]).toEqual([1, 20, 3, 40, 5, 60, 7, 80])
    expect([...applyLatentNothing(lat, m)]).toEqual([1, 0, 3, 0, 5, 0, 7, 0])
    expect(() => applyLatentNothing(lat, Float32Array.from([1, 0, 1]))).toThrow(RangeError)
  })
})

describe('outpaint', () => {
  it.each([
    [{ left: 64, top: 0, right: 0, bottom: 0 }],
    [{ left: 0, top: 32, right: 0, bottom: 8 }],
    [{ left: 16, top: 16, right: 16, bottom: 16 }],
    [{ left: 0, top: 0, right: 128, bottom: 64 }],
  ])('output = input + extension %j, original untouched outside the band', (ext) => {
    const img = noiseImage(64, 48, 7)
    const prep = prepareOutpaint(img, ext, { overlap: 16, noise: 8, seed: 3 })
    const W = 64 + ext.left + ext.right
    const H = 48 + ext.top + ext.bottom
    for (const im of [prep.image, prep.mask, prep.blendMask]) expect([im.width, im.height]).toEqual([W, H])
    expect(prep.original).toEqual({ x: ext.left, y: ext.top, width: 64, height: 48 })

    const generated = noiseImage(W, H, 11)
    const out = pasteOutpaint(prep, generated)
    expect([out.width, out.height]).toEqual([W, H])
    const band = 16
    let bad = 0
    for (let oy = 0; oy < 48; oy++) {
      for (let ox = 0; ox < 64; ox++) {
        const inBand =
          (ext.left > 0 && ox < band) ||
          (ext.top > 0 && oy < band) ||
          (ext.right > 0 && ox >= 64 - band) ||
          (ext.bottom > 0 && oy >= 48 - band)
        const i = (oy + ext.top) * W + ox + ext.left
        if (prep.mask.data[i] !== (inBand ? 255 : 0)) bad++
        for (let c = 0; c < 3; c++) {
          const orig = img.data[(oy * 64 + ox) * 3 + c]
          if (prep.image.data[i * 3 + c] !== orig) bad++ // canvas holds the original bytes
          if (!inBand && out.data[i * 3 + c] !== orig) bad++ // bit-identical outside the band
        }
        if (!inBand && prep.blendMask.data[i] !== 0) bad++
      }
    }
    // new area: mask 255 and the generated pixels
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const ox = x - ext.left
        const oy = y - ext.top
        if (ox >= 0 && oy >= 0 && ox < 64 && oy < 48) continue
        const i = y * W + x
        if (prep.mask.data[i] !== 255 || prep.blendMask.data[i] !== 255) bad++
        for (let c = 0; c < 3; c++) if (out.data[i * 3 + c] !== generated.data[i * 3 + c]) bad++
      }
    }
    expect(bad).toBe(0)
  })

  it('blend ramp decreases across the band (seam → inner edge)', () => {
    const prep = prepareOutpaint(
      noiseImage(64, 32),
      { left: 8, top: 0, right: 0, bottom: 0 },
      { overlap: 32 },
    )
    const row = 10 * 72
    const ramp = [...prep.blendMask.data.subarray(row + 8, row + 8 + 33)]
    expect(ramp[0]).toBeGreaterThan(250)
    for (let i = 1; i < ramp.length; i++) expect(ramp[i]!).toBeLessThanOrEqual(ramp[i - 1]!)
    expect(ramp[32]).toBe(0)
  })

  it('pre-fill replicates the edge, blurring with distance', () => {
    const img = noiseImage(32, 32, 5)
    const sharpFill = prepareOutpaint(img, { left: 0, top: 0, right: 32, bottom: 0 }, { fill: 'edge' })
    const blurFill = prepareOutpaint(img, { left: 0, top: 0, right: 32, bottom: 0 })
    const W = 64
    for (let y = 0; y < 32; y++) {
      // plain replication: every new pixel = the last original column
      for (let x = 32; x < 64; x++) {
        for (let c = 0; c < 3; c++) {
          expect(sharpFill.image.data[(y * W + x) * 3 + c]).toBe(img.data[(y * 32 + 31) * 3 + c])
        }
      }
    }
    // blurred fill: far column varies less along y than the near one
    const spread = (x: number): number => {
      const v = Array.from({ length: 32 }, (_, y) => blurFill.image.data[(y * W + x) * 3]!)
      return Math.max(...v) - Math.min(...v)
    }
    expect(spread(63)).toBeLessThan(spread(32))
    // deterministic
    expect(
      prepareOutpaint(img, { left: 8, top: 0, right: 0, bottom: 0 }, { noise: 10, seed: 1 }).image.data,
    ).toEqual(
      prepareOutpaint(img, { left: 8, top: 0, right: 0, bottom: 0 }, { noise: 10, seed: 1 }).image.data,
    )
  })

  it('enforces multiples of 8 and offers snapping', () => {
    expect(() => checkExtents({ left: 12, top: 0, right: 0, bottom: 0 })).toThrow(/left extension must be/)
    expect(() => checkExtents({ left: 0, top: 0, right: 0, bottom: 0 })).toThrow(/at least one side/)
    expect(snapExtents({ left: 12, top: 1, right: 0, bottom: 64 })).toEqual({
      left: 16,
      top: 8,
      right: 0,
      bottom: 64,
    })
    expect(() =>
      pasteOutpaint(
        prepareOutpaint(noiseImage(8, 8), snapExtents({ left: 1, top: 0, right: 0, bottom: 0 })),
        noiseImage(8, 8),
      ),
    ).toThrow(/canvas is 16x8/)
  })

  it('zoom-out plan: equal multiple-of-8 extents per iteration, cumulative factor ≈ N', () => {
    const plan = zoomOutPlan(512, 512, 2)
    expect(plan).toHaveLength(2) // 1.5× per step at most → 2 steps of √2
    for (const s of plan) {
      expect(s.extents).toEqual({ left: 104, right: 104, top: 104, bottom: 104 })
      expect([s.canvasWidth, s.canvasHeight]).toEqual([720, 720])
      expect(s.rescaleTo).toEqual({ width: 512, height: 512 })
    }
    expect(plan[1]!.zoom).toBeCloseTo((720 / 512) ** 2, 10)
    expect(Math.abs(plan[1]!.zoom - 2)).toBeLessThan(0.03)
    const one = zoomOutPlan(512, 768, 1.25)
    expect(one).toHaveLength(1)
    expect(one[0]!.extents).toEqual({ left: 64, right: 64, top: 96, bottom: 96 }) // 640×960 = 1.25×
    expect(() => zoomOutPlan(500, 512, 2)).toThrow(/multiple of 8/)
  })
})
