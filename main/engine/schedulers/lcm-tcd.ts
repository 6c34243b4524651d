import { BaseScheduler } from './base'
import { assertSameLength, f32, npLinspace } from './math'
import type { NoiseFn, SchedulerConfig } from './types'

/**
 * diffusers' LCMScheduler and TCDScheduler (few-step consistency models). Both pick `n` timesteps out
 * of the 50 "original" LCM timesteps k - 1, 2k - 1, ..., 999 (k = 1000 / 50), walked from the top at
 * floor(linspace(0, 50, n, endpoint=False)) indices; strength < 1 keeps only the lower part of the 50.
 */
export function consistencyTimesteps(
  n: number,
  trainSteps: number,
  originalSteps = 50,
  strength = 1,
): Float64Array {
  const k = Math.floor(trainSteps / originalSteps)
  const count = Math.trunc(originalSteps * strength)
  if (count < 1) throw new Error(`strength ${strength} leaves no LCM timestep`)
  const origin: number[] = []
  for (let i = count; i >= 1; i--) origin.push(i * k - 1)
  if (n > origin.length)
    throw new Error(`${n} steps is more than the ${origin.length} LCM timesteps this strength leaves`)
  const idx = npLinspace(0, origin.length, n + 1).subarray(0, n)
  return Float64Array.from(idx, (v) => origin[Math.floor(v)]!)
}

/** LCM's boundary-condition scalings: c_skip, c_out at timestep t (timestep_scaling 10, sigma_data 0.5). */
export function lcmScalings(t: number, timestepScaling = 10): { cSkip: number; cOut: number } {
  const s = t * timestepScaling
  return { cSkip: 0.25 / (s * s + 0.25), cOut: s / Math.sqrt(s * s + 0.25) }
}

abstract class ConsistencyScheduler extends BaseScheduler {
  protected stepIndex = 0

  setTimesteps(n: number): void {
    this.setTimestepsWithStrength(n, 1)
  }

  protected setTimestepsWithStrength(n: number, strength: number): void {
    this.checkSteps(n)
    this.numInferenceSteps = n
    this.timesteps = consistencyTimesteps(n, this.config.num_train_timesteps, 50, strength)
    this.stepIndex = 0
    this.predOriginalSample = undefined
  }

  /** diffusers' LCM / TCD img2img: the strength cuts the original 50 timesteps, then n are picked. */
  override img2imgTimesteps(n: number, strength: number): Float64Array {
    if (!(strength > 0 && strength <= 1))
      throw new Error(`img2img strength must be in (0, 1] (got ${strength})`)
    this.setTimestepsWithStrength(n, strength)
    return this.timesteps.slice()
  }

  protected x0(eps: Float32Array, x: Float32Array, t: number): Float32Array {
    if (this.config.prediction_type !== 'epsilon')
      throw new Error(`${this.name}: only epsilon-prediction models are supported`)
    const a = this.alphasCumprod[this.trainIndex(t)]!
    const sa = f32(Math.sqrt(a))
    const sb = f32(Math.sqrt(f32(1 - a)))
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) out[k] = f32(x[k]! - f32(sb * eps[k]!)) / sa
    return out
  }

  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    return this.addNoiseByAlpha(x0, noise, t)
  }
}

/** diffusers LCMScheduler: x0 -> c_out * x0 + c_skip * x, re-noised to the next timestep (fresh noise). */
export class LCMScheduler extends ConsistencyScheduler {
  readonly name: string

  constructor(config: SchedulerConfig, name = 'LCM') {
    super(config)
    this.name = name
  }

  step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseFn): Float32Array {
    assertSameLength(`${this.name}.step`, eps, x)
    this.requireTimesteps()
    const i = this.indexOf(t)
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1]! : t
    const { cSkip, cOut } = lcmScalings(t)
    const x0 = this.x0(eps, x, t)
    const den = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) den[k] = f32(f32(cOut) * x0[k]!) + f32(f32(cSkip) * x[k]!)
    this.predOriginalSample = den
    this.stepIndex = i + 1
    if (i === this.numInferenceSteps - 1) return den
    if (!noise) throw new Error(`${this.name}: step() needs a noise source`)
    const z = noise()
    const ap = prevT >= 0 ? this.alphasCumprod[prevT]! : this.finalAlphaCumprod
    const sa = f32(Math.sqrt(ap))
    const sb = f32(Math.sqrt(f32(1 - ap)))
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) out[k] = f32(sa * den[k]!) + f32(sb * z[k]!)
    return out
  }
}

/**
 * diffusers TCDScheduler (Trajectory Consistency Distillation) with gamma (its `eta`, default 0.3): x0 and
 * eps are mapped to s = floor((1 - gamma) * t_prev), then noised forward to t_prev with fresh noise.
 */
export class TCDScheduler extends ConsistencyScheduler {
  readonly name: string
  readonly gamma: number

  constructor(config: SchedulerConfig, name = 'TCD', gamma = 0.3) {
    super(config)
    this.name = name
    if (!(gamma >= 0 && gamma <= 1)) throw new Error(`${name}: gamma must be in [0, 1] (got ${gamma})`)
    this.gamma = gamma
  }

  step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseFn): Float32Array {
    assertSameLength(`${this.name}.step`, eps, x)
    this.requireTimesteps()
    const i = this.indexOf(t)
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1]! : 0
    const s = Math.floor((1 - this.gamma) * prevT)
    const x0 = this.x0(eps, x, t)
    const as = this.alphasCumprod[s]!
    const sas = f32(Math.sqrt(as))
    const sbs = f32(Math.sqrt(f32(1 - as)))
    const noised = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) noised[k] = f32(sas * x0[k]!) + f32(sbs * eps[k]!)
    this.predOriginalSample = x0
    this.stepIndex = i + 1
    if (this.gamma === 0 || i === this.numInferenceSteps - 1) return noised
    if (!noise) throw new Error(`${this.name}: step() needs a noise source when gamma > 0`)
    const z = noise()
    const ap = this.alphasCumprod[prevT]!
    const r = f32(ap / as)
    const c1 = f32(Math.sqrt(r))
    const c2 = f32(Math.sqrt(f32(1 - r)))
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) out[k] = f32(c1 * noised[k]!) + f32(c2 * z[k]!)
    return out
  }
}
