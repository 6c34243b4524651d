import { BaseScheduler, spacingError } from './base'
import {
  assertSameLength,
  f32,
  karrasSigmas,
  logF32,
  npArange,
  npInterp,
  npLinspace,
  roundHalfEven,
  sigmaToT,
  trainSigmas,
} from './math'
import type { SchedulerConfig, TimestepSpacing } from './types'

/**
 * Timesteps and sigmas of the k-diffusion style schedulers (Euler, Euler a, LMS) as diffusers
 * 0.21.4 builds them in set_timesteps: float32 timesteps from numpy, sigmas interpolated in float64
 * from the float32 training sigmas (np.interp), optionally Karras-respaced with timesteps mapped
 * back through _sigma_to_t (fractional), then a trailing 0 appended and everything cast to float32.
 */
export function sigmaSchedule(
  name: string,
  cfg: SchedulerConfig,
  alphasCumprod: Float32Array,
  n: number,
  spacing: TimestepSpacing,
  karras: boolean,
): { timesteps: Float64Array; sigmas: Float64Array } {
  const T = cfg.num_train_timesteps
  let ts: Float64Array
  if (spacing === 'linspace') {
    ts = npLinspace(0, T - 1, n)
      .map(f32)
      .reverse()
  } else if (spacing === 'leading') {
    const ratio = Math.floor(T / n)
    ts = new Float64Array(n)
    for (let i = 0; i < n; i++) ts[n - 1 - i] = f32(f32(roundHalfEven(i * ratio)) + cfg.steps_offset)
  } else if (spacing === 'trailing') {
    ts = npArange(T, 0, -(T / n)).map((v) => f32(f32(roundHalfEven(v)) - 1))
  } else {
    throw spacingError(name, spacing)
  }
  const train = trainSigmas(alphasCumprod)
  const xp = new Float64Array(T).map((_, i) => i)
  let sig: Float64Array = ts.map((t) => npInterp(t, xp, train))
  if (cfg.interpolation_type !== 'linear') {
    throw new Error(`${name}: interpolation_type "${cfg.interpolation_type}" is not supported`)
  }
  if (karras) {
    sig = karrasSigmas(sig[0]!, sig[sig.length - 1]!, n)
    const logSigmas = logF32(train)
    ts = sig.map((s) => sigmaToT(s, logSigmas))
  }
  const sigmas = new Float64Array(n + 1)
  for (let i = 0; i < n; i++) sigmas[i] = f32(sig[i]!)
  sigmas[n] = 0
  return { timesteps: ts, sigmas }
}

/** Shared parts of Euler / Euler a / LMS: sigma lookup, input scaling, add_noise by sigma. */
export abstract class SigmaScheduler extends BaseScheduler {
  sigmas: Float64Array = new Float64Array(0)
  protected abstract readonly spacingDefault: TimestepSpacing
  protected abstract readonly karras: boolean

  protected get spacing(): TimestepSpacing {
    return this.config.timestep_spacing ?? this.spacingDefault
  }

  protected buildSchedule(n: number): void {
    this.checkSteps(n)
    const s = sigmaSchedule(this.name, this.config, this.alphasCumprod, n, this.spacing, this.karras)
    this.timesteps = s.timesteps
    this.sigmas = s.sigmas
    this.numInferenceSteps = n
    this.predOriginalSample = undefined
  }

  override get initNoiseSigma(): number {
    let max = 0
    for (const s of this.sigmas) max = Math.max(max, s)
    if (this.spacing === 'linspace' || this.spacing === 'trailing') return max
    return f32(Math.sqrt(f32(f32(max * max) + 1)))
  }

  override scaleModelInput(x: Float32Array, t: number): Float32Array {
    const sigma = this.sigmas[this.indexOf(t)]!
    const d = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)))
    const out = new Float32Array(x.length)
    for (let i = 0; i < x.length; i++) out[i] = x[i]! / d
    return out
  }

  /** x0 + noise * sigma(t). */
  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    assertSameLength(`${this.name}.addNoise`, x0, noise)
    const sigma = this.sigmas[this.indexOf(t)]!
    const out = new Float32Array(x0.length)
    for (let i = 0; i < out.length; i++) out[i] = x0[i]! + f32(noise[i]! * sigma)
    return out
  }

  /** pred_original_sample for sigma-parameterised models (diffusers' epsilon / v / sample rules). */
  protected predX0(eps: Float32Array, x: Float32Array, sigma: number): Float32Array {
    const out = new Float32Array(x.length)
    switch (this.config.prediction_type) {
      case 'epsilon':
        for (let i = 0; i < x.length; i++) out[i] = x[i]! - f32(sigma * eps[i]!)
        break
      case 'v_prediction': {
        // model_output * (-sigma / (sigma**2 + 1) ** 0.5) + (sample / (sigma**2 + 1))
        const s2p1 = f32(f32(sigma * sigma) + 1)
        const c = f32(-sigma / f32(Math.sqrt(s2p1)))
        for (let i = 0; i < x.length; i++) out[i] = f32(eps[i]! * c) + f32(x[i]! / s2p1)
        break
      }
      case 'sample':
        out.set(eps)
        break
    }
    return out
  }
}
