import { BaseScheduler, spacingError } from './base'
import { assertSameLength, f32, npArange, npLinspace, roundHalfEven } from './math'
import type { NoiseFn, SchedulerConfig, TimestepSpacing } from './types'

/** Integer timesteps of DDIM / PNDM style schedules (descending), diffusers 0.21.4. */
export function integerTimesteps(
  name: string,
  cfg: SchedulerConfig,
  n: number,
  spacing: TimestepSpacing,
): Float64Array {
  const T = cfg.num_train_timesteps
  if (spacing === 'linspace')
    return npLinspace(0, T - 1, n)
      .map(roundHalfEven)
      .reverse()
  if (spacing === 'leading') {
    const ratio = Math.floor(T / n)
    const out = new Float64Array(n)
    for (let i = 0; i < n; i++) out[n - 1 - i] = roundHalfEven(i * ratio) + cfg.steps_offset
    return out
  }
  if (spacing === 'trailing') return npArange(T, 0, -(T / n)).map((v) => roundHalfEven(v) - 1)
  throw spacingError(name, spacing)
}

/** diffusers DDIMScheduler; eta from the config (0 = deterministic DDIM). */
export class DDIMScheduler extends BaseScheduler {
  readonly name: string
  readonly eta: number

  constructor(config: SchedulerConfig, name = 'DDIM') {
    super(config)
    this.name = name
    this.eta = config.eta
  }

  setTimesteps(n: number): void {
    this.checkSteps(n)
    this.numInferenceSteps = n
    this.timesteps = integerTimesteps(this.name, this.config, n, this.config.timestep_spacing ?? 'leading')
    this.predOriginalSample = undefined
  }

  private alphaAt(t: number): number {
    return t >= 0 ? this.alphasCumprod[t]! : this.finalAlphaCumprod
  }

  step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseFn): Float32Array {
    assertSameLength(`${this.name}.step`, eps, x)
    this.requireTimesteps()
    this.trainIndex(t)
    const prevT = t - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps)
    const aT = this.alphasCumprod[t]!
    const aPrev = this.alphaAt(prevT)
    const bT = f32(1 - aT)
    const sqA = f32(Math.sqrt(aT))
    const sqB = f32(Math.sqrt(bT))
    const n = x.length
    const x0 = new Float32Array(n)
    const e = new Float32Array(n)
    switch (this.config.prediction_type) {
      case 'epsilon':
        for (let k = 0; k < n; k++) x0[k] = f32(x[k]! - f32(sqB * eps[k]!)) / sqA
        e.set(eps)
        break
      case 'sample':
        x0.set(eps)
        for (let k = 0; k < n; k++) e[k] = f32(x[k]! - f32(sqA * x0[k]!)) / sqB
        break
      case 'v_prediction':
        for (let k = 0; k < n; k++) {
          x0[k] = f32(sqA * x[k]!) - f32(sqB * eps[k]!)
          e[k] = f32(sqA * eps[k]!) + f32(sqB * x[k]!)
        }
        break
    }
    if (this.config.clip_sample) {
      const r = this.config.clip_sample_range
      for (let k = 0; k < n; k++) x0[k] = Math.min(Math.max(x0[k]!, -r), r)
    }
    // _get_variance
    const bPrev = f32(1 - aPrev)
    const variance = f32(f32(bPrev / bT) * f32(1 - f32(aT / aPrev)))
    const std = f32(f32(this.eta) * f32(Math.sqrt(variance)))
    const dirCoef = f32(Math.sqrt(f32(f32(1 - aPrev) - f32(std * std))))
    const sqAPrev = f32(Math.sqrt(aPrev))
    const out = new Float32Array(n)
    for (let k = 0; k < n; k++) out[k] = f32(sqAPrev * x0[k]!) + f32(dirCoef * e[k]!)
    if (this.eta > 0) {
      if (!noise) throw new Error(`${this.name}: step() needs a noise source when eta > 0`)
      const z = noise()
      assertSameLength(`${this.name}.step noise`, z, x)
      for (let k = 0; k < n; k++) out[k] = out[k]! + f32(std * z[k]!)
    }
    this.predOriginalSample = x0
    return out
  }

  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    return this.addNoiseByAlpha(x0, noise, t)
  }
}
