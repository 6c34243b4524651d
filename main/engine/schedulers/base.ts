import { alphasCumprodFromBetas, assertSameLength, betasForAlphaBar, f32, torchLinspaceF32 } from './math'
import type { NoiseFn, Scheduler, SchedulerConfig, TimestepSpacing } from './types'

/** betas as diffusers builds them (float32 tensor). */
export function makeBetas(cfg: SchedulerConfig): Float32Array {
  const n = cfg.num_train_timesteps
  if (cfg.trained_betas) {
    if (cfg.trained_betas.length !== n) {
      throw new Error(`scheduler config: trained_betas has ${cfg.trained_betas.length} values, expected ${n}`)
    }
    return Float32Array.from(cfg.trained_betas)
  }
  switch (cfg.beta_schedule) {
    case 'linear':
      return torchLinspaceF32(cfg.beta_start, cfg.beta_end, n)
    case 'scaled_linear': {
      const r = torchLinspaceF32(Math.sqrt(cfg.beta_start), Math.sqrt(cfg.beta_end), n)
      for (let i = 0; i < n; i++) r[i] = r[i]! * r[i]!
      return r
    }
    case 'squaredcos_cap_v2':
      return betasForAlphaBar(n)
  }
}

/** Common state and the two add_noise flavours; subclasses implement the schedule and step. */
export abstract class BaseScheduler implements Scheduler {
  abstract readonly name: string
  readonly order: number = 1
  readonly config: SchedulerConfig
  readonly betas: Float32Array
  readonly alphasCumprod: Float32Array
  /** alphas_cumprod[0] or 1 (set_alpha_to_one) for the step past the last timestep. */
  readonly finalAlphaCumprod: number
  timesteps: Float64Array = new Float64Array(0)
  predOriginalSample?: Float32Array
  protected numInferenceSteps = 0

  constructor(config: SchedulerConfig) {
    this.config = config
    this.betas = makeBetas(config)
    this.alphasCumprod = alphasCumprodFromBetas(this.betas)
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!
  }

  abstract setTimesteps(n: number): void
  abstract step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseFn): Float32Array
  abstract addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array

  get initNoiseSigma(): number {
    return 1
  }

  scaleModelInput(x: Float32Array, _t: number): Float32Array {
    return x
  }

  img2imgTimesteps(n: number, strength: number): Float64Array {
    if (!(strength >= 0 && strength <= 1))
      throw new Error(`img2img strength must be in [0, 1] (got ${strength})`)
    this.setTimesteps(n)
    const init = Math.min(Math.trunc(n * strength), n)
    const tStart = Math.max(n - init, 0)
    return this.timesteps.slice(tStart * this.order)
  }

  protected checkSteps(n: number): void {
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`${this.name}: number of steps must be a positive integer (got ${n})`)
    if (n > this.config.num_train_timesteps) {
      throw new Error(
        `${this.name}: ${n} steps is more than the model's ${this.config.num_train_timesteps} training timesteps`,
      )
    }
  }

  protected requireTimesteps(): void {
    if (this.timesteps.length === 0) throw new Error(`${this.name}: call setTimesteps() before step()`)
  }

  /** Index of t in the schedule, as diffusers' `(self.timesteps == t).nonzero()`. */
  protected indexOf(t: number): number {
    this.requireTimesteps()
    const i = this.timesteps.indexOf(t)
    if (i < 0) throw new Error(`${this.name}: timestep ${t} is not in the current schedule`)
    return i
  }

  protected trainIndex(t: number): number {
    if (!Number.isInteger(t) || t < 0 || t >= this.config.num_train_timesteps) {
      throw new Error(
        `${this.name}: timestep ${t} is not an integer training timestep in [0, ${this.config.num_train_timesteps - 1}]`,
      )
    }
    return t
  }

  /** sqrt(a_t) * x0 + sqrt(1 - a_t) * noise (DDIM, PNDM, DPM-Solver, UniPC). */
  protected addNoiseByAlpha(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    assertSameLength(`${this.name}.addNoise`, x0, noise)
    const a = this.alphasCumprod[this.trainIndex(t)]!
    const sa = f32(Math.sqrt(a))
    const s1 = f32(Math.sqrt(f32(1 - a)))
    const out = new Float32Array(x0.length)
    for (let i = 0; i < out.length; i++) out[i] = f32(sa * x0[i]!) + f32(s1 * noise[i]!)
    return out
  }
}

/** Timesteps of the 'leading' / 'linspace' / 'trailing' spacings as float64 values (not rounded). */
export function spacingError(name: string, spacing: TimestepSpacing | string): Error {
  return new Error(`${name}: unsupported timestep_spacing "${spacing}"`)
}
