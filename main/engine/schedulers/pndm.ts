import { BaseScheduler } from './base'
import { integerTimesteps } from './ddim'
import { assertSameLength, f32 } from './math'
import type { NoiseFn, SchedulerConfig } from './types'

/**
 * diffusers PNDMScheduler with skip_prk_steps (PLMS, SD 1.x's default scheduler). The schedule has
 * n + 1 entries (the second timestep repeats): the first two calls form one Heun-like step.
 */
export class PNDMScheduler extends BaseScheduler {
  readonly name: string
  private ets: Float32Array[] = []
  private counter = 0
  private curSample: Float32Array | undefined

  constructor(config: SchedulerConfig, name = 'PLMS') {
    super(config)
    if (!config.skip_prk_steps) {
      throw new Error(`${name}: only skip_prk_steps = true (PLMS) is supported`)
    }
    this.name = name
  }

  setTimesteps(n: number): void {
    this.checkSteps(n)
    this.numInferenceSteps = n
    const asc = integerTimesteps(this.name, this.config, n, this.config.timestep_spacing ?? 'leading')
    asc.reverse() // diffusers' _timesteps are ascending
    // plms = concat(_t[:-1], _t[-2:-1], _t[-1:])[::-1]
    const m = asc.length
    const plms: number[] = [
      ...asc.slice(0, m - 1),
      ...asc.slice(Math.max(m - 2, 0), m - 1),
      ...asc.slice(m - 1),
    ]
    this.timesteps = Float64Array.from(plms.reverse())
    this.ets = []
    this.counter = 0
    this.curSample = undefined
  }

  step(eps: Float32Array, t: number, x: Float32Array, _noise?: NoiseFn): Float32Array {
    assertSameLength(`${this.name}.step`, eps, x)
    this.requireTimesteps()
    const ratio = Math.floor(this.config.num_train_timesteps / this.numInferenceSteps)
    let timestep = t
    let prevT = t - ratio
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3)
      this.ets.push(eps)
    } else {
      prevT = t
      timestep = t + ratio
    }
    const n = x.length
    let mo: Float32Array
    let sample = x
    const e = this.ets
    const L = e.length
    if (L === 1 && this.counter === 0) {
      mo = eps
      this.curSample = x
    } else if (L === 1 && this.counter === 1) {
      mo = new Float32Array(n)
      const e1 = e[0]!
      for (let k = 0; k < n; k++) mo[k] = f32(eps[k]! + e1[k]!) / 2
      if (!this.curSample) throw new Error(`${this.name}: internal state lost between the first two steps`)
      sample = this.curSample
      this.curSample = undefined
    } else if (L === 2) {
      mo = new Float32Array(n)
      const [a, b] = [e[1]!, e[0]!]
      for (let k = 0; k < n; k++) mo[k] = f32(f32(3 * a[k]!) - b[k]!) / 2
    } else if (L === 3) {
      mo = new Float32Array(n)
      const [a, b, c] = [e[2]!, e[1]!, e[0]!]
      for (let k = 0; k < n; k++) mo[k] = f32(f32(f32(23 * a[k]!) - f32(16 * b[k]!)) + f32(5 * c[k]!)) / 12
    } else {
      mo = new Float32Array(n)
      const [a, b, c, d] = [e[L - 1]!, e[L - 2]!, e[L - 3]!, e[L - 4]!]
      const w = f32(1 / 24)
      for (let k = 0; k < n; k++) {
        const s = f32(f32(f32(f32(55 * a[k]!) - f32(59 * b[k]!)) + f32(37 * c[k]!)) - f32(9 * d[k]!))
        mo[k] = w * s
      }
    }
    const out = this.prevSample(sample, timestep, prevT, mo)
    this.counter++
    return out
  }

  private prevSample(x: Float32Array, t: number, prevT: number, mo: Float32Array): Float32Array {
    this.trainIndex(t)
    const aT = this.alphasCumprod[t]!
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT]! : this.finalAlphaCumprod
    const bT = f32(1 - aT)
    const bPrev = f32(1 - aPrev)
    const n = x.length
    let m = mo
    if (this.config.prediction_type === 'v_prediction') {
      const sa = f32(Math.sqrt(aT))
      const sb = f32(Math.sqrt(bT))
      m = new Float32Array(n)
      for (let k = 0; k < n; k++) m[k] = f32(sa * mo[k]!) + f32(sb * x[k]!)
    } else if (this.config.prediction_type !== 'epsilon') {
      throw new Error(`${this.name}: prediction_type "${this.config.prediction_type}" is not supported`)
    }
    const sampleCoeff = f32(Math.sqrt(f32(aPrev / aT)))
    const denom = f32(f32(aT * f32(Math.sqrt(bPrev))) + f32(Math.sqrt(f32(f32(aT * bT) * aPrev))))
    const diff = f32(aPrev - aT)
    const out = new Float32Array(n)
    for (let k = 0; k < n; k++) out[k] = f32(sampleCoeff * x[k]!) - f32(f32(diff * m[k]!) / denom)
    return out
  }

  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    return this.addNoiseByAlpha(x0, noise, t)
  }
}
