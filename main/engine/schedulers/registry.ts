import { parseSchedulerConfig } from './config'
import { DDIMScheduler } from './ddim'
import { DPMSolverMultistepScheduler } from './dpm-solver'
import { EulerAncestralDiscreteScheduler, EulerDiscreteScheduler } from './euler'
import { LCMScheduler, TCDScheduler } from './lcm-tcd'
import { LMSDiscreteScheduler } from './lms'
import { PNDMScheduler } from './pndm'
import type { Scheduler, SchedulerConfig } from './types'

interface Entry {
  /** A1111 name (what the registry is keyed by). */
  name: string
  /** Key the oracle manifest uses for this sampler, where it has one. */
  oracleKey: string
  /** diffusers class the numbers follow. */
  diffusersClass: string
  /** Whether the `schedulers` oracle case covers it. */
  oracleVerified: boolean
  /** Settings the A1111 name implies, applied over the user's config. */
  overrides: Partial<SchedulerConfig>
  make: (cfg: SchedulerConfig, name: string) => Scheduler
}

const ENTRIES: Entry[] = [
  {
    name: 'DDIM',
    oracleKey: 'ddim',
    diffusersClass: 'DDIMScheduler',
    oracleVerified: true,
    overrides: {},
    make: (c, n) => new DDIMScheduler(c, n),
  },
  {
    name: 'Euler',
    oracleKey: 'euler',
    diffusersClass: 'EulerDiscreteScheduler',
    oracleVerified: true,
    overrides: { use_karras_sigmas: false },
    make: (c, n) => new EulerDiscreteScheduler(c, n),
  },
  {
    name: 'Euler a',
    oracleKey: 'euler_ancestral',
    diffusersClass: 'EulerAncestralDiscreteScheduler',
    oracleVerified: true,
    overrides: {},
    make: (c, n) => new EulerAncestralDiscreteScheduler(c, n),
  },
  {
    name: 'LMS',
    oracleKey: 'lms',
    diffusersClass: 'LMSDiscreteScheduler',
    oracleVerified: true,
    overrides: { use_karras_sigmas: false },
    make: (c, n) => new LMSDiscreteScheduler(c, n),
  },
  {
    name: 'LMS Karras',
    oracleKey: 'lms_karras',
    diffusersClass: 'LMSDiscreteScheduler',
    oracleVerified: false,
    overrides: { use_karras_sigmas: true },
    make: (c, n) => new LMSDiscreteScheduler(c, n),
  },
  {
    name: 'DPM++ 2M',
    oracleKey: 'dpmpp_2m',
    diffusersClass: 'DPMSolverMultistepScheduler',
    oracleVerified: false,
    overrides: { use_karras_sigmas: false, algorithm_type: 'dpmsolver++', solver_order: 2 },
    make: (c, n) => new DPMSolverMultistepScheduler(c, n),
  },
  {
    name: 'DPM++ 2M Karras',
    oracleKey: 'dpmpp_2m_karras',
    diffusersClass: 'DPMSolverMultistepScheduler',
    oracleVerified: true,
    overrides: { use_karras_sigmas: true, algorithm_type: 'dpmsolver++', solver_order: 2 },
    make: (c, n) => new DPMSolverMultistepScheduler(c, n),
  },
  {
    name: 'DPM++ 2M SDE',
    oracleKey: 'dpmpp_2m_sde',
    diffusersClass: 'DPMSolverMultistepScheduler',
    oracleVerified: false,
    overrides: { use_karras_sigmas: false, algorithm_type: 'sde-dpmsolver++', solver_order: 2 },
    make: (c, n) => new DPMSolverMultistepScheduler(c, n),
  },
  {
    name: 'DPM++ 2M SDE Karras',
    oracleKey: 'dpmpp_2m_sde_karras',
    diffusersClass: 'DPMSolverMultistepScheduler',
    oracleVerified: false,
    overrides: { use_karras_sigmas: true, algorithm_type: 'sde-dpmsolver++', solver_order: 2 },
    make: (c, n) => new DPMSolverMultistepScheduler(c, n),
  },
  {
    name: 'LCM',
    oracleKey: 'lcm',
    diffusersClass: 'LCMScheduler',
    oracleVerified: false,
    overrides: {},
    make: (c, n) => new LCMScheduler(c, n),
  },
  {
    name: 'TCD',
    oracleKey: 'tcd',
    diffusersClass: 'TCDScheduler',
    oracleVerified: false,
    overrides: {},
    make: (c, n) => new TCDScheduler(c, n),
  },
  {
    name: 'PLMS',
    oracleKey: 'pndm',
    diffusersClass: 'PNDMScheduler',
    oracleVerified: true,
    overrides: { skip_prk_steps: true },
    make: (c, n) => new PNDMScheduler(c, n),
  },
]

/** Other spellings accepted by createScheduler (lower-cased lookups). */
const ALIASES: Record<string, string> = {
  pndm: 'PLMS',
  euler_a: 'Euler a',
  'euler ancestral': 'Euler a',
  k_euler: 'Euler',
  k_euler_a: 'Euler a',
  k_lms: 'LMS',
  'dpm++ 2m karras': 'DPM++ 2M Karras',
}

function find(name: string): Entry | undefined {
  const lower = name.trim().toLowerCase()
  const byName = ENTRIES.find((e) => e.name.toLowerCase() === lower || e.oracleKey === lower)
  if (byName) return byName
  const alias = ALIASES[lower]
  return alias ? ENTRIES.find((e) => e.name === alias) : undefined
}

/** A1111 sampler names, in menu order. */
export function schedulerNames(): string[] {
  return ENTRIES.map((e) => e.name)
}

/** Registry facts for one name (A1111 name, oracle key or alias). */
export function schedulerInfo(
  name: string,
): { name: string; oracleKey: string; diffusersClass: string; oracleVerified: boolean } | undefined {
  const e = find(name)
  return (
    e && {
      name: e.name,
      oracleKey: e.oracleKey,
      diffusersClass: e.diffusersClass,
      oracleVerified: e.oracleVerified,
    }
  )
}

/** The oracle manifest key (`schedulers` case) for an A1111 name, or undefined. */
export function oracleKeyFor(name: string): string | undefined {
  return find(name)?.oracleKey
}

/** The A1111 name for an oracle manifest key. */
export function nameForOracleKey(key: string): string | undefined {
  return ENTRIES.find((e) => e.oracleKey === key)?.name
}

/**
 * A scheduler by A1111 name (or oracle key / alias), configured from a diffusers
 * scheduler_config.json object (SD 1.5 settings when omitted). The name's implied settings
 * (Karras sigmas, solver type) win over the config, as A1111's sampler menu does.
 */
export function createScheduler(name: string, config?: unknown): Scheduler {
  const e = find(name)
  if (!e) {
    throw new Error(`unknown sampler "${name}"; known samplers: ${schedulerNames().join(', ')}`)
  }
  const cfg = {
    ...parseSchedulerConfig(config, undefined, `scheduler config for "${e.name}"`),
    ...e.overrides,
  }
  return e.make(cfg, e.name)
}
