import type { A1111ScheduleKey, ComfyScheduleKey } from './schedules'
import { A1111_SCHEDULES, COMFY_SCHEDULES } from './schedules'
import type { Sampler } from './samplers'
import {
  sampleDpm2,
  sampleDpm2Ancestral,
  sampleDpmFast,
  sampleDpmpp2m,
  sampleDpmpp2mSde,
  sampleDpmpp2mSdeHeun,
  sampleDpmpp2sAncestral,
  sampleDpmpp3mSde,
  sampleDpmppSde,
  sampleEuler,
  sampleEulerAncestral,
  sampleHeun,
  sampleLcm,
  sampleLms,
  sampleRestart,
} from './samplers'

/**
 * A1111's sampler menu (v1.10.1 sd_samplers_kdiffusion / _timesteps / _lcm) as far as this engine runs
 * it the k-diffusion way: per sampler its function, the schedule 'Automatic' means, and the options
 * that change the schedule (discard_next_to_last_sigma) or the prompt-editing step count (second_order).
 */

export type KSamplerKind = 'sigma' | 'timestep' | 'lcm'

export interface KSamplerInfo {
  /** A1111 display name. */
  name: string
  kind: KSamplerKind
  /** k-diffusion / A1111 function name (infotext-free, for diagnostics). */
  fn: string
  /** Schedule key 'Automatic' resolves to; 'uniform' = model_wrap.get_sigmas. */
  defaultSchedule: Exclude<A1111ScheduleKey, 'automatic'>
  discardPenultimate: boolean
  /** ComfyUI's DISCARD_PENULTIMATE_SIGMA_SAMPLERS (dpm_2, dpm_2_ancestral; not dpmpp_3m_sde). */
  comfyDiscard: boolean
  secondOrder: boolean
  /** Ancestral / stochastic: uses opts.eta_ancestral and the ENSD seed delta. */
  ancestral: boolean
  /** Stochastic DPM++ SDE sampler: noise per step from the image RNG, not torchsde's BrownianTree. */
  sde: boolean
  /** ComfyUI sampler_name. */
  comfyName: string
  sampler?: Sampler
  aliases: string[]
}

const S = (
  name: string,
  kind: KSamplerKind,
  fn: string,
  comfyName: string,
  defaultSchedule: KSamplerInfo['defaultSchedule'],
  o: Partial<
    Pick<
      KSamplerInfo,
      'discardPenultimate' | 'comfyDiscard' | 'secondOrder' | 'ancestral' | 'sde' | 'sampler' | 'aliases'
    >
  >,
): KSamplerInfo => ({
  name,
  kind,
  fn,
  comfyName,
  defaultSchedule,
  discardPenultimate: o.discardPenultimate ?? false,
  comfyDiscard: o.comfyDiscard ?? o.discardPenultimate ?? false,
  secondOrder: o.secondOrder ?? false,
  ancestral: o.ancestral ?? o.sde ?? false,
  sde: o.sde ?? false,
  sampler: o.sampler,
  aliases: o.aliases ?? [],
})

export const K_SAMPLERS: KSamplerInfo[] = [
  S('DPM++ 2M', 'sigma', 'sample_dpmpp_2m', 'dpmpp_2m', 'karras', {
    sampler: sampleDpmpp2m,
    aliases: ['k_dpmpp_2m'],
  }),
  S('DPM++ SDE', 'sigma', 'sample_dpmpp_sde', 'dpmpp_sde', 'karras', {
    sampler: sampleDpmppSde,
    secondOrder: true,
    sde: true,
    aliases: ['k_dpmpp_sde', 'dpmpp_sde_gpu'],
  }),
  S('DPM++ 2M SDE', 'sigma', 'sample_dpmpp_2m_sde', 'dpmpp_2m_sde', 'exponential', {
    sampler: sampleDpmpp2mSde,
    sde: true,
    aliases: ['k_dpmpp_2m_sde', 'dpmpp_2m_sde_gpu'],
  }),
  S('DPM++ 2M SDE Heun', 'sigma', 'sample_dpmpp_2m_sde (heun)', 'dpmpp_2m_sde_heun', 'exponential', {
    sampler: sampleDpmpp2mSdeHeun,
    sde: true,
    aliases: ['dpmpp_2m_sde_heun_gpu'],
  }),
  S('DPM++ 2S a', 'sigma', 'sample_dpmpp_2s_ancestral', 'dpmpp_2s_ancestral', 'karras', {
    sampler: sampleDpmpp2sAncestral,
    secondOrder: true,
    ancestral: true,
    aliases: ['k_dpmpp_2s_a'],
  }),
  S('DPM++ 3M SDE', 'sigma', 'sample_dpmpp_3m_sde', 'dpmpp_3m_sde', 'exponential', {
    sampler: sampleDpmpp3mSde,
    discardPenultimate: true,
    comfyDiscard: false,
    sde: true,
    aliases: ['dpmpp_3m_sde_gpu'],
  }),
  S('Euler a', 'sigma', 'sample_euler_ancestral', 'euler_ancestral', 'uniform', {
    sampler: sampleEulerAncestral,
    ancestral: true,
    aliases: ['k_euler_a', 'euler_a', 'euler ancestral'],
  }),
  S('Euler', 'sigma', 'sample_euler', 'euler', 'uniform', { sampler: sampleEuler, aliases: ['k_euler'] }),
  S('LMS', 'sigma', 'sample_lms', 'lms', 'uniform', { sampler: sampleLms, aliases: ['k_lms'] }),
  S('Heun', 'sigma', 'sample_heun', 'heun', 'uniform', {
    sampler: sampleHeun,
    secondOrder: true,
    aliases: ['k_heun'],
  }),
  S('DPM2', 'sigma', 'sample_dpm_2', 'dpm_2', 'karras', {
    sampler: sampleDpm2,
    discardPenultimate: true,
    secondOrder: true,
    aliases: ['k_dpm_2'],
  }),
  S('DPM2 a', 'sigma', 'sample_dpm_2_ancestral', 'dpm_2_ancestral', 'karras', {
    sampler: sampleDpm2Ancestral,
    discardPenultimate: true,
    secondOrder: true,
    ancestral: true,
    aliases: ['k_dpm_2_a'],
  }),
  S('DPM fast', 'sigma', 'sample_dpm_fast', 'dpm_fast', 'uniform', {
    sampler: sampleDpmFast,
    ancestral: true,
    aliases: ['k_dpm_fast'],
  }),
  S('Restart', 'sigma', 'restart_sampler', 'restart', 'karras', {
    sampler: sampleRestart,
    secondOrder: true,
  }),
  S('DDIM', 'timestep', 'ddim', 'ddim', 'uniform', {}),
  S('PLMS', 'timestep', 'plms', 'plms', 'uniform', { aliases: ['pndm'] }),
  S('UniPC', 'timestep', 'unipc', 'uni_pc', 'uniform', {}),
  S('LCM', 'lcm', 'sample_lcm', 'lcm', 'uniform', { sampler: sampleLcm }),
]

/** A1111 samplers known by name but not run the k-diffusion way here (see the closing notes). */
export const A1111_NOT_COVERED = ['DPM adaptive', 'DDIM CFG++']

function norm(s: string): string {
  return s.trim().toLowerCase()
}

/** The sampler of an A1111 / ComfyUI name or alias (case-insensitive). */
export function findKSampler(name: string): KSamplerInfo | undefined {
  const n = norm(name)
  return K_SAMPLERS.find(
    (s) => norm(s.name) === n || s.comfyName === n || s.aliases.some((a) => norm(a) === n),
  )
}

/** Schedule labels in A1111's menu order ('Automatic' first). */
export function scheduleLabels(): string[] {
  return Object.values(A1111_SCHEDULES)
}

const SCHEDULE_ALIASES: Record<string, A1111ScheduleKey> = { sgmuniform: 'sgm_uniform' }

/** The A1111 schedule key for a label, key or alias ('Karras', 'karras', 'SGM Uniform', 'SGMUniform'). */
export function scheduleKey(label: string): A1111ScheduleKey | undefined {
  const n = norm(label)
  for (const [k, l] of Object.entries(A1111_SCHEDULES))
    if (k === n || norm(l) === n) return k as A1111ScheduleKey
  return SCHEDULE_ALIASES[n.replace(/\s+/g, '')]
}

export function comfyScheduleKey(label: string): ComfyScheduleKey | undefined {
  const n = norm(label).replace(/\s+/g, '_')
  if (n === 'ddim') return 'ddim_uniform'
  return COMFY_SCHEDULES.find((k) => k === n)
}

/**
 * sd_samplers.get_sampler_and_scheduler: a trailing schedule label in the sampler name is split off
 * ('DPM++ 2M Karras' -> 'DPM++ 2M' + 'Karras'); the sampler's own default schedule reads 'Automatic'.
 * Unknown samplers are returned unchanged with the schedule given. Pasting an infotext uses
 * convertAutomatic = false (the label is kept).
 */
export function splitSamplerName(
  sampler: string,
  schedule?: string,
  convertAutomatic = true,
): { sampler: string; schedule: string } {
  let name = sampler.trim()
  let found = schedule && scheduleKey(schedule) ? (scheduleKey(schedule) as A1111ScheduleKey) : 'automatic'
  // Longest label first ('Euler a SGM Uniform' is SGM Uniform, not Uniform).
  const byLength = Object.entries(A1111_SCHEDULES).sort((a, b) => b[1].length - a[1].length)
  outer: for (const [k, label] of byLength) {
    for (const opt of [
      label,
      k,
      ...Object.entries(SCHEDULE_ALIASES)
        .filter(([, v]) => v === k)
        .map(([a]) => a),
    ]) {
      if (name.toLowerCase().endsWith(` ${opt.toLowerCase()}`)) {
        found = k as A1111ScheduleKey
        name = name.slice(0, -(opt.length + 1))
        break outer
      }
    }
  }
  const info = findKSampler(name)
  if (info) name = info.name
  if (convertAutomatic && info && info.defaultSchedule === found && info.defaultSchedule !== 'uniform')
    found = 'automatic'
  return { sampler: name, schedule: A1111_SCHEDULES[found] }
}

/**
 * A1111's prompt-schedule step count factor (processing.py step_multiplier): prompt editing and
 * alternation are scheduled over model calls, twice per step for second-order samplers (Heun, DPM2,
 * DPM2 a, DPM++ 2S a, Restart). Use it with the denoise loop's `contextAt(call)` hook.
 */
export function a1111StepMultiplier(sampler: string): 1 | 2 {
  return findKSampler(splitSamplerName(sampler).sampler)?.secondOrder ? 2 : 1
}
