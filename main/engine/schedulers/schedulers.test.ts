/** Behaviour that the oracle case does not cover: registry, config, eta > 0, DPM++ 2M without Karras, errors. */
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { maxAbsDiff } from '../reference/tolerance'
import { repoRoot } from '../../platform/paths'
import { TorchCpuGenerator } from '../random'
import type { BaseScheduler } from './base'
import { SD15_SCHEDULER_CONFIG, parseSchedulerConfig } from './config'
import { fmaf, npInterp, roundHalfEven, torchLinspaceF32 } from './math'
import { createScheduler, nameForOracleKey, oracleKeyFor, schedulerInfo, schedulerNames } from './registry'

const rnd = (seed: number, n = 64): Float32Array => new TorchCpuGenerator(seed).randn([n])

describe('registry', () => {
  it('lists A1111 names and maps oracle keys both ways', () => {
    const names = schedulerNames()
    for (const n of ['DDIM', 'Euler', 'Euler a', 'LMS', 'DPM++ 2M', 'DPM++ 2M Karras', 'PLMS']) {
      expect(names).toContain(n)
    }
    const keys: Record<string, string> = {
      ddim: 'DDIM',
      euler: 'Euler',
      euler_ancestral: 'Euler a',
      dpmpp_2m_karras: 'DPM++ 2M Karras',
      lms: 'LMS',
      pndm: 'PLMS',
    }
    for (const [k, n] of Object.entries(keys)) {
      expect(nameForOracleKey(k)).toBe(n)
      expect(oracleKeyFor(n)).toBe(k)
      expect(createScheduler(k).name).toBe(n)
      expect(schedulerInfo(n)?.oracleVerified).toBe(true)
    }
    expect(createScheduler('PNDM').name).toBe('PLMS')
    expect(createScheduler('euler a').name).toBe('Euler a')
    expect(schedulerInfo('DPM++ 2M')?.oracleVerified).toBe(false)
    expect(() => createScheduler('Heun++')).toThrow(/unknown sampler "Heun\+\+".*DDIM/)
  })

  it('every registered scheduler runs a full txt2img loop to finite values', () => {
    for (const name of schedulerNames()) {
      const s = createScheduler(name)
      s.setTimesteps(12)
      const gen = new TorchCpuGenerator(5)
      let x: Float32Array = gen.randn([64]).map((v) => v * s.initNoiseSigma)
      for (const t of s.timesteps) {
        const eps = s.scaleModelInput(x, t).map((v) => 0.5 * v)
        x = s.step(eps, t, x, () => gen.randn([64]))
      }
      expect(x.every(Number.isFinite), name).toBe(true)
    }
  })
})

describe('config', () => {
  it('reads a diffusers scheduler_config.json and ignores unknown keys', () => {
    const cfg = parseSchedulerConfig({
      _class_name: 'PNDMScheduler',
      steps_offset: 0,
      timestep_spacing: 'trailing',
    })
    expect(cfg.steps_offset).toBe(0)
    expect(cfg.timestep_spacing).toBe('trailing')
    expect(cfg.beta_schedule).toBe('scaled_linear')
    expect(() => parseSchedulerConfig({ beta_schedule: 'cosine' })).toThrow(/"beta_schedule" must be/)
    expect(() => parseSchedulerConfig({ num_train_timesteps: '1000' })).toThrow(/num_train_timesteps/)
    expect(() => parseSchedulerConfig([])).toThrow(/JSON object/)
    expect(() => parseSchedulerConfig({ thresholding: true })).toThrow(/thresholding/)
  })

  it("a config's timestep_spacing overrides each class default, as from_config does", () => {
    const file = path.resolve(
      repoRoot(),
      '../shared/oracle/tiny-sd15-diffusers/scheduler/scheduler_config.json',
    )
    const raw: unknown = fs.existsSync(file)
      ? JSON.parse(fs.readFileSync(file, 'utf8'))
      : { ...SD15_SCHEDULER_CONFIG, timestep_spacing: 'leading' }
    const e = createScheduler('Euler', raw)
    e.setTimesteps(20)
    expect(e.timesteps[0]).toBe(951)
    expect(e.timesteps[19]).toBe(1)
    // 'leading' Euler starts from sqrt(sigma_max^2 + 1)
    expect(e.initNoiseSigma).toBeCloseTo(Math.sqrt(e.sigmas![0]! ** 2 + 1), 5)
    const d = createScheduler('Euler')
    d.setTimesteps(20)
    expect(d.timesteps[0]).toBe(999)
    expect(d.timesteps[19]).toBe(0)
  })

  it('supports linear, cosine and trained betas and v-prediction', () => {
    for (const c of [
      { beta_schedule: 'linear', beta_start: 0.0001, beta_end: 0.02 },
      { beta_schedule: 'squaredcos_cap_v2' },
      { trained_betas: Array.from({ length: 1000 }, (_, i) => 0.0001 + i * 1e-5) },
      { prediction_type: 'v_prediction' },
    ]) {
      for (const name of ['DDIM', 'Euler', 'DPM++ 2M Karras', 'PLMS', 'LMS']) {
        const s = createScheduler(name, c)
        s.setTimesteps(10)
        let x: Float32Array = rnd(1).map((v) => v * s.initNoiseSigma)
        for (const t of s.timesteps) x = s.step(rnd(2), t, x)
        expect(x.every(Number.isFinite), `${name} ${JSON.stringify(c).slice(0, 40)}`).toBe(true)
      }
    }
    expect(() => createScheduler('DDIM', { trained_betas: [0.1, 0.2] })).toThrow(/trained_betas has 2 values/)
  })
})

describe('numerics helpers', () => {
  it('roundHalfEven, npInterp, fmaf, torch linspace', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 2, 3])
    expect(npInterp(1.5, [0, 1, 2], [0, 10, 30])).toBe(20)
    expect(npInterp(-1, [0, 1], [5, 6])).toBe(5)
    expect(npInterp(7, [0, 1], [5, 6])).toBe(6)
    // fmaf rounds once: a*a = 1 + 2^-11 + 2^-24 keeps its low bit inside the fused operation
    const a = Math.fround(1 + 2 ** -12)
    expect(fmaf(a, a, -Math.fround(a * a))).toBe(2 ** -24)
    const l = torchLinspaceF32(0, 1, 5)
    expect(Array.from(l)).toEqual([0, 0.25, 0.5, 0.75, 1])
  })
})

describe('DDIM with eta > 0', () => {
  it('adds std_dev_t * noise and matches the closed form', () => {
    const eta = 0.7
    const s = createScheduler('DDIM', { eta }) as BaseScheduler
    s.setTimesteps(10)
    const t = s.timesteps[2]!
    const prev = t - 100
    const x = rnd(3)
    const eps = rnd(4)
    const z = rnd(5)
    let draws = 0
    const out = s.step(eps, t, x, () => (draws++, z))
    expect(draws).toBe(1)
    const a = s.alphasCumprod[t]!
    const ap = s.alphasCumprod[prev]!
    const variance = ((1 - ap) / (1 - a)) * (1 - a / ap)
    const std = eta * Math.sqrt(variance)
    const want = Array.from(x, (xi, i) => {
      const x0 = (xi - Math.sqrt(1 - a) * eps[i]!) / Math.sqrt(a)
      return Math.sqrt(ap) * x0 + Math.sqrt(1 - ap - std * std) * eps[i]! + std * z[i]!
    })
    expect(maxAbsDiff(out, want)).toBeLessThan(2e-5)
    expect(() => s.step(eps, t, x)).toThrow(/noise source when eta > 0/)
    // eta = 0 draws nothing
    const d0 = createScheduler('DDIM')
    d0.setTimesteps(10)
    d0.step(eps, t, x, () => {
      throw new Error('drew noise')
    })
  })
})

describe('DPM++ 2M (no Karras)', () => {
  it('uses linspace timesteps and the DPM-Solver++ first/second order updates', () => {
    const s = createScheduler('DPM++ 2M') as BaseScheduler
    s.setTimesteps(20)
    const ts = Array.from(s.timesteps)
    expect(ts.length).toBe(20)
    expect(ts[0]).toBe(999)
    for (let i = 1; i < 20; i++) {
      expect(Number.isInteger(ts[i])).toBe(true)
      expect(ts[i]!).toBeLessThan(ts[i - 1]!)
    }
    expect(ts[19]).toBe(50)
    const ac = s.alphasCumprod
    const al = (t: number): number => Math.sqrt(ac[t]!)
    const sg = (t: number): number => Math.sqrt(1 - ac[t]!)
    const lam = (t: number): number => Math.log(al(t)) - Math.log(sg(t))
    const x = rnd(6)
    const e1 = rnd(7)
    const e2 = rnd(8)
    // step 1 (first order) is exactly DDIM: sqrt(a') x0 + sqrt(1 - a') eps
    const [t0, t1, t2] = [ts[0]!, ts[1]!, ts[2]!]
    const x1 = s.step(e1, t0, x)
    const x0a = Array.from(x, (v, i) => (v - sg(t0) * e1[i]!) / al(t0))
    const want1 = x0a.map((v, i) => al(t1) * v + sg(t1) * e1[i]!)
    expect(maxAbsDiff(x1, want1)).toBeLessThan(1e-5)
    // step 2 (second order, midpoint)
    const x2 = s.step(e2, t1, x1)
    const x0b = Array.from(x1, (v, i) => (v - sg(t1) * e2[i]!) / al(t1))
    const h = lam(t2) - lam(t1)
    const r0 = (lam(t1) - lam(t0)) / h
    const want2 = x0b.map((m0, i) => {
      const d1 = (m0 - x0a[i]!) / r0
      const A = al(t2) * (Math.exp(-h) - 1)
      return (sg(t2) / sg(t1)) * x1[i]! - A * m0 - 0.5 * A * d1
    })
    expect(maxAbsDiff(x2, want2)).toBeLessThan(1e-5)
  })

  it('SDE variant draws one noise tensor per step', () => {
    const s = createScheduler('DPM++ 2M SDE Karras')
    s.setTimesteps(8)
    let draws = 0
    let x = rnd(9)
    for (const t of s.timesteps) x = s.step(rnd(10), t, x, () => (draws++, rnd(11 + draws)))
    expect(draws).toBe(8)
    expect(() => s.step(rnd(1), s.timesteps[0]!, x)).toThrow(/noise source/)
  })
})

describe('LMS Karras', () => {
  it('has Karras sigmas from sigma_max to sigma_min, a final 0 and fractional timesteps', () => {
    const s = createScheduler('LMS Karras')
    s.setTimesteps(15)
    const sig = s.sigmas!
    expect(sig.length).toBe(16)
    expect(sig[0]).toBeCloseTo(14.614642, 4)
    expect(sig[14]).toBeCloseTo(0.0291675, 6)
    expect(sig[15]).toBe(0)
    expect(s.timesteps[0]).toBeCloseTo(999, 3)
    expect(s.timesteps.some((t) => !Number.isInteger(t))).toBe(true)
  })
})

describe('add_noise and img2img truncation', () => {
  it('adds noise by alphas_cumprod or by sigma', () => {
    const x0 = rnd(20)
    const n = rnd(21)
    const d = createScheduler('DDIM') as BaseScheduler
    d.setTimesteps(10)
    const a = d.alphasCumprod[501]!
    const want = Array.from(x0, (v, i) => Math.sqrt(a) * v + Math.sqrt(1 - a) * n[i]!)
    expect(maxAbsDiff(d.addNoise(x0, n, 501), want)).toBeLessThan(1e-6)
    expect(() => d.addNoise(x0, n, 2.5)).toThrow(/not an integer training timestep/)
    const e = createScheduler('Euler')
    const ts = e.img2imgTimesteps(10, 0.6)
    const sigma = e.sigmas![4]!
    expect(
      maxAbsDiff(
        e.addNoise(x0, n, ts[0]!),
        Array.from(x0, (v, i) => v + sigma * n[i]!),
      ),
    ).toBeLessThan(1e-6)
    expect(() => e.addNoise(x0, n, 500)).toThrow(/timestep 500 is not in the current schedule/)
  })

  it('strength 1 keeps every step, strength 0 none; PLMS keeps its repeated step', () => {
    const e = createScheduler('Euler')
    expect(e.img2imgTimesteps(10, 1).length).toBe(10)
    expect(e.img2imgTimesteps(10, 0).length).toBe(0)
    const p = createScheduler('PLMS')
    expect(p.img2imgTimesteps(10, 1).length).toBe(11)
    expect(() => p.img2imgTimesteps(10, 1.5)).toThrow(/strength/)
  })
})

describe('errors', () => {
  it('are specific', () => {
    const s = createScheduler('Euler')
    expect(() => s.step(rnd(1), 999, rnd(2))).toThrow(/call setTimesteps\(\) before step\(\)/)
    s.setTimesteps(10)
    expect(() => s.step(rnd(1, 8), 999, rnd(2))).toThrow(/sizes differ \(8 vs 64/)
    expect(() => s.setTimesteps(0)).toThrow(/positive integer/)
    expect(() => s.setTimesteps(1001)).toThrow(/more than the model's 1000/)
    const a = createScheduler('Euler a')
    a.setTimesteps(5)
    expect(() => a.step(rnd(1), a.timesteps[0]!, rnd(2))).toThrow(/needs a noise source/)
  })
})
