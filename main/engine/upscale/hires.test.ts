import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import type { RawImage } from '../image/types'
import type { CoreOptions } from '../pipelines/core'
import { SeededNoise } from '../pipelines/noise'
import type { DiffusionModel, LatentShape } from '../pipelines/types'
import { createScheduler } from '../schedulers'
import {
  combineGrid,
  hiresFix,
  hiresTarget,
  interpolateLatents,
  latentMode,
  sdUpscale,
  sdUpscaleTarget,
  splitGrid,
} from './hires'

/** A VAE-ish fake: encode = 8x8 average to 4 channels, decode = nearest x8 of channel 0..2; UNet eps = 0. */
function fakeModel(): DiffusionModel & { unetShapes: number[][] } {
  const unetShapes: number[][] = []
  return {
    id: 'fake',
    unetShapes,
    encodeText: () => Promise.reject(new Error('unused')),
    unet(sample) {
      unetShapes.push([...sample.dims])
      const [b = 1, , h = 1, w = 1] = sample.dims
      return Promise.resolve(new ort.Tensor('float32', new Float32Array(b * 4 * h * w), [b, 4, h, w]))
    },
    encode(image) {
      const [b = 1, , H = 8, W = 8] = image.dims
      const n = b * 4 * (H / 8) * (W / 8)
      return Promise.resolve({
        mean: new ort.Tensor('float32', new Float32Array(n).fill(0.25), [b, 4, H / 8, W / 8]),
        std: new ort.Tensor('float32', new Float32Array(n).fill(0), [b, 4, H / 8, W / 8]),
      })
    },
    decode(latents) {
      const [b = 1, , h = 1, w = 1] = latents.dims
      return Promise.resolve(
        new ort.Tensor('float32', new Float32Array(b * 3 * h * 8 * w * 8).fill(0.2), [b, 3, h * 8, w * 8]),
      )
    },
  }
}

function coreFor(model: DiffusionModel, seeds: number[]): (shape: LatentShape) => CoreOptions {
  const ctx = new ort.Tensor('float32', new Float32Array(2 * 2 * 3), [2, 2, 3])
  return (shape) => ({
    model,
    scheduler: createScheduler('Euler'),
    steps: 10,
    context: ctx,
    guidanceScale: 7,
    noise: new SeededNoise(seeds),
    shape,
    scalingFactor: 0.18215,
  })
}

describe('hires fix', () => {
  it('names, targets and defaults as A1111', () => {
    expect(
      [
        'Latent',
        'Latent (antialiased)',
        'Latent (nearest)',
        'Latent (nearest-exact)',
        'Latent (bicubic)',
        'Lanczos',
        'R-ESRGAN 4x+',
      ].map(latentMode),
    ).toEqual(['bilinear', 'bilinear', 'nearest', 'nearest-exact', 'bicubic', null, null])
    expect(hiresTarget(512, 512, {})).toEqual({ width: 1024, height: 1024 })
    expect(hiresTarget(512, 768, { scale: 1.5 })).toEqual({ width: 768, height: 1152 })
    expect(hiresTarget(512, 768, { scale: 1.3 })).toEqual({ width: 664, height: 992 })
    expect(hiresTarget(512, 768, { width: 1024 })).toEqual({ width: 1024, height: 1536 })
    expect(() => hiresTarget(512, 512, { scale: 0.5 })).toThrow(/at least 1/)
  })

  it('latent interpolation equals torch F.interpolate (align_corners=False)', () => {
    const x = Float32Array.from([1, 2, 3, 4])
    const s = { batch: 1, channels: 1, height: 2, width: 2 }
    expect(Array.from(interpolateLatents(x, s, 4, 4, 'bilinear'))).toEqual([
      1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4,
    ])
    expect(Array.from(interpolateLatents(x, s, 4, 4, 'nearest'))).toEqual([
      1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4,
    ])
    const cubic = Array.from(interpolateLatents(x, s, 4, 4, 'bicubic')).map((v) => Math.round(v * 1e4) / 1e4)
    // torch: [[0.6836, 1.0156, 1.5625, 1.8945], [1.3477, 1.6797, 2.2266, 2.5586], ...]
    expect(cubic.slice(0, 8)).toEqual([0.6836, 1.0156, 1.5625, 1.8945, 1.3477, 1.6797, 2.2266, 2.5586])
    // nearest-exact from 3 to 4: src = floor((i + 0.5) * 0.75) = 0, 1, 1, 2
    expect(
      Array.from(
        interpolateLatents(
          Float32Array.from([5, 6, 7]),
          { batch: 1, channels: 1, height: 1, width: 3 },
          1,
          4,
          'nearest-exact',
        ),
      ),
    ).toEqual([5, 6, 6, 7])
  })

  it('latent upscaler: second pass at the target size, exactly N steps of a longer schedule', async () => {
    const model = fakeModel()
    const shape = { batch: 1, channels: 4, height: 4, width: 6 }
    const r = await hiresFix(
      new Float32Array(4 * 4 * 6).fill(1),
      shape,
      { scale: 2, strength: 0.5, steps: 5 },
      {
        core: coreFor(model, [42]),
        scalingFactor: 0.18215,
      },
    )
    expect(r.shape).toEqual({ batch: 1, channels: 4, height: 8, width: 12 })
    expect(r.plan).toMatchObject({ stepsRun: 5, scheduleLength: 10 })
    expect(model.unetShapes).toHaveLength(5)
    expect(model.unetShapes[0]).toEqual([2, 4, 8, 12])
  })

  it('pixel upscaler: decode, upscale to the target, re-encode; steps default to the first pass', async () => {
    const model = fakeModel()
    const seen: [number, number, string][] = []
    const r = await hiresFix(
      new Float32Array(4 * 2 * 2),
      { batch: 1, channels: 4, height: 2, width: 2 },
      { scale: 2, upscaler: 'Lanczos', strength: 0.7 },
      {
        core: coreFor(model, [1]),
        scalingFactor: 0.18215,
        upscale: (img, req) => {
          seen.push([req.width ?? 0, req.height ?? 0, req.upscaler.kind])
          return Promise.resolve({
            ...img,
            width: req.width ?? 0,
            height: req.height ?? 0,
            data: new Uint8Array((req.width ?? 0) * (req.height ?? 0) * 3),
          })
        },
      },
    )
    expect(seen).toEqual([[32, 32, 'lanczos']])
    expect(r.shape).toMatchObject({ height: 4, width: 4 })
    expect(r.plan).toMatchObject({ stepsRun: 10, scheduleLength: 14 })
  })
})

function gradient(w: number, h: number): RawImage {
  const data = new Uint8Array(w * h * 3)
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = (x * 3 + y * 5 + c * 40) % 256
  return { data, width: w, height: h, channels: 3 }
}

describe('SD upscale', () => {
  it('splits like images.split_grid', () => {
    expect(splitGrid(1024, 1024, 512, 512, 64).rows).toEqual([
      { y: 0, xs: [0, 256, 512] },
      { y: 256, xs: [0, 256, 512] },
      { y: 512, xs: [0, 256, 512] },
    ])
    const g = splitGrid(1000, 600, 512, 512, 64)
    expect(g.rows.map((r) => r.y)).toEqual([0, 88])
    expect(g.rows[0]?.xs).toEqual([0, 244, 488])
    expect(sdUpscaleTarget(300, 301, 2)).toEqual({ width: 600, height: 600 })
  })

  it('identical tiles blend back to the picture exactly; different tiles ramp across the overlap', () => {
    const img = gradient(40, 24)
    const g = splitGrid(40, 24, 16, 16, 4)
    const tiles = g.rows.map((r) =>
      r.xs.map((x) => {
        const t = new Uint8Array(16 * 16 * 3)
        for (let y = 0; y < 16; y++)
          t.set(img.data.subarray(((r.y + y) * 40 + x) * 3, ((r.y + y) * 40 + x + 16) * 3), y * 48)
        return { data: t, width: 16, height: 16, channels: 3 as const }
      }),
    )
    expect(Buffer.from(combineGrid(g, tiles).data).equals(Buffer.from(img.data))).toBe(true)
    // Black tile then white tile: the overlap ramps 0, 63, 127, 191 (A1111's r * 255 / overlap, truncated).
    const two = splitGrid(28, 16, 16, 16, 4)
    expect(two.rows[0]?.xs).toEqual([0, 12])
    const solid = (v: number): RawImage => ({
      data: new Uint8Array(16 * 16 * 3).fill(v),
      width: 16,
      height: 16,
      channels: 3,
    })
    const out = combineGrid(two, [[solid(0), solid(255)]])
    expect([11, 12, 13, 14, 15, 16].map((x) => out.data[x * 3])).toEqual([0, 0, 63, 127, 191, 255])
  })

  it('upscales, runs img2img per tile with seed + index, and reassembles', async () => {
    const calls: [number, number, number][] = []
    const src = gradient(20, 12)
    const out = await sdUpscale(
      src,
      100,
      { scale: 2, tileOverlap: 8 },
      {
        tileWidth: 16,
        tileHeight: 16,
        upscale: (img, req) => {
          expect(req.upscaler.kind).toBe('lanczos')
          return Promise.resolve(gradient(req.width ?? 0, req.height ?? 0))
        },
        img2img: (tile, seed, i, n) => {
          calls.push([seed, i, n])
          return Promise.resolve(tile)
        },
      },
    )
    expect([out.width, out.height]).toEqual([40, 24])
    expect(Buffer.from(out.data).equals(Buffer.from(gradient(40, 24).data))).toBe(true)
    expect(calls.map((c) => c[0])).toEqual([100, 101, 102, 103, 104, 105, 106, 107])
    expect(calls[0]?.[2]).toBe(8)
  })
})
