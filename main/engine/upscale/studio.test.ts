import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { encodePng } from '../image/codec'
import { runStudio, withDefaults } from '../pipelines/generate'
import type { DiffusionModel } from '../pipelines/types'

/** Hires fix and SD upscale through the studio pipeline (runStudio), on a fake model that records UNet shapes. */

function fakeModel(): DiffusionModel & { unet: DiffusionModel['unet']; shapes: number[][] } {
  const shapes: number[][] = []
  return {
    id: 'fake',
    shapes,
    encodeText(_ids, batch) {
      return Promise.resolve(new ort.Tensor('float32', new Float32Array(batch * 77 * 8), [batch, 77, 8]))
    },
    unet(sample) {
      shapes.push([...sample.dims])
      const [b = 1, , h = 1, w = 1] = sample.dims
      return Promise.resolve(new ort.Tensor('float32', new Float32Array(b * 4 * h * w), [b, 4, h, w]))
    },
    encode(image) {
      const [b = 1, , H = 8, W = 8] = image.dims
      const n = b * 4 * (H / 8) * (W / 8)
      return Promise.resolve({
        mean: new ort.Tensor('float32', new Float32Array(n).fill(0.1), [b, 4, H / 8, W / 8]),
        std: new ort.Tensor('float32', new Float32Array(n), [b, 4, H / 8, W / 8]),
      })
    },
    decode(latents) {
      const [b = 1, , h = 1, w = 1] = latents.dims
      return Promise.resolve(
        new ort.Tensor('float32', new Float32Array(b * 3 * h * 64 * w).fill(0.3), [b, 3, h * 8, w * 8]),
      )
    },
  }
}

const env = (model: DiffusionModel) => ({ model, encode: () => [320, 321], inpaintModel: false })

describe('studio pipeline with upscaling', () => {
  it('txt2img + hires fix: base pass, then exactly --hires-steps at twice the size', async () => {
    const model = fakeModel()
    const req = withDefaults({
      mode: 'txt2img',
      model: 'fake',
      prompt: 'x',
      width: 64,
      height: 48,
      steps: 4,
      sampler: 'Euler',
      hires: { scale: 2, strength: 0.5, steps: 3 },
    })
    const out: { w: number; h: number }[] = []
    const summary = await runStudio(req, 7, {
      ...env(model),
      onBatch: (b) => void out.push(...b.images.map((i) => ({ w: i.width, h: i.height }))),
    })
    expect(out).toEqual([{ w: 128, h: 96 }])
    expect(model.shapes.map((s) => s.slice(2))).toEqual([
      [6, 8],
      [6, 8],
      [6, 8],
      [6, 8],
      [12, 16],
      [12, 16],
      [12, 16],
    ])
    expect(summary).toMatchObject({ width: 128, height: 96, stepsRun: 3, scheduleLength: 6 })
  })

  it('txt2img + hires fix with a pixel upscaler (Lanczos) re-encodes the upscaled picture', async () => {
    const model = fakeModel()
    const req = withDefaults({
      mode: 'txt2img',
      model: 'fake',
      prompt: 'x',
      width: 32,
      height: 32,
      steps: 2,
      sampler: 'Euler',
      hires: { scale: 1.5, upscaler: 'Lanczos' },
    })
    const summary = await runStudio(req, 1, env(model))
    expect(summary).toMatchObject({ width: 48, height: 48, stepsRun: 2 })
  })

  it('img2img + SD upscale: tiles at the request size, one image per seed, the upscaled size out', async () => {
    const model = fakeModel()
    const data = new Uint8Array(40 * 24 * 3).map((_, i) => i % 251)
    const image = await encodePng({ data, width: 40, height: 24, channels: 3 })
    const req = withDefaults({
      mode: 'img2img',
      model: 'fake',
      prompt: 'x',
      image: new Uint8Array(image),
      width: 32,
      height: 32,
      steps: 4,
      strength: 0.5,
      sampler: 'Euler',
      // diffusers step rule: int(4 x 0.5) = 2 steps per tile (A1111's would run 3)
      samplerConvention: 'diffusers',
      batchSize: 2,
      sdUpscale: { scale: 2, tileOverlap: 8 },
    })
    const out: { w: number; h: number; seed: number }[] = []
    const steps: string[] = []
    await runStudio(req, 10, {
      ...env(model),
      onProgress: (p) => void steps.push(`${p.step}/${p.total}`),
      onBatch: (b) =>
        void out.push(...b.images.map((i, k) => ({ w: i.width, h: i.height, seed: b.seeds[k] ?? -1 }))),
    })
    expect(steps.filter((x) => x === '2/2')).toHaveLength(12)
    expect(out).toEqual([
      { w: 80, h: 48, seed: 10 },
      { w: 80, h: 48, seed: 11 },
    ])
    // 80x48 in 32x32 tiles overlapping by 8: 3 columns x 2 rows, 2 steps each (strength 0.5 of 4), per image.
    expect(model.shapes).toHaveLength(2 * 6 * 2)
    expect(model.shapes.every((s) => s[0] === 2 && s[2] === 4 && s[3] === 4)).toBe(true)
  })
})
