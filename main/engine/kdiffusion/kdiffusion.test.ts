import { describe, expect, it } from 'vitest'
import { TorchCpuGenerator } from '../random'
import { maxAbsDiff } from '../reference/tolerance'
import type { DenoiseFn, Sampler } from './index'
import {
  a1111Img2ImgSteps,
  a1111StepMultiplier,
  a1111Schedule,
  a1111Table,
  a1111Timesteps,
  ancestralStep,
  betaPpf,
  comfyKSamplerSigmas,
  comfyTable,
  discardPenultimate,
  karras,
  lmsCoefficient,
  planSampling,
  runSampling,
  COMFY_SAMPLERS,
  COMFY_SCHEDULES,
  COMFY_SCHEDULER_LABELS,
  exponential,
  findKSampler,
  mapComfySampler,
  scheduleKey,
  sampleDpmpp2m,
  sampleDpmpp2mSde,
  sampleDpmpp2mSdeHeun,
  sampleDpmpp2sAncestral,
  sampleDpmpp3mSde,
  sampleDpmppSde,
  sampleEuler,
  sampleEulerAncestral,
  sigmaToT,
  splitSamplerName,
  tToSigma,
} from './index'

const table = a1111Table()

describe('noise table and sigma <-> t (k-diffusion CompVisDenoiser)', () => {
  it('builds sigma = sqrt((1 - ac) / ac) from the LDM linear betas', () => {
    // betas = linspace(sqrt(0.00085), sqrt(0.012), 1000) ** 2; ac[0] = 1 - 0.00085
    expect(table.alphasCumprod[0]).toBeCloseTo(1 - 0.00085, 7)
    expect(table.sigmaMin).toBeCloseTo(Math.sqrt(0.00085 / (1 - 0.00085)), 6)
    expect(table.sigmaMax).toBeCloseTo(14.614642, 4)
    for (let i = 1; i < 1000; i++) expect(table.sigmas[i]!).toBeGreaterThan(table.sigmas[i - 1]!)
  })

  it('maps table sigmas to their integer t and interpolates log-linearly between them', () => {
    for (const t of [0, 1, 250, 998, 999]) expect(sigmaToT(table, table.sigmas[t]!)).toBeCloseTo(t, 3)
    const mid = Math.exp((Math.log(table.sigmas[10]!) + Math.log(table.sigmas[11]!)) / 2)
    expect(sigmaToT(table, mid)).toBeCloseTo(10.5, 3)
    expect(tToSigma(table, 10.5)).toBeCloseTo(mid, 5)
    expect(tToSigma(table, 42)).toBeCloseTo(table.sigmas[42]!, 6)
  })

  it('ComfyUI computes the same table in float64 (differences below 1e-6)', () => {
    const c = comfyTable()
    let max = 0
    for (let i = 0; i < 1000; i++) max = Math.max(max, Math.abs(c.sigmas[i]! - table.sigmas[i]!))
    expect(max).toBeLessThan(2e-6)
  })
})

describe('schedules (A1111 sd_schedulers / k-diffusion formulas)', () => {
  it('Karras: (max^(1/7) + ramp (min^(1/7) - max^(1/7)))^7, then 0', () => {
    const s = karras(4, 0.1, 10)
    const r = (i: number): number => (10 ** (1 / 7) + (i / 3) * (0.1 ** (1 / 7) - 10 ** (1 / 7))) ** 7
    for (let i = 0; i < 4; i++) expect(s[i]).toBeCloseTo(r(i), 5)
    expect(s[4]).toBe(0)
  })

  it('Exponential is uniform in log sigma; Uniform (Automatic) starts at sigma_max and ends at sigma_min, 0', () => {
    const e = a1111Schedule('exponential', table, 5)
    const steps = [1, 2, 3].map((i) => Math.log(e[i]!) - Math.log(e[i + 1]!))
    for (const d of steps) expect(d).toBeCloseTo(Math.log(e[0]!) - Math.log(e[1]!), 4)
    const u = a1111Schedule('uniform', table, 4)
    expect(u[0]).toBeCloseTo(table.sigmaMax, 5)
    expect(u[3]).toBeCloseTo(table.sigmaMin, 6)
    expect(u[4]).toBe(0)
    // README example: [14.614643, 2.918307, 0.932358, 0.029168, 0]
    expect(Array.from(u, (v) => Number(v.toFixed(5)))).toEqual([14.61464, 2.91831, 0.93236, 0.02917, 0])
  })

  it('Simple takes every (1000 / n)-th model sigma from the top; SGM Uniform drops the sigma_min end', () => {
    const s = a1111Schedule('simple', table, 4)
    expect(Array.from(s.subarray(0, 4))).toEqual([999, 749, 499, 249].map((i) => table.sigmas[i]!))
    const g = a1111Schedule('sgm_uniform', table, 4)
    expect(g[3]!).toBeGreaterThan(table.sigmaMin * 10)
    expect(g[4]).toBe(0)
  })

  it('Beta: sigma_min + ppf(1 - linspace(0, 1, n); 0.6, 0.6) (sigma_max - sigma_min)', () => {
    expect(betaPpf(0.5, 0.6, 0.6)).toBeCloseTo(0.5, 12)
    expect(betaPpf(0.3, 1, 1)).toBeCloseTo(0.3, 12)
    expect(betaPpf(0.25, 2, 1)).toBeCloseTo(0.5, 10) // I_x(2, 1) = x^2
    const b = a1111Schedule('beta', table, 3)
    expect(b[0]).toBeCloseTo(table.sigmaMax, 5)
    expect(b[1]).toBeCloseTo((table.sigmaMin + table.sigmaMax) / 2, 5)
    expect(b[2]).toBeCloseTo(table.sigmaMin, 6)
  })

  it('discard_next_to_last_sigma drops the last non-zero sigma; DPM2 builds n + 1 first', () => {
    expect(Array.from(discardPenultimate(new Float64Array([5, 3, 2, 1, 0])))).toEqual([5, 3, 2, 0])
    const p = planSampling({ sampler: 'DPM2', convention: 'a1111', steps: 4, table })
    const k5 = karras(5, table.sigmaMin, table.sigmaMax)
    expect(Array.from(p.sigmas!)).toEqual([k5[0], k5[1], k5[2], k5[3], 0])
  })

  it('DDIM-family timesteps: clip(arange(0, 1000, 1000 // n) + 1, 0, 999)', () => {
    expect(a1111Timesteps(4)).toEqual([1, 251, 501, 751])
    expect(a1111Timesteps(12)).toHaveLength(13)
  })
})

describe('img2img step slicing', () => {
  // The README table of the A1111 rule (setup_img2img_steps + sigmas[steps - t_enc - 1:]).
  const rows: [number, number, boolean, number, number, number][] = [
    [10, 0.6, false, 10, 6, 7],
    [10, 0.6, true, 16, 9, 10],
    [20, 0.75, false, 20, 15, 16],
    [20, 0.75, true, 26, 19, 20],
    [30, 0.3, false, 30, 9, 10],
    [30, 0.3, true, 100, 29, 30],
  ]
  it.each(rows)(
    'A1111: %i steps at %f (fix %s) -> schedule %i, t_enc %i, %i sampler steps',
    (s, d, fix, len, tEnc, run) => {
      expect(a1111Img2ImgSteps(s, d, fix)).toEqual([len, tEnc])
      const p = planSampling({
        sampler: 'Euler',
        convention: 'a1111',
        steps: s,
        strength: d,
        fixSteps: fix,
        table,
      })
      expect(p.stepsRun).toBe(run)
      expect(p.sigmas).toHaveLength(len + 1)
      expect(p.sched![0]).toBe(p.sigmas![len - tEnc - 1])
    },
  )

  it('ComfyUI denoise: schedule int(steps / denoise) long, its last steps + 1 values', () => {
    const c = comfyTable()
    const s = comfyKSamplerSigmas('normal', c, 10, 0.6)
    expect(s).toHaveLength(11)
    const full = comfyKSamplerSigmas('normal', c, 16)
    expect(Array.from(s)).toEqual(Array.from(full.subarray(6)))
  })
})

describe('samplers against their formulas', () => {
  const noiseless = (): Float32Array => new Float32Array(4)
  it('Euler with a model that predicts 0 scales x by sigma_next / sigma each step', async () => {
    const sigmas = new Float64Array([8, 4, 1, 0.5])
    let draws = 0
    const x = await sampleEuler({
      model: async (v) => new Float32Array(v.length),
      x: Float32Array.from([1, 2, 3, 4]),
      sigmas,
      noise: () => {
        draws++
        return noiseless()
      },
    })
    expect(Array.from(x)).toEqual([1, 2, 3, 4].map((v) => v * (0.5 / 8)))
    expect(draws).toBe(3) // k-diffusion draws at every step even with s_churn = 0
  })

  it('ancestral step: sigma_up^2 + sigma_down^2 = sigma_to^2', () => {
    const { up, down } = ancestralStep(3, 1.5, 1)
    expect(up ** 2 + down ** 2).toBeCloseTo(1.5 ** 2, 12)
    expect(up).toBeCloseTo(Math.sqrt((1.5 ** 2 * (9 - 2.25)) / 9), 12)
    expect(ancestralStep(3, 1.5, 0)).toEqual({ down: 1.5, up: 0 })
  })

  it('Euler a adds sigma_up * noise except on the last step', async () => {
    let draws = 0
    const x = await sampleEulerAncestral({
      model: async (v) => new Float32Array(v.length),
      x: new Float32Array([2]),
      sigmas: new Float64Array([2, 1, 0]),
      noise: () => {
        draws++
        return new Float32Array([1])
      },
    })
    const { up, down } = ancestralStep(2, 1)
    expect(draws).toBe(1)
    // step 1: x = 2 * down / 2 + up; step 2 (to 0): x = denoised = 0 + x * 0 / 1
    expect(x[0]).toBeCloseTo(0, 6)
    expect(down + up).toBeGreaterThan(1)
  })

  it('DPM++ 2M returns the constant denoised prediction exactly at sigma 0', async () => {
    const x = await sampleDpmpp2m({
      model: async (v) => new Float32Array(v.length).fill(0.25),
      x: new Float32Array([5, -5]),
      sigmas: karras(6, 0.03, 14.6),
      noise: noiseless,
    })
    expect(Array.from(x)).toEqual([0.25, 0.25])
  })

  it('LMS coefficients integrate the Lagrange basis: order 1 gives sigma_next - sigma; all sum to it', () => {
    const s = [10, 6, 3, 1.5, 0.7]
    expect(lmsCoefficient(1, s, 0, 0)).toBeCloseTo(-4, 12)
    const c = [0, 1, 2, 3].map((j) => lmsCoefficient(4, s, 3, j))
    expect(c.reduce((a, b) => a + b, 0)).toBeCloseTo(0.7 - 1.5, 10)
  })

  it('runSampling (A1111 txt2img): x_T = noise * sigmas[0]; UNet input c_in scaled; t = sigma_to_t', async () => {
    const plan = planSampling({ sampler: 'Euler', convention: 'a1111', steps: 3, table })
    const seen: { t: number; input: number }[] = []
    const r = await runSampling({
      plan,
      eps: async (input, t) => {
        seen.push({ t, input: input[0]! })
        return new Float32Array(input.length)
      },
      noise: () => new Float32Array([1]),
    })
    expect(r.xInit[0]).toBeCloseTo(plan.sigmas![0]!, 5)
    expect(seen[0]!.t).toBeCloseTo(999, 3)
    expect(seen[0]!.input).toBeCloseTo(plan.sigmas![0]! / Math.sqrt(plan.sigmas![0]! ** 2 + 1), 5)
    // eps = 0: denoised = x, so Euler leaves x unchanged
    expect(r.latents[0]).toBeCloseTo(r.xInit[0]!, 5)
  })
})

describe('A1111 sampler names', () => {
  it('prompt schedules count model calls: twice per step for second-order samplers', () => {
    expect(a1111StepMultiplier('Heun')).toBe(2)
    expect(a1111StepMultiplier('DPM++ 2S a Karras')).toBe(2)
    expect(a1111StepMultiplier('Euler a')).toBe(1)
    expect(a1111StepMultiplier('DDIM')).toBe(1)
  })

  it('splits a trailing schedule label and reads the default schedule as Automatic', () => {
    expect(splitSamplerName('DPM++ 2M Karras')).toEqual({ sampler: 'DPM++ 2M', schedule: 'Automatic' })
    expect(splitSamplerName('Euler a Karras')).toEqual({ sampler: 'Euler a', schedule: 'Karras' })
    expect(splitSamplerName('DPM++ 2M', 'Exponential')).toEqual({
      sampler: 'DPM++ 2M',
      schedule: 'Exponential',
    })
    expect(splitSamplerName('DPM++ 2M', 'Uniform')).toEqual({ sampler: 'DPM++ 2M', schedule: 'Uniform' })
    expect(splitSamplerName('Euler', 'SGM Uniform')).toEqual({ sampler: 'Euler', schedule: 'SGM Uniform' })
  })
})

describe('DPM++ SDE family (k-diffusion sample_dpmpp_sde / _2m_sde / _3m_sde)', () => {
  const N = 4096
  const start = (seed: number, sigma0: number): Float32Array => {
    const x = new TorchCpuGenerator(seed).randn([N])
    for (let k = 0; k < N; k++) x[k] = x[k]! * sigma0
    return x
  }
  /** A smooth non-trivial denoiser: x0 = tanh(x / (sigma + 1)) * 0.8 + a fixed pattern. */
  const denoiser: DenoiseFn = async (x, sigma) => {
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) out[k] = Math.tanh(x[k]! / (sigma + 1)) * 0.8 + 0.1 * Math.sin(k)
    return out
  }
  const run = async (f: Sampler, sigmas: Float64Array, eta: number, seed = 7) => {
    const g = new TorchCpuGenerator(seed + 1)
    let draws = 0
    const steps: Float32Array[] = []
    const x = await f({
      model: denoiser,
      x: start(seed, sigmas[0]!),
      sigmas,
      eta,
      noise: () => {
        draws++
        return g.randn([N])
      },
      callback: (s) => void steps.push(s.x),
    })
    return { x, draws, steps }
  }

  it('DPM++ 2M SDE with eta = 0 is DPM++ 2M (the deterministic limit), midpoint and Heun', async () => {
    const sigmas = karras(12, 0.0292, 14.6146)
    const ode = await run(sampleDpmpp2m, sigmas, 0)
    const sde = await run(sampleDpmpp2mSde, sigmas, 0)
    expect(sde.draws).toBe(0)
    expect(maxAbsDiff(sde.x, ode.x)).toBeLessThan(1e-5)
    for (let i = 0; i < ode.steps.length; i++)
      expect(maxAbsDiff(sde.steps[i]!, ode.steps[i]!)).toBeLessThan(1e-4)
    // Heun's correction ((1 - e^-h) / h - 1) / r differs from the midpoint's (1 - e^-h) / (2 r) at order h^2
    const heun = await run(sampleDpmpp2mSdeHeun, sigmas, 0)
    const d = maxAbsDiff(heun.x, ode.x)
    expect(d).toBeGreaterThan(1e-4)
    expect(d).toBeLessThan(0.2)
  })

  it('DPM++ SDE with eta = 0 is DPM-Solver++(2S) (= DPM++ 2S a without noise)', async () => {
    const sigmas = karras(8, 0.0292, 14.6146)
    const a = await run(sampleDpmppSde, sigmas, 0)
    const b = await run(sampleDpmpp2sAncestral, sigmas, 0)
    expect(a.draws).toBe(0)
    expect(maxAbsDiff(a.x, b.x)).toBeLessThan(1e-5)
  })

  it('a constant data prediction is integrated exactly: x = c + (x0 - c) sigma / sigma0 (eta = 0)', async () => {
    const sigmas = exponential(10, 0.03, 14.6)
    for (const f of [sampleDpmppSde, sampleDpmpp2mSde, sampleDpmpp2mSdeHeun, sampleDpmpp3mSde]) {
      const seen: number[] = []
      const x0 = new Float32Array([3, -2])
      const out = await f({
        model: async (v) => new Float32Array(v.length).fill(0.5),
        x: x0,
        sigmas,
        eta: 0,
        noise: () => new Float32Array(2),
        callback: (s) => void seen.push(s.x[0]!),
      })
      for (let i = 0; i < seen.length - 1; i++)
        expect(seen[i]!).toBeCloseTo(0.5 + (3 - 0.5) * (sigmas[i + 1]! / sigmas[0]!), 4)
      expect(Array.from(out)).toEqual([0.5, 0.5])
    }
  })

  it('noise keeps the marginal: with denoised = 0, std(x) follows sigma at every step (eta = 1)', async () => {
    const sigmas = exponential(6, 0.5, 14.6)
    for (const f of [sampleDpmppSde, sampleDpmpp2mSde, sampleDpmpp3mSde]) {
      const seen: Float32Array[] = []
      await f({
        model: async (v) => new Float32Array(v.length),
        x: start(3, sigmas[0]!),
        sigmas,
        eta: 1,
        noise: (() => {
          const g = new TorchCpuGenerator(11)
          return () => g.randn([N])
        })(),
        callback: (s) => void seen.push(s.x),
      })
      for (let i = 0; i < seen.length - 1; i++) {
        const x = seen[i]!
        const std = Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length)
        expect(std / sigmas[i + 1]!).toBeGreaterThan(0.95)
        expect(std / sigmas[i + 1]!).toBeLessThan(1.05)
      }
    }
  })

  it('2M SDE step = (sigma_n / sigma) e^(-eta h) x + (1 - e^(-h - eta h)) denoised + sigma_n sqrt(1 - e^(-2 eta h)) z', async () => {
    const sigmas = new Float64Array([4, 2, 0])
    const z = 0.7
    const x = await sampleDpmpp2mSde({
      model: async (v) => new Float32Array(v.length).fill(v[0]! > 100 ? 0 : 1.5),
      x: new Float32Array([4]),
      sigmas,
      eta: 1,
      noise: () => new Float32Array([z]),
      callback: (s) => {
        if (s.i !== 0) return
        const h = Math.log(4 / 2)
        const want =
          (2 / 4) * Math.exp(-h) * 4 + (1 - Math.exp(-2 * h)) * 1.5 + 2 * Math.sqrt(1 - Math.exp(-2 * h)) * z
        expect(s.x[0]).toBeCloseTo(want, 5)
      },
    })
    expect(x[0]).toBeCloseTo(1.5, 6) // the last step returns denoised
  })

  it('draws: DPM++ SDE two per step, 2M / 3M SDE one per step, none on the step to 0', async () => {
    const sigmas = karras(5, 0.0292, 14.6146)
    expect((await run(sampleDpmppSde, sigmas, 1)).draws).toBe(8)
    expect((await run(sampleDpmpp2mSde, sigmas, 1)).draws).toBe(4)
    expect((await run(sampleDpmpp3mSde, sigmas, 1)).draws).toBe(4)
    // same seeds, same result (deterministic per-step noise)
    expect(
      maxAbsDiff((await run(sampleDpmpp3mSde, sigmas, 1)).x, (await run(sampleDpmpp3mSde, sigmas, 1)).x),
    ).toBe(0)
  })

  it('registry: A1111 names, defaults and discard rules (A1111 discards for 3M SDE, ComfyUI does not)', () => {
    expect(findKSampler('DPM++ SDE')).toMatchObject({
      defaultSchedule: 'karras',
      secondOrder: true,
      sde: true,
    })
    expect(findKSampler('dpmpp_2m_sde_gpu')).toMatchObject({
      name: 'DPM++ 2M SDE',
      defaultSchedule: 'exponential',
    })
    expect(findKSampler('DPM++ 3M SDE')).toMatchObject({ discardPenultimate: true, comfyDiscard: false })
    expect(splitSamplerName('DPM++ 2M SDE Karras')).toEqual({ sampler: 'DPM++ 2M SDE', schedule: 'Karras' })
    expect(splitSamplerName('DPM++ SDE Karras')).toEqual({ sampler: 'DPM++ SDE', schedule: 'Automatic' })
    const p = planSampling({ sampler: 'DPM++ 3M SDE', convention: 'a1111', steps: 4, table })
    expect(p.resolvedSchedule).toBe('exponential')
    // schedule for 5 steps with the penultimate sigma dropped: still 5 values ending in 0
    expect(p.sigmas!.length).toBe(5)
    const e5 = a1111Schedule('exponential', table, 5)
    expect(p.sigmas![3]).toBeCloseTo(e5[3]!, 6)
    const c = planSampling({
      sampler: 'dpmpp_3m_sde',
      schedule: 'karras',
      convention: 'comfy',
      steps: 4,
      table,
    })
    expect(c.sigmas!.length).toBe(5)
    expect(a1111StepMultiplier('DPM++ SDE Karras')).toBe(2)
  })
})

describe('ComfyUI sampler_name / scheduler mapping', () => {
  it('covers every ComfyUI core sampler; each mapped one runs here, each unsupported one says why', () => {
    const names = COMFY_SAMPLERS.map((e) => e.comfy)
    expect(new Set(names).size).toBe(names.length)
    expect(names.length).toBe(42)
    for (const n of [
      'dpmpp_2m',
      'euler_ancestral',
      'dpmpp_2m_sde_gpu',
      'uni_pc_bh2',
      'ddim',
      'sa_solver_pece',
    ])
      expect(names).toContain(n)
    for (const e of COMFY_SAMPLERS) {
      if (e.sampler) expect(findKSampler(e.sampler)?.name, e.comfy).toBe(e.sampler)
      else expect(e.note, e.comfy).toBeTruthy()
      if (e.match === 'approx') expect(e.note, e.comfy).toBeTruthy()
    }
    for (const k of COMFY_SCHEDULES) {
      const label = COMFY_SCHEDULER_LABELS[k]
      if (label) expect(scheduleKey(label), k).toBeDefined()
    }
  })

  it('maps names and reports what does not map', () => {
    expect(mapComfySampler('dpmpp_2m', 'karras')).toEqual({
      sampler: 'DPM++ 2M',
      scheduleType: 'Karras',
      comfyScheduler: 'karras',
      match: 'exact',
      notes: [],
    })
    const sde = mapComfySampler('dpmpp_2m_sde_gpu', 'exponential')
    expect(sde).toMatchObject({ sampler: 'DPM++ 2M SDE', match: 'approx' })
    expect(sde.notes[0]).toMatch(/BrownianTree/)
    expect(mapComfySampler('euler', 'linear_quadratic')).toMatchObject({
      sampler: 'Euler',
      comfyScheduler: 'linear_quadratic',
      match: 'approx',
    })
    const cfgpp = mapComfySampler('euler_cfg_pp', 'normal')
    expect(cfgpp.sampler).toBeUndefined()
    expect(cfgpp.match).toBe('unsupported')
    expect(cfgpp.notes.join()).toMatch(/CFG\+\+/)
    expect(mapComfySampler('my_custom_sampler', 'align_your_steps').notes).toEqual([
      'ComfyUI sampler "my_custom_sampler" is not a ComfyUI core sampler',
      'ComfyUI scheduler "align_your_steps" is not supported',
    ])
    // the mapped pair plans with the ComfyUI convention as named
    const m = mapComfySampler('dpmpp_3m_sde', 'sgm_uniform')
    const plan = planSampling({
      sampler: m.sampler!,
      schedule: m.comfyScheduler,
      convention: 'comfy',
      steps: 6,
      table: comfyTable(),
    })
    expect(plan.resolvedSchedule).toBe('sgm_uniform')
    expect(plan.stepsRun).toBe(6)
  })
})
