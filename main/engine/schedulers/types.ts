/**
 * One interface for every sampler. Tensors are flat float32 arrays (NCHW, row-major); one timestep
 * applies to the whole batch. The numbers follow diffusers 0.21.4.
 */

/** Draws a fresh N(0,1) tensor of the sample's size (ancestral / stochastic samplers). */
export type NoiseFn = () => Float32Array

export interface Scheduler {
  /** Registry name (A1111 spelling), e.g. 'Euler a'. */
  readonly name: string
  /** diffusers' `scheduler.order` (used by img2img truncation). */
  readonly order: number
  /** Build the schedule for n denoising steps; resets all multistep state. */
  setTimesteps(n: number): void
  /** Timesteps to pass to the UNet, in call order (fractional for sigma schedulers). */
  readonly timesteps: Float64Array
  /** Noise levels, where the scheduler keeps them (values are those diffusers holds). */
  readonly sigmas?: Float64Array
  /** Multiply unit noise by this to get x_T for txt2img. */
  readonly initNoiseSigma: number
  /** The UNet input for timestep t (sigma schedulers divide by sqrt(sigma^2 + 1)). */
  scaleModelInput(x: Float32Array, t: number): Float32Array
  /**
   * One denoising step: model output eps at timestep t for sample x -> previous sample.
   * `noise` is called for every random draw diffusers makes in this step (also when the draw is
   * unused, as in plain Euler, so that a seeded generator stays in step with diffusers).
   */
  step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseFn): Float32Array
  /** Predicted x_0 of the last step, where the scheduler computes one. */
  readonly predOriginalSample?: Float32Array
  /** Noise a clean latent to timestep t (img2img start, inpaint blending). */
  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array
  /**
   * setTimesteps(n), then diffusers' StableDiffusionImg2ImgPipeline.get_timesteps:
   * init = min(int(n * strength), n), tStart = max(n - init, 0), timesteps[tStart * order:].
   */
  img2imgTimesteps(n: number, strength: number): Float64Array
}

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2'
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample'
export type TimestepSpacing = 'linspace' | 'leading' | 'trailing'

/** The diffusers scheduler_config.json fields these schedulers read (after defaults). */
export interface SchedulerConfig {
  num_train_timesteps: number
  beta_start: number
  beta_end: number
  beta_schedule: BetaSchedule
  trained_betas: number[] | null
  prediction_type: PredictionType
  /** undefined = the scheduler class's own default (diffusers' from_config behaviour). */
  timestep_spacing: TimestepSpacing | undefined
  steps_offset: number
  set_alpha_to_one: boolean
  skip_prk_steps: boolean
  clip_sample: boolean
  clip_sample_range: number
  thresholding: boolean
  /** undefined = class default (false; true for the registry's Karras entries). */
  use_karras_sigmas: boolean | undefined
  interpolation_type: 'linear' | 'log_linear'
  solver_order: number
  algorithm_type: 'dpmsolver++' | 'dpmsolver' | 'sde-dpmsolver++' | 'sde-dpmsolver'
  solver_type: 'midpoint' | 'heun'
  lower_order_final: boolean
  lambda_min_clipped: number
  /** UniPC */
  predict_x0: boolean
  disable_corrector: number[]
  /** DDIM's eta (a pipeline argument in diffusers; 0 = deterministic). */
  eta: number
}
