import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { TorchCpuGenerator } from '../random'
import { createScheduler } from '../schedulers'
import { encodePrompts } from './conditioning'
import { coreImg2Img, coreTxt2Img, nearestDownsample, pilNearestDownsample } from './core'
import { denoise } from './denoise'
import { SeededNoise } from './noise'
import { fullSchedule, planSteps } from './strength'
import { blend, combine, concatChannels, expandPlanes, guidance } from './tensor'
import type { DiffusionModel, NoiseSource } from './types'
import { GenerationCancelled } from './types'

/** A model whose UNet returns eps = 0.1 * sample (first 4 channels) + the context's first value, recording calls. */
function fakeModel(): DiffusionModel & { calls: { dims: readonly number[]; t: number; ctx: number[] }[] } {
  const calls: { dims: readonly number[]; t: number; ctx: number[] }[] = []
  return {
    id: 'fake',
    calls,
    encodeText: () => Promise.reject(new Error('unused')),
    async unet(sample, t, context) {
      const [b = 1, c = 4, h = 1, w = 1] = sample.dims
      const per = (context.data as Float32Array).length / (context.dims[0] ?? 1)
      calls.push({
        dims: sample.dims,
        t,
        ctx: Array.from({ length: b }, (_, i) => (context.data as Float32Array)[i * per]!),
      })
      const x = sample.data as Float32Array
      const out = new Float32Array(b * 4 * h * w)
      for (let i = 0; i < b; i++)
        for (let k = 0; k < 4 * h * w; k++)
          out[i * 4 * h * w + k] = 0.1 * x[i * c * h * w + k]! + (context.data as Float32Array)[i * per]!
      return new ort.Tensor('float32', out, [b, 4, h, w])
    },
    async encode(image) {
      const [b = 1, , H = 8, W = 8] = image.dims
      const n = b * 4 * (H / 8) * (W / 8)
      return {
        mean: new ort.Tensor('float32', new Float32Array(n).fill(0.5), [b, 4, H / 8, W / 8]),
        std: new ort.Tensor('float32', new Float32Array(n).fill(0.1), [b, 4, H / 8, W / 8]),
      }
    },
    decode: () => Promise.reject(new Error('unused')),
  }
}

function context(values: number[]): ort.Tensor {
  const data = new Float32Array(values.length * 2 * 3)
  values.forEach((v, i) => data.fill(v, i * 6, (i + 1) * 6))
  return new ort.Tensor('float32', data, [values.length, 2, 3])
}

const zeros = (): NoiseSource => ({ randn: (shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)) })

describe('step plans (strength)', () => {
  it('diffusers semantics: int(steps * strength) steps of a steps-long schedule', () => {
    const s = createScheduler('DDIM')
    const p = planSteps(s, 20, 0.3)
    expect(p.stepsRun).toBe(6)
    expect(p.scheduleLength).toBe(20)
    s.setTimesteps(20)
    expect(Array.from(p.timesteps)).toEqual(Array.from(s.timesteps.slice(14)))
  })

  it('exact steps: the last `steps` steps of an int(steps / strength) schedule (A1111 field-notes example)', () => {
    const s = createScheduler('Euler a')
    const p = planSteps(s, 20, 0.3, true)
    expect(p.scheduleLength).toBe(66)
    expect(p.stepsRun).toBe(20)
    s.setTimesteps(66)
    expect(Array.from(p.timesteps)).toEqual(Array.from(s.timesteps.slice(46)))
  })

  it('strength 1 runs the whole schedule either way; a strength that runs nothing is a readable error', () => {
    expect(planSteps(createScheduler('DDIM'), 10, 1, true).stepsRun).toBe(10)
    expect(fullSchedule(createScheduler('PLMS'), 10).stepsRun).toBe(11)
    expect(() => planSteps(createScheduler('DDIM'), 3, 0.2)).toThrow(/runs no step/)
    expect(() => planSteps(createScheduler('DDIM'), 10, 0)).toThrow(/strength/)
  })
})

describe('tensor helpers', () => {
  it('CFG: uncond + g * (cond - uncond); AND weights sum over the cond blocks', () => {
    const eps = Float32Array.from([1, 2, 3, 5])
    expect(Array.from(guidance(eps, 7.5))).toEqual([1 + 7.5 * 2, 2 + 7.5 * 3])
    const three = Float32Array.from([1, 3, 5])
    expect(Array.from(combine(three, [0.5, 0.25], 2))).toEqual([1 + 1 * 2 + 0.5 * 4])
    expect(Array.from(combine(eps, [1], 7.5))).toEqual(Array.from(guidance(eps, 7.5)))
  })

  it('concatChannels interleaves per batch item; expandPlanes repeats planes over channels', () => {
    const a = Float32Array.from([1, 2, 3, 4]) // [2, 2, 1, 1]
    const m = Float32Array.from([9, 8]) // [2, 1, 1, 1]
    expect(
      Array.from(
        concatChannels(
          [
            { data: a, channels: 2 },
            { data: m, channels: 1 },
          ],
          2,
          1,
        ),
      ),
    ).toEqual([1, 2, 9, 3, 4, 8])
    expect(Array.from(expandPlanes(Float32Array.from([1, 0]), 2, 2, 2))).toEqual([1, 0, 1, 0, 1, 0, 1, 0])
    expect(
      Array.from(blend(Float32Array.from([1, 1]), Float32Array.from([5, 5]), Float32Array.from([1, 0]))),
    ).toEqual([1, 5])
  })

  it('PIL nearest samples pixel centres, torch nearest the top-left pixel', () => {
    const plane = Uint8Array.from({ length: 16 }, (_, i) => i)
    expect(Array.from(pilNearestDownsample(plane, 4, 4, 2, 2))).toEqual([5, 7, 13, 15])
    expect(Array.from(nearestDownsample(Float32Array.from(plane), 1, 4, 4, 2, 2))).toEqual([0, 2, 8, 10])
  })
})

describe('seeded noise', () => {
  it('one generator per image: a batch draw equals the per-seed draws side by side', () => {
    const batch = new SeededNoise([5, 6]).randn([2, 4, 2, 2], 'pipeline')
    const a = new TorchCpuGenerator(5).randn([1, 4, 2, 2])
    const b = new TorchCpuGenerator(6).randn([1, 4, 2, 2])
    expect(Array.from(batch)).toEqual([...a, ...b])
    expect(Array.from(SeededNoise.forBatch(5, 1).randn([1, 4, 2, 2]))).toEqual(Array.from(a))
  })
})

describe('denoise loop', () => {
  const shape = { batch: 1, channels: 4, height: 2, width: 2 }

  it('CFG runs uncond and cond in one UNet call, uncond first', async () => {
    const model = fakeModel()
    await coreTxt2Img({
      model,
      scheduler: createScheduler('DDIM'),
      steps: 3,
      context: context([-1, 1]),
      guidanceScale: 7,
      noise: zeros(),
      shape,
    })
    expect(model.calls).toHaveLength(3)
    for (const c of model.calls) {
      expect(c.dims).toEqual([2, 4, 2, 2])
      expect(c.ctx).toEqual([-1, 1])
    }
  })

  it('without CFG (scale <= 1) only the cond block runs', async () => {
    const model = fakeModel()
    await coreTxt2Img({
      model,
      scheduler: createScheduler('DDIM'),
      steps: 2,
      context: context([1]),
      guidanceScale: 1,
      noise: zeros(),
      shape,
    })
    expect(model.calls.map((c) => c.dims[0])).toEqual([1, 1])
  })

  it('cancellation stops before the next UNet call (within one step)', async () => {
    const model = fakeModel()
    const ctl = new AbortController()
    const run = denoise({
      model,
      scheduler: (() => {
        const s = createScheduler('DDIM')
        s.setTimesteps(50)
        return s
      })(),
      timesteps: (() => {
        const s = createScheduler('DDIM')
        s.setTimesteps(50)
        return s.timesteps
      })(),
      latents: new Float32Array(16),
      shape,
      context: context([0, 1]),
      guidanceScale: 7,
      noise: zeros(),
      signal: ctl.signal,
      onStep: (i) => {
        if (i.step === 3) ctl.abort()
      },
    })
    await expect(run).rejects.toBeInstanceOf(GenerationCancelled)
    expect(model.calls).toHaveLength(3)
  })

  it('img2img draws vae noise first, then the pipeline noise, and runs int(steps * strength) steps', async () => {
    const model = fakeModel()
    const order: string[] = []
    const noise: NoiseSource = {
      randn: (s, origin) => {
        order.push(origin ?? '?')
        return new Float32Array(s.reduce((a, b) => a * b, 1))
      },
    }
    const r = await coreImg2Img({
      model,
      scheduler: createScheduler('Euler'),
      steps: 10,
      strength: 0.6,
      context: context([0, 1]),
      guidanceScale: 7.5,
      noise,
      shape,
      image: new Float32Array(3 * 16 * 16),
    })
    expect(r.plan.stepsRun).toBe(6)
    expect(order.slice(0, 2)).toEqual(['vae', 'pipeline'])
    expect(order.slice(2)).toEqual(Array(6).fill('scheduler'))
    // init latents = 0.18215 * (0.5 + 0.1 * 0)
    expect(r.init[0]).toBeCloseTo(0.18215 * 0.5, 6)
  })

  it('legacy latent blend: the kept area ends exactly at the original latents', async () => {
    const model = fakeModel()
    const s = createScheduler('DDIM')
    s.setTimesteps(5)
    const original = Float32Array.from({ length: 16 }, (_, i) => i / 10)
    const keep = expandPlanes(Float32Array.from([1, 0, 0, 1]), 1, 4, 4)
    const out = await denoise({
      model,
      scheduler: s,
      timesteps: s.timesteps,
      latents: new Float32Array(16).fill(0.3),
      shape,
      context: context([0, 1]),
      guidanceScale: 7,
      noise: zeros(),
      blend: { original, noise: new Float32Array(16), keep },
    })
    for (let i = 0; i < 16; i++) if (keep[i] === 1) expect(out[i]).toBe(original[i])
  })

  it('9-channel input: latents, mask, masked-image latents per batch item, repeated for CFG', async () => {
    const inputs: Float32Array[] = []
    const model = fakeModel()
    const unet = model.unet.bind(model)
    model.unet = async (sample, t, ctx) => {
      inputs.push((sample.data as Float32Array).slice())
      const [b = 1, , h = 1, w = 1] = sample.dims
      return unet(
        new ort.Tensor('float32', (sample.data as Float32Array).slice(0, b * 4 * h * w), [b, 4, h, w]),
        t,
        ctx,
      )
    }
    const s = createScheduler('DDIM')
    s.setTimesteps(1)
    await denoise({
      model,
      scheduler: s,
      timesteps: s.timesteps,
      latents: new Float32Array(16).fill(2),
      shape,
      context: context([0, 1]),
      guidanceScale: 7,
      noise: zeros(),
      inpaint: { mask: new Float32Array(4).fill(1), maskedLatents: new Float32Array(16).fill(3) },
    })
    const x = inputs[0] as Float32Array
    expect(x.length).toBe(2 * 9 * 4)
    for (const b of [0, 1]) {
      const item = x.subarray(b * 36, (b + 1) * 36)
      expect(Array.from(item.subarray(0, 16))).toEqual(Array(16).fill(2))
      expect(Array.from(item.subarray(16, 20))).toEqual(Array(4).fill(1))
      expect(Array.from(item.subarray(20, 36))).toEqual(Array(16).fill(3))
    }
  })
})

describe('prompt conditioning', () => {
  /** Text encoder stub: each token's embedding is [id, 1] (width 2). */
  const model: DiffusionModel = {
    ...fakeModel(),
    async encodeText(ids, batch) {
      const seq = ids.length / batch
      const out = new Float32Array(ids.length * 2)
      ids.forEach((v, i) => {
        out[i * 2] = Number(v)
        out[i * 2 + 1] = 1
      })
      return new ort.Tensor('float32', out, [batch, seq, 2])
    },
  }
  /** One token per word: ids 1000 + word length. */
  const encode = (t: string): number[] =>
    t
      .split(/\s+/)
      .filter(Boolean)
      .map((w) => 1000 + w.length)

  it('long prompts: 77-token chunks concatenated, the uncond padded to the same count, batch repeated', async () => {
    const long = Array.from({ length: 80 }, () => 'cat').join(' ')
    const c = await encodePrompts({
      model,
      encode,
      prompt: long,
      negativePrompt: 'ugly',
      batch: 2,
      cfg: true,
    })
    expect(c.context.dims).toEqual([4, 154, 2])
    expect(c.condWeights).toEqual([1])
    const d = c.context.data as Float32Array
    const row = (b: number, r: number): number => d[(b * 154 + r) * 2]!
    expect([row(0, 0), row(0, 1), row(0, 2), row(0, 77), row(0, 78)]).toEqual([
      49406, 1004, 49407, 49406, 49407,
    ])
    expect([row(2, 0), row(2, 1), row(2, 77), row(2, 78)]).toEqual([49406, 1003, 49406, 1003])
    expect(row(3, 1)).toBe(1003)
  })

  it('LoRA tags are removed and returned; AND makes one cond block per sub-prompt', async () => {
    const c = await encodePrompts({
      model,
      encode,
      prompt: 'a cat <lora:style:0.6> AND a dog :0.5',
      negativePrompt: '',
      batch: 1,
      cfg: true,
    })
    expect(c.loras.map((l) => [l.name, l.weight])).toEqual([['style', 0.6]])
    expect(c.condWeights).toEqual([1, 0.5])
    expect(c.context.dims).toEqual([3, 77, 2])
  })

  it('attention weights scale the token rows (mean kept), CFG off drops the uncond block', async () => {
    const c = await encodePrompts({
      model,
      encode,
      prompt: '(cat:1.5) dog',
      negativePrompt: '',
      batch: 1,
      cfg: false,
    })
    expect(c.context.dims).toEqual([1, 77, 2])
    const d = c.context.data as Float32Array
    // the weighted row's second feature (1 before weighting) is 1.5 x the unweighted row's
    expect(d[1 * 2 + 1]! / d[2 * 2 + 1]!).toBeCloseTo(1.5, 5)
  })
})
