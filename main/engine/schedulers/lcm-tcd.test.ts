import { describe, expect, it } from 'vitest'
import { createScheduler } from './registry'
import { consistencyTimesteps, LCMScheduler, lcmScalings, TCDScheduler } from './lcm-tcd'
import { parseSchedulerConfig } from './config'

const cfg = parseSchedulerConfig(undefined)

describe('LCM / TCD timesteps (diffusers LCMScheduler.set_timesteps)', () => {
  it('picks n of the 50 original timesteps 19, 39, ..., 999 from the top', () => {
    expect(Array.from(consistencyTimesteps(4, 1000))).toEqual([999, 759, 499, 259])
    expect(Array.from(consistencyTimesteps(1, 1000))).toEqual([999])
    expect(Array.from(consistencyTimesteps(8, 1000))).toEqual([999, 879, 759, 639, 499, 379, 259, 139])
    // img2img strength 0.5 keeps the lower 25 original timesteps
    expect(Array.from(consistencyTimesteps(4, 1000, 50, 0.5))).toEqual([499, 379, 259, 139])
    expect(() => consistencyTimesteps(51, 1000)).toThrow(/more than the 50/)
  })

  it('c_skip and c_out follow the boundary condition (sigma_data 0.5, timestep scaling 10)', () => {
    const { cSkip, cOut } = lcmScalings(999)
    expect(cSkip).toBeCloseTo(0.25 / (9990 ** 2 + 0.25), 15)
    expect(cOut).toBeCloseTo(9990 / Math.sqrt(9990 ** 2 + 0.25), 12)
    expect(lcmScalings(0)).toEqual({ cSkip: 1, cOut: 0 })
  })
})

describe('LCMScheduler.step', () => {
  it('x0 = (x - sqrt(1 - a) eps) / sqrt(a); denoised = c_out x0 + c_skip x; renoised to the next timestep', () => {
    const s = new LCMScheduler(cfg)
    s.setTimesteps(2)
    const [t0, t1] = Array.from(s.timesteps) as [number, number]
    const a0 = s.alphasCumprod[t0]!
    const a1 = s.alphasCumprod[t1]!
    const x = Float32Array.from([1, -2])
    const eps = Float32Array.from([0.5, 0.25])
    const z = Float32Array.from([0.1, -0.3])
    let draws = 0
    const out = s.step(eps, t0, x, () => {
      draws++
      return z
    })
    const { cSkip, cOut } = lcmScalings(t0)
    for (let k = 0; k < 2; k++) {
      const x0 = (x[k]! - Math.sqrt(1 - a0) * eps[k]!) / Math.sqrt(a0)
      const den = cOut * x0 + cSkip * x[k]!
      expect(out[k]).toBeCloseTo(Math.sqrt(a1) * den + Math.sqrt(1 - a1) * z[k]!, 4)
    }
    // the last step returns the denoised prediction and draws nothing
    const last = s.step(eps, t1, out, () => {
      draws++
      return z
    })
    const c = lcmScalings(t1)
    const x0 = (out[0]! - Math.sqrt(1 - a1) * eps[0]!) / Math.sqrt(a1)
    expect(last[0]).toBeCloseTo(c.cOut * x0 + c.cSkip * out[0]!, 4)
    expect(draws).toBe(1)
  })
})

describe('TCDScheduler.step', () => {
  it('gamma 0 is deterministic DDIM to the next timestep; gamma 1 predicts x0 then renoises from s = 0', () => {
    const x = Float32Array.from([0.7])
    const eps = Float32Array.from([-0.4])
    const ddim = new TCDScheduler(cfg, 'TCD', 0)
    ddim.setTimesteps(4)
    const [t0, t1] = Array.from(ddim.timesteps) as [number, number]
    const a0 = ddim.alphasCumprod[t0]!
    const a1 = ddim.alphasCumprod[t1]!
    const x0 = (0.7 - Math.sqrt(1 - a0) * -0.4) / Math.sqrt(a0)
    expect(ddim.step(eps, t0, x, () => new Float32Array(1))[0]).toBeCloseTo(
      Math.sqrt(a1) * x0 + Math.sqrt(1 - a1) * -0.4,
      4,
    )
    const g1 = new TCDScheduler(cfg, 'TCD', 1)
    g1.setTimesteps(4)
    const z = Float32Array.from([0.2])
    const as = g1.alphasCumprod[0]!
    const noised = Math.sqrt(as) * x0 + Math.sqrt(1 - as) * -0.4
    expect(g1.step(eps, t0, x, () => z)[0]).toBeCloseTo(
      Math.sqrt(a1 / as) * noised + Math.sqrt(1 - a1 / as) * 0.2,
      4,
    )
  })

  it('default gamma 0.3: s = floor(0.7 t_prev); the registry builds it by name', () => {
    const s = createScheduler('TCD') as TCDScheduler
    expect(s.gamma).toBe(0.3)
    s.setTimesteps(4)
    expect(Array.from(s.timesteps)).toEqual([999, 759, 499, 259])
    const x = Float32Array.from([0.5])
    const eps = Float32Array.from([0.1])
    const z = Float32Array.from([1])
    const t0 = 999
    const tp = 759
    const sIdx = Math.floor(0.7 * tp)
    const a0 = s.alphasCumprod[t0]!
    const ap = s.alphasCumprod[tp]!
    const as = s.alphasCumprod[sIdx]!
    const x0 = (0.5 - Math.sqrt(1 - a0) * 0.1) / Math.sqrt(a0)
    const noised = Math.sqrt(as) * x0 + Math.sqrt(1 - as) * 0.1
    expect(s.step(eps, t0, x, () => z)[0]).toBeCloseTo(
      Math.sqrt(ap / as) * noised + Math.sqrt(1 - ap / as),
      4,
    )
    expect(createScheduler('LCM')).toBeInstanceOf(LCMScheduler)
  })
})
