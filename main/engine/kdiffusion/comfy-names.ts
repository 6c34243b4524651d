import type { ComfyScheduleKey } from './schedules'
import { A1111_SCHEDULES, COMFY_SCHEDULES } from './schedules'

/**
 * ComfyUI's KSampler `sampler_name` and `scheduler` values (comfy/samplers.py KSAMPLER_NAMES + ddim, uni_pc,
 * uni_pc_bh2; SCHEDULER_NAMES) mapped onto Atelier's samplers (engine/kdiffusion) and A1111 Schedule types.
 *
 * - `exact`: the same k-diffusion function; with the ComfyUI convention (`samplerConvention: 'comfy'`) the run
 *   follows ComfyUI's KSampler (integer timesteps, its schedulers, its denoise rule).
 * - `approx`: runs, but not as ComfyUI computes it (the note says how it differs).
 * - `unsupported`: no implementation here; the name is reported, never guessed.
 */

export type ComfyMatch = 'exact' | 'approx' | 'unsupported'

export interface ComfySamplerEntry {
  /** ComfyUI sampler_name. */
  comfy: string
  /** Atelier / A1111 sampler name; null when unsupported. */
  sampler: string | null
  match: ComfyMatch
  note?: string
}

const SDE_NOTE =
  'noise is drawn per step from the seeded generator, not from torchsde’s BrownianTree: same distribution, other pixels'

const E = (comfy: string, sampler: string | null, match: ComfyMatch, note?: string): ComfySamplerEntry => ({
  comfy,
  sampler,
  match,
  ...(note ? { note } : {}),
})
const NO = (comfy: string, note: string): ComfySamplerEntry => E(comfy, null, 'unsupported', note)

/** Every ComfyUI v0.3.x sampler_name, in ComfyUI's menu order. */
export const COMFY_SAMPLERS: readonly ComfySamplerEntry[] = [
  E('euler', 'Euler', 'exact'),
  NO('euler_cfg_pp', 'CFG++ samplers are not implemented'),
  E('euler_ancestral', 'Euler a', 'exact'),
  NO('euler_ancestral_cfg_pp', 'CFG++ samplers are not implemented'),
  E('heun', 'Heun', 'exact'),
  NO('heunpp2', 'Heun++ is not implemented'),
  E('dpm_2', 'DPM2', 'exact'),
  E('dpm_2_ancestral', 'DPM2 a', 'exact'),
  E('lms', 'LMS', 'exact'),
  E('dpm_fast', 'DPM fast', 'exact'),
  NO('dpm_adaptive', 'adaptive step-size DPM is not implemented'),
  E('dpmpp_2s_ancestral', 'DPM++ 2S a', 'exact'),
  NO('dpmpp_2s_ancestral_cfg_pp', 'CFG++ samplers are not implemented'),
  E('dpmpp_sde', 'DPM++ SDE', 'approx', SDE_NOTE),
  E('dpmpp_sde_gpu', 'DPM++ SDE', 'approx', SDE_NOTE),
  E('dpmpp_2m', 'DPM++ 2M', 'exact'),
  NO('dpmpp_2m_cfg_pp', 'CFG++ samplers are not implemented'),
  E('dpmpp_2m_sde', 'DPM++ 2M SDE', 'approx', SDE_NOTE),
  E('dpmpp_2m_sde_gpu', 'DPM++ 2M SDE', 'approx', SDE_NOTE),
  E('dpmpp_2m_sde_heun', 'DPM++ 2M SDE Heun', 'approx', SDE_NOTE),
  E('dpmpp_2m_sde_heun_gpu', 'DPM++ 2M SDE Heun', 'approx', SDE_NOTE),
  E('dpmpp_3m_sde', 'DPM++ 3M SDE', 'approx', SDE_NOTE),
  E('dpmpp_3m_sde_gpu', 'DPM++ 3M SDE', 'approx', SDE_NOTE),
  NO('ddpm', 'the DDPM ancestral sampler is not implemented'),
  E('lcm', 'LCM', 'approx', 'runs A1111’s LCM sampler on its 50-entry LCM table, not ComfyUI’s schedule'),
  NO('ipndm', 'iPNDM is not implemented'),
  NO('ipndm_v', 'iPNDM (variable step) is not implemented'),
  NO('deis', 'DEIS is not implemented'),
  NO('res_multistep', 'RES multistep is not implemented'),
  NO('res_multistep_cfg_pp', 'RES multistep is not implemented'),
  NO('res_multistep_ancestral', 'RES multistep is not implemented'),
  NO('res_multistep_ancestral_cfg_pp', 'RES multistep is not implemented'),
  NO('gradient_estimation', 'gradient estimation is not implemented'),
  NO('gradient_estimation_cfg_pp', 'gradient estimation is not implemented'),
  NO('er_sde', 'ER-SDE is not implemented'),
  NO('seeds_2', 'SEEDS is not implemented'),
  NO('seeds_3', 'SEEDS is not implemented'),
  NO('sa_solver', 'SA-Solver is not implemented'),
  NO('sa_solver_pece', 'SA-Solver is not implemented'),
  E(
    'ddim',
    'Euler',
    'exact',
    'ComfyUI’s “ddim” is Euler on the chosen scheduler (ddim_uniform gives DDIM’s timesteps)',
  ),
  E(
    'uni_pc',
    'UniPC',
    'approx',
    'runs A1111’s UniPC (bh1, order 3) on its own timesteps, not on ComfyUI’s sigma schedule',
  ),
  NO('uni_pc_bh2', 'UniPC bh2 is not implemented'),
]

/** ComfyUI scheduler -> A1111 Schedule type label (null: ComfyUI only, runs with the ComfyUI convention). */
export const COMFY_SCHEDULER_LABELS: Readonly<Record<ComfyScheduleKey, string | null>> = {
  normal: A1111_SCHEDULES.normal,
  karras: A1111_SCHEDULES.karras,
  exponential: A1111_SCHEDULES.exponential,
  sgm_uniform: A1111_SCHEDULES.sgm_uniform,
  simple: A1111_SCHEDULES.simple,
  ddim_uniform: A1111_SCHEDULES.ddim,
  beta: A1111_SCHEDULES.beta,
  linear_quadratic: null,
  kl_optimal: A1111_SCHEDULES.kl_optimal,
}

export interface ComfyMapping {
  /** Atelier / A1111 sampler name; undefined when the sampler is not supported. */
  sampler?: string
  /** A1111 Schedule type label for the scheduler (undefined when it has none). */
  scheduleType?: string
  /** ComfyUI scheduler key as the ComfyUI convention takes it (undefined when unknown). */
  comfyScheduler?: ComfyScheduleKey
  /** Exact when both map exactly. */
  match: ComfyMatch
  /** Human-readable reasons for what does not map (or maps approximately). */
  notes: string[]
}

function norm(s: string): string {
  return s.trim().toLowerCase()
}

export function comfySamplerEntry(name: string): ComfySamplerEntry | undefined {
  const n = norm(name)
  return COMFY_SAMPLERS.find((e) => e.comfy === n)
}

/** Whether a name is one of ComfyUI's scheduler keys. */
export function isComfyScheduler(name: string): name is ComfyScheduleKey {
  return (COMFY_SCHEDULES as readonly string[]).includes(norm(name))
}

/**
 * A ComfyUI sampler_name + scheduler as Atelier runs them. Unknown names are reported in `notes`
 * (custom-node samplers, typos) rather than guessed.
 */
export function mapComfySampler(samplerName: string, scheduler?: string): ComfyMapping {
  const notes: string[] = []
  let match: ComfyMatch = 'exact'
  const e = comfySamplerEntry(samplerName)
  let sampler: string | undefined
  if (!e) {
    notes.push(`ComfyUI sampler "${samplerName}" is not a ComfyUI core sampler`)
    match = 'unsupported'
  } else if (!e.sampler) {
    notes.push(`ComfyUI sampler "${e.comfy}": ${e.note ?? 'not supported'}`)
    match = 'unsupported'
  } else {
    sampler = e.sampler
    if (e.match === 'approx') {
      match = 'approx'
      notes.push(`ComfyUI sampler "${e.comfy}" runs as ${e.sampler}: ${e.note ?? ''}`.trim())
    }
  }
  let scheduleType: string | undefined
  let comfyScheduler: ComfyScheduleKey | undefined
  if (scheduler !== undefined && scheduler.trim() !== '') {
    const k = norm(scheduler)
    if (isComfyScheduler(k)) {
      comfyScheduler = k
      scheduleType = COMFY_SCHEDULER_LABELS[k] ?? undefined
      if (!scheduleType) {
        notes.push(
          `ComfyUI scheduler "${k}" has no A1111 Schedule type (it runs with the ComfyUI convention)`,
        )
        if (match === 'exact') match = 'approx'
      }
    } else {
      notes.push(`ComfyUI scheduler "${scheduler}" is not supported`)
      match = 'unsupported'
    }
  }
  return {
    ...(sampler ? { sampler } : {}),
    ...(scheduleType ? { scheduleType } : {}),
    ...(comfyScheduler ? { comfyScheduler } : {}),
    match,
    notes,
  }
}

/**
 * A Civitai / infotext sampler name that may be ComfyUI's (`dpmpp_2m`, `euler_ancestral`, `dpmpp_2m_sde_gpu`),
 * with an optional separate scheduler (`karras`, `sgm_uniform`, ...): the Atelier sampler and Schedule type,
 * or undefined when `sampler` is not a ComfyUI name.
 */
export function comfyToA1111(
  sampler: string,
  scheduler?: string | null,
): { sampler?: string; scheduleType?: string; notes: string[] } | undefined {
  if (!comfySamplerEntry(sampler)) return undefined
  const m = mapComfySampler(sampler, scheduler ?? undefined)
  return {
    ...(m.sampler ? { sampler: m.sampler } : {}),
    ...(m.scheduleType ? { scheduleType: m.scheduleType } : {}),
    notes: m.notes,
  }
}
