import type { SchedulerConfig } from './types'

/**
 * SD 1.x scheduler settings (the fields of runwayml/stable-diffusion-v1-5 scheduler_config.json).
 * No timestep_spacing: like diffusers' from_config, each scheduler then uses its own default
 * ('leading' for DDIM/PNDM, 'linspace' for Euler, LMS and DPM-Solver).
 */
export const SD15_SCHEDULER_CONFIG: Readonly<SchedulerConfig> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  timestep_spacing: undefined,
  steps_offset: 1,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  clip_sample: false,
  clip_sample_range: 1,
  thresholding: false,
  use_karras_sigmas: undefined,
  interpolation_type: 'linear',
  solver_order: 2,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: true,
  lambda_min_clipped: -Infinity,
  predict_x0: true,
  disable_corrector: [],
  eta: 0,
} satisfies SchedulerConfig)

type Check = (v: unknown) => boolean
const isNum: Check = (v) => typeof v === 'number' && !Number.isNaN(v)
const isInt: Check = (v) => typeof v === 'number' && Number.isInteger(v)
const isBool: Check = (v) => typeof v === 'boolean'
const oneOf =
  (...xs: string[]): Check =>
  (v) =>
    typeof v === 'string' && xs.includes(v)

const FIELDS: Record<keyof SchedulerConfig, [Check, string]> = {
  num_train_timesteps: [(v) => isInt(v) && (v as number) > 1, 'an integer > 1'],
  beta_start: [isNum, 'a number'],
  beta_end: [isNum, 'a number'],
  beta_schedule: [
    oneOf('linear', 'scaled_linear', 'squaredcos_cap_v2'),
    'linear, scaled_linear or squaredcos_cap_v2',
  ],
  trained_betas: [(v) => v === null || (Array.isArray(v) && v.every(isNum)), 'null or a list of numbers'],
  prediction_type: [oneOf('epsilon', 'v_prediction', 'sample'), 'epsilon, v_prediction or sample'],
  timestep_spacing: [
    (v) => v === undefined || oneOf('linspace', 'leading', 'trailing')(v),
    'linspace, leading or trailing',
  ],
  steps_offset: [isInt, 'an integer'],
  set_alpha_to_one: [isBool, 'true or false'],
  skip_prk_steps: [isBool, 'true or false'],
  clip_sample: [isBool, 'true or false'],
  clip_sample_range: [isNum, 'a number'],
  thresholding: [isBool, 'true or false'],
  use_karras_sigmas: [(v) => v === undefined || isBool(v), 'true or false'],
  interpolation_type: [oneOf('linear', 'log_linear'), 'linear or log_linear'],
  solver_order: [(v) => isInt(v) && (v as number) >= 1 && (v as number) <= 3, '1, 2 or 3'],
  algorithm_type: [
    oneOf('dpmsolver++', 'dpmsolver', 'sde-dpmsolver++', 'sde-dpmsolver'),
    'dpmsolver++, dpmsolver, sde-dpmsolver++ or sde-dpmsolver',
  ],
  solver_type: [oneOf('midpoint', 'heun'), 'midpoint or heun'],
  lower_order_final: [isBool, 'true or false'],
  lambda_min_clipped: [isNum, 'a number'],
  predict_x0: [isBool, 'true or false'],
  disable_corrector: [(v) => Array.isArray(v) && v.every(isInt), 'a list of step indices'],
  eta: [(v) => isNum(v) && (v as number) >= 0, 'a number >= 0'],
}

/**
 * Merge a diffusers scheduler_config.json (or any subset of its fields) over `base`. Unknown keys
 * (`_class_name`, `_diffusers_version`, fields of other schedulers) are ignored, as from_config does;
 * a known key with a wrong type is an error that names the key. JSON null for an optional field
 * means "class default".
 */
export function parseSchedulerConfig(
  raw: unknown,
  base: Readonly<SchedulerConfig> = SD15_SCHEDULER_CONFIG,
  source = 'scheduler config',
): SchedulerConfig {
  const out: SchedulerConfig = { ...base, disable_corrector: [...base.disable_corrector] }
  if (raw === undefined || raw === null) return out
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error(`${source}: expected a JSON object of scheduler settings`)
  }
  const rec = raw as Record<string, unknown>
  for (const key of Object.keys(FIELDS) as (keyof SchedulerConfig)[]) {
    if (!(key in rec)) continue
    let v = rec[key]
    if (v === null && (key === 'timestep_spacing' || key === 'use_karras_sigmas')) v = undefined
    if (key === 'lambda_min_clipped' && (v === '-inf' || v === null)) v = -Infinity
    const [check, expected] = FIELDS[key]
    if (!check(v)) {
      throw new Error(`${source}: "${key}" must be ${expected} (got ${JSON.stringify(v)})`)
    }
    ;(out as unknown as Record<string, unknown>)[key] = v
  }
  if (out.thresholding) {
    throw new Error(
      `${source}: "thresholding": true is not supported (it is not used by latent diffusion models)`,
    )
  }
  return out
}
