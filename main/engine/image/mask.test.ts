import { describe, expect, it } from 'vitest'
import { encodePng } from './codec'
import {
  blurMask,
  compositeThroughMask,
  cropRegion,
  expandCropRegion,
  gaussianKernel,
  invertMask,
  loadMask,
  maskBlurKernelSize,
  maskFromImage,
  pasteBack,
  prepareInpaint,
  reflect101,
} from './mask'
import type { Mask, RawImage } from './types'

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 4294967296
  }
}

function noiseImage(w: number, h: number, seed = 1): RawImage {
  const r = rng(seed)
  return {
    data: Uint8Array.from({ length: w * h * 3 }, () => Math.floor(r() * 256)),
    width: w,
    height: h,
    channels: 3,
  }
}

function rectMask(w: number, h: number, x1: number, y1: number, x2: number, y2: number): Mask {
  const data = new Uint8Array(w * h)
  for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) data[y * w + x] = 255
  return { data, width: w, height: h, channels: 1 }
}

describe('maskFromImage / loadMask / invertMask', () => {
  it('RGB → PIL luminance, greys kept; threshold option', () => {
    const img: RawImage = {
      data: Uint8Array.from([255, 255, 255, 0, 0, 0, 255, 0, 0, 10, 200, 30]),
      width: 4,
      height: 1,
      channels: 3,
    }
    const m = maskFromImage(img)
    // L = (R·19595 + G·38470 + B·7471 + 0x8000) >> 16
    expect([...m.data]).toEqual([255, 0, 76, 124])
    expect([...maskFromImage(img, { threshold: 100 }).data]).toEqual([255, 0, 0, 255])
  })

  it('RGBA with transparency → alpha, rounded at 128 (A1111 create_binary_mask)', () => {
    const img: RawImage = {
      data: Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 0, 129, 255, 255, 255, 255]),
      width: 4,
      height: 1,
      channels: 4,
    }
    expect([...maskFromImage(img).data]).toEqual([0, 0, 255, 255])
    expect([...maskFromImage(img, { round: false }).data]).toEqual([0, 128, 129, 255])
  })

  it('opaque RGBA uses luminance', () => {
    const img: RawImage = {
      data: Uint8Array.from([255, 255, 255, 255, 0, 0, 0, 255]),
      width: 2,
      height: 1,
      channels: 4,
    }
    expect([...maskFromImage(img).data]).toEqual([255, 0])
  })

  it('loads a PNG and inverts', async () => {
    const m = await loadMask(await encodePng(rectMask(8, 8, 2, 2, 6, 6)))
    expect(m.data[0]).toBe(0)
    expect(m.data[3 * 8 + 3]).toBe(255)
    expect(invertMask(m).data[0]).toBe(255)
  })
})

describe('blurMask (A1111 mask blur)', () => {
  it('kernel size 2·int(2.5σ+0.5)+1 and reflect-101 borders', () => {
    expect([1, 2, 4, 8, 0.5].map(maskBlurKernelSize)).toEqual([7, 11, 21, 41, 3])
    expect([-2, -1, 0, 4, 5, 6].map((i) => reflect101(i, 5))).toEqual([2, 1, 0, 4, 3, 2])
    expect(reflect101(-7, 3)).toBe(1)
  })

  /** Naive 2-D Gaussian with the same kernel, one rounding at the end. */
  function naiveBlur(m: Mask, sx: number, sy: number): Uint8Array {
    const kx = gaussianKernel(maskBlurKernelSize(sx), sx)
    const ky = gaussianKernel(maskBlurKernelSize(sy), sy)
    const hx = (kx.length - 1) / 2
    const hy = (ky.length - 1) / 2
    const out = new Uint8Array(m.data.length)
    for (let y = 0; y < m.height; y++) {
      for (let x = 0; x < m.width; x++) {
        let acc = 0
        for (let j = 0; j < ky.length; j++) {
          for (let i = 0; i < kx.length; i++) {
            const sxx = reflect101(x + i - hx, m.width)
            const syy = reflect101(y + j - hy, m.height)
            acc += kx[i]! * ky[j]! * m.data[syy * m.width + sxx]!
          }
        }
        out[y * m.width + x] = Math.round(acc)
      }
    }
    return out
  }

  it.each([
    [4, 4],
    [3, 6],
    [1, 0],
  ])('σx=%d σy=%d matches a naive 2-D Gaussian within 1', (sx, sy) => {
    const m = rectMask(48, 40, 10, 12, 30, 25)
    m.data[5] = 255 // a corner speck tests the borders
    const ours = blurMask(m, sx, sy)
    const ref = sy === 0 ? naiveBlur(m, sx, 0.0001) : naiveBlur(m, sx, sy)
    let maxDiff = 0
    for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours.data[i]! - ref[i]!))
    expect(maxDiff).toBeLessThanOrEqual(1)
  })

  it('σ = 0 leaves the mask unchanged; the kernel sums to 1', () => {
    const m = rectMask(8, 8, 1, 1, 4, 4)
    expect(blurMask(m, 0).data).toEqual(m.data)
    expect(gaussianKernel(21, 4).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12)
  })
})

describe('crop region (only masked) — A1111 masking.py', () => {
  it('bbox plus padding, clamped; null for an empty mask', () => {
    const m = rectMask(100, 80, 20, 30, 40, 35)
    expect(cropRegion(m)).toEqual({ x1: 20, y1: 30, x2: 40, y2: 35 })
    expect(cropRegion(m, 32)).toEqual({ x1: 0, y1: 0, x2: 72, y2: 67 })
    expect(cropRegion(rectMask(10, 10, 0, 0, 0, 0), 4)).toBeNull()
  })

  it.each([
    // [region, procW, procH, imgW, imgH, expected]  (hand-computed from expand_crop_region)
    ['128×32 strip → 128×128 (docstring)', [100, 200, 228, 232], 512, 512, 512, 512, [100, 152, 228, 280]],
    ['strip at the bottom edge shifts up', [100, 490, 228, 512], 512, 512, 512, 512, [100, 384, 228, 512]],
    ['tall region widened, shifted right of 0', [0, 0, 60, 200], 768, 512, 640, 480, [0, 0, 300, 200]],
    [
      'odd difference: extra pixel goes to the far side',
      [10, 10, 31, 20],
      512,
      512,
      512,
      512,
      [10, 5, 31, 26],
    ],
    ['portrait processing size', [50, 50, 150, 100], 512, 768, 512, 512, [50, 0, 150, 150]],
    ['already at the ratio: unchanged', [8, 8, 72, 72], 512, 512, 512, 512, [8, 8, 72, 72]],
  ] as const)('%s', (_name, r, pw, ph, iw, ih, e) => {
    const got = expandCropRegion({ x1: r[0], y1: r[1], x2: r[2], y2: r[3] }, pw, ph, iw, ih)
    expect([got.x1, got.y1, got.x2, got.y2]).toEqual([...e])
  })
})

describe('prepareInpaint / pasteBack', () => {
  it('only masked: crop at the generation aspect, sizes, and bit-identical pixels outside the blurred mask', async () => {
    const img = noiseImage(160, 120, 3)
    const mask = rectMask(160, 120, 70, 50, 90, 66)
    const prep = await prepareInpaint(img, mask, {
      width: 64,
      height: 48,
      maskBlur: 4,
      onlyMasked: true,
      padding: 8,
    })
    expect(prep).not.toBeNull()
    const p = prep!
    // blurred mask reaches 10 px (kernel 21): bbox 60..100 × 40..76, +8 padding → 52..108 × 32..84 (56×52),
    // then widened to 4:3: desired 52·4/3 = 69.33 → +13 px, 6 left / 7 right → 46..115
    expect(p.cropRegion).toEqual({ x1: 46, y1: 32, x2: 115, y2: 84 })
    expect(p.pasteTo).toEqual({ x: 46, y: 32, width: 69, height: 52 })
    expect([p.image.width, p.image.height, p.mask.width, p.mask.height]).toEqual([64, 48, 64, 48])
    expect([p.overlayMask.width, p.overlayMask.height]).toEqual([160, 120])

    const generated = noiseImage(64, 48, 99)
    const out = await pasteBack(p, generated)
    expect([out.width, out.height]).toEqual([160, 120])
    let untouched = 0
    let changed = 0
    for (let i = 0; i < 160 * 120; i++) {
      const same = [0, 1, 2].every((c) => out.data[i * 3 + c] === img.data[i * 3 + c])
      if (p.overlayMask.data[i] === 0) {
        expect(same).toBe(true)
        untouched++
      } else if (!same) changed++
    }
    expect(untouched).toBeGreaterThan(15000)
    expect(changed).toBeGreaterThan(300)
  })

  it('only masked with an empty mask → null (A1111 falls back to img2img)', async () => {
    const prep = await prepareInpaint(noiseImage(32, 32), rectMask(32, 32, 0, 0, 0, 0), {
      width: 32,
      height: 32,
      onlyMasked: true,
    })
    expect(prep).toBeNull()
  })

  it('whole picture: overlay = clip(2·mask), pixels with overlay 0 keep their bytes', async () => {
    const img = noiseImage(64, 64, 5)
    const prep = (await prepareInpaint(img, rectMask(64, 64, 20, 20, 40, 40), {
      width: 64,
      height: 64,
      maskBlur: 2,
    }))!
    expect(prep.pasteTo).toBeUndefined()
    for (let i = 0; i < prep.mask.data.length; i++) {
      expect(prep.overlayMask.data[i]).toBe(Math.min(255, prep.mask.data[i]! * 2))
    }
    const out = await pasteBack(prep, noiseImage(64, 64, 6))
    for (let i = 0; i < 64 * 64; i++) {
      if (prep.overlayMask.data[i] === 0) {
        for (let c = 0; c < 3; c++) expect(out.data[i * 3 + c]).toBe(img.data[i * 3 + c])
      }
    }
  })

  it('invert option repaints the outside', async () => {
    const prep = (await prepareInpaint(noiseImage(32, 32), rectMask(32, 32, 8, 8, 24, 24), {
      width: 32,
      height: 32,
      maskBlur: 0,
      invert: true,
    }))!
    expect(prep.mask.data[0]).toBe(255)
    expect(prep.mask.data[16 * 32 + 16]).toBe(0)
  })

  it('rejects generation sizes that are not multiples of 8', async () => {
    await expect(
      prepareInpaint(noiseImage(32, 32), rectMask(32, 32, 1, 1, 5, 5), { width: 30, height: 32 }),
    ).rejects.toThrow(/multiple of 8/)
  })
})

describe('compositeThroughMask', () => {
  it('integer blend: m=0 original, m=255 generated, m=128 rounded mean', () => {
    const a: RawImage = {
      data: Uint8Array.from([10, 20, 30, 10, 20, 30, 10, 20, 30]),
      width: 3,
      height: 1,
      channels: 3,
    }
    const b: RawImage = {
      data: Uint8Array.from([200, 100, 0, 200, 100, 0, 201, 100, 0]),
      width: 3,
      height: 1,
      channels: 3,
    }
    const m: Mask = { data: Uint8Array.from([0, 255, 128]), width: 3, height: 1, channels: 1 }
    const out = compositeThroughMask(a, b, m)
    expect([...out.data]).toEqual([10, 20, 30, 200, 100, 0, Math.round((201 * 128 + 10 * 127) / 255), 60, 15])
  })
})
