import { describe, expect, it } from 'vitest'
import { checkGenerationSize, resizeImage, resizeModeFromA1111, RESIZE_MODES } from './resize'
import { boxBlur, gaussianBoxRadius, pilResize } from './pil'
import type { RawImage } from './types'

function gradient(w: number, h: number, channels: 1 | 3 | 4 = 3): RawImage {
  const data = new Uint8Array(w * h * channels)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < channels; c++) data[(y * w + x) * channels + c] = (x * 5 + y * 11 + c * 60) % 256
    }
  }
  return { data, width: w, height: h, channels }
}

const px = (img: RawImage, x: number, y: number, c = 0): number =>
  img.data[(y * img.width + x) * img.channels + c] as number

describe('resizeImage output sizes (every mode)', () => {
  const sources: [number, number][] = [
    [100, 37],
    [37, 100],
    [64, 64],
    [513, 301],
  ]
  const targets: [number, number][] = [
    [64, 48],
    [48, 64],
    [64, 64],
    [8, 8],
  ]
  for (const mode of RESIZE_MODES) {
    for (const [sw, sh] of sources) {
      for (const [tw, th] of targets) {
        it(`${mode} ${sw}x${sh} → ${tw}x${th}`, async () => {
          const out = await resizeImage(gradient(sw, sh), tw, th, mode)
          expect([out.width, out.height, out.channels, out.data.length]).toEqual([tw, th, 3, tw * th * 3])
        })
      }
    }
  }
  it('works on masks (1 channel) and RGBA', async () => {
    const m = await resizeImage(gradient(30, 20, 1), 16, 24, 'resize-and-fill')
    expect([m.width, m.height, m.channels]).toEqual([16, 24, 1])
    const a = await resizeImage(gradient(30, 20, 4), 16, 24, 'crop-and-resize')
    expect([a.width, a.height, a.channels]).toEqual([16, 24, 4])
  })
})

describe('resize modes content', () => {
  it('crop-and-resize keeps the centre (cover + centre crop)', async () => {
    // 40×20: red | green (cols 10-29) | blue → 64×32 cover → cols 16..47 kept = the green band
    const src = gradient(40, 20)
    for (let y = 0; y < 20; y++) {
      for (let x = 0; x < 40; x++) {
        const rgb = x < 10 ? [255, 0, 0] : x < 30 ? [0, 255, 0] : [0, 0, 255]
        src.data.set(rgb, (y * 40 + x) * 3)
      }
    }
    const out = await resizeImage(src, 32, 32, 'crop-and-resize')
    for (let y = 0; y < 32; y++) {
      for (let x = 4; x < 28; x++) {
        expect(Math.abs(px(out, x, y, 0) - 0)).toBeLessThanOrEqual(1)
        expect(Math.abs(px(out, x, y, 1) - 255)).toBeLessThanOrEqual(1)
      }
    }
  })

  it('resize-and-fill: centred contain, bands = Lanczos edge extrapolation (1.2228, −0.2717, 0.0489)', async () => {
    const out = await resizeImage(gradient(40, 20), 32, 32, 'resize-and-fill')
    // resized 32×16 pasted at y = 8; bands rows 0-7 and 24-31
    const sinc = (v: number): number => (v === 0 ? 1 : Math.sin(Math.PI * v) / (Math.PI * v))
    const l3 = (v: number): number => sinc(v) * sinc(v / 3)
    const w = [l3(0.5), l3(1.5), l3(2.5)]
    const s = w[0]! + w[1]! + w[2]!
    const [w0, w1, w2] = w.map((v) => v / s) as [number, number, number]
    expect(w0).toBeCloseTo(1.2228, 4)
    expect(w1).toBeCloseTo(-0.2717, 4)
    expect(w2).toBeCloseTo(0.0489, 4)
    const clamp = (v: number): number => Math.max(0, Math.min(255, Math.round(v)))
    for (let x = 0; x < 32; x++) {
      for (let c = 0; c < 3; c++) {
        const top = clamp(w0 * px(out, x, 8, c) + w1 * px(out, x, 9, c) + w2 * px(out, x, 10, c))
        const bottom = clamp(w0 * px(out, x, 23, c) + w1 * px(out, x, 22, c) + w2 * px(out, x, 21, c))
        for (let y = 0; y < 8; y++) {
          expect(Math.abs(px(out, x, y, c) - top)).toBeLessThanOrEqual(1)
          expect(Math.abs(px(out, x, 24 + y, c) - bottom)).toBeLessThanOrEqual(1)
        }
      }
    }
  })

  it('resize-and-fill with a tall source fills left/right bands the same way', async () => {
    const out = await resizeImage(gradient(20, 40), 32, 32, 'resize-and-fill')
    // resized 16×32 at x = 8; left band columns 0-7 identical per row
    for (let y = 0; y < 32; y++) for (let x = 1; x < 8; x++) expect(px(out, x, y)).toBe(px(out, 0, y))
  })

  it('maps A1111 indices and checks generation sizes', () => {
    expect(resizeModeFromA1111(2)).toBe('resize-and-fill')
    expect(() => resizeModeFromA1111(3)).toThrow(/unknown A1111 resize mode 3/)
    expect(() => checkGenerationSize(512, 510)).toThrow(/multiple of 8/)
    expect(() => checkGenerationSize(512, 512)).not.toThrow()
  })
})

describe('Pillow primitives', () => {
  it('gaussianBoxRadius matches the Gwosdek formula (radius 2 → 1.375)', () => {
    expect(gaussianBoxRadius(2)).toBeCloseTo(1.375, 5)
    expect(gaussianBoxRadius(0)).toBe(0)
  })

  it('box blur keeps a constant image constant and preserves the mean of a bounded signal', () => {
    const c: RawImage = { data: new Uint8Array(20 * 10).fill(77), width: 20, height: 10, channels: 1 }
    expect(boxBlur(c, 2.5).data.every((v) => v === 77)).toBe(true)
    const big = boxBlur(c, 300) // radius far larger than the image
    expect(big.data.every((v) => v === 77)).toBe(true)
  })

  it('pilResize with identity size copies, bicubic 2× down averages', () => {
    const g = gradient(8, 8, 1)
    expect(pilResize(g, 8, 8, 'bicubic').data).toEqual(g.data)
    const flat: RawImage = { data: new Uint8Array(64).fill(200), width: 8, height: 8, channels: 1 }
    expect(pilResize(flat, 4, 4, 'bicubic').data.every((v) => v === 200)).toBe(true)
  })
})
