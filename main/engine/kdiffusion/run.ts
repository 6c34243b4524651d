import { f32 } from '../schedulers/math'
import type { KSamplerInfo } from './registry'
import { comfyScheduleKey, findKSampler, scheduleKey } from './registry'
import type { NoiseFn } from './samplers'
import type { ComfyScheduleKey, ScheduleKey, ScheduleOptions } from './schedules'
import { A1111_SCHEDULES, a1111Schedule, comfyKSamplerSigmas, discardPenultimate } from './schedules'
import type { LcmTable, NoiseTable } from './table'
import { lcmSigmas, lcmSigmaToT, lcmTable, sigmaToT, sigmaToTQuantized } from './table'
import { a1111Timesteps, sampleDdim, samplePlms, sampleUniPc } from './timesteps'

/**
 * A1111's processing around a sampler (KDiffusionSampler / CompVisSampler / LCMSampler .sample and
 * .sample_img2img) and ComfyUI's KSampler: which sigmas or timesteps run, the starting latents, the
 * model wrapper (c_in, sigma -> t, denoised = x - sigma * eps) and the sampler call.
 */

export type KConvention = 'a1111' | 'comfy'

export interface KPlanRequest {
  sampler: string
  /** Schedule type label or key; 'Automatic' / undefined = the sampler's default. */
  schedule?: string
  convention: KConvention
  steps: number
  /** img2img / inpaint denoising strength; undefined = txt2img. */
  strength?: number
  /** A1111 opts.img2img_fix_steps (ComfyUI's denoise always behaves this way). */
  fixSteps?: boolean
  table: NoiseTable
  scheduleOptions?: ScheduleOptions
  /** A1111 opts.always_discard_next_to_last_sigma. */
  alwaysDiscard?: boolean
}

export interface KPlan {
  info: KSamplerInfo
  convention: KConvention
  /** The schedule as requested ('Automatic' when the sampler's default applies). */
  scheduleLabel: string
  /** The schedule that runs (sigma and LCM samplers; ComfyUI: its scheduler key). */
  resolvedSchedule?: string
  table: NoiseTable
  lcm?: LcmTable
  /** get_sigmas(p, schedule steps) (sigma and LCM samplers). */
  sigmas?: Float64Array
  /** The sigmas the sampler runs (img2img: the slice). */
  sched?: Float64Array
  /** get_timesteps(p, schedule steps) (timestep samplers), ascending. */
  timesteps?: number[]
  /** The timesteps the sampler walks (img2img: timesteps[:t_enc]). */
  runTimesteps?: number[]
  /** img2img: A1111's t_enc. */
  tEnc?: number
  /** Length of the schedule the run was cut from. */
  scheduleLength: number
  /** Sampler steps (progress total). */
  stepsRun: number
  img2img: boolean
}

function strengthOk(s: number): void {
  if (!(s > 0 && s <= 1))
    throw new Error(`denoising strength must be greater than 0 and at most 1 (got ${s})`)
}

/** sd_samplers_common.setup_img2img_steps: [schedule steps, t_enc]. */
export function a1111Img2ImgSteps(steps: number, strength: number, fixSteps: boolean): [number, number] {
  strengthOk(strength)
  const s = Math.min(strength, 0.999)
  if (fixSteps) return [Math.trunc(steps / s), steps - 1]
  return [steps, Math.trunc(s * steps)]
}

/** Resolves sampler, schedule and step slicing for one run. */
export function planSampling(r: KPlanRequest): KPlan {
  const info = findKSampler(r.sampler)
  if (!info)
    throw new Error(
      `sampler "${r.sampler}" has no ${r.convention === 'comfy' ? 'ComfyUI' : 'A1111'} implementation here`,
    )
  if (!Number.isInteger(r.steps) || r.steps < 1)
    throw new Error(`steps must be a positive integer (got ${r.steps})`)
  // A1111 runs img2img (noised start latents) also at strength 1; ComfyUI's denoise 1 is a full schedule.
  const img2img = r.strength !== undefined && (r.convention === 'a1111' || r.strength < 1)
  if (r.strength !== undefined) strengthOk(r.strength)
  const label = r.schedule?.trim() || 'Automatic'

  if (r.convention === 'comfy') {
    if (info.kind !== 'sigma') throw new Error(`ComfyUI convention: sampler "${info.name}" is not supported`)
    const key: ComfyScheduleKey | undefined = label === 'Automatic' ? 'normal' : comfyScheduleKey(label)
    if (!key) throw new Error(`unknown ComfyUI scheduler "${label}"`)
    const sched = comfyKSamplerSigmas(
      key,
      r.table,
      r.steps,
      r.strength ?? 1,
      info.comfyDiscard,
      r.scheduleOptions,
    )
    return {
      info,
      convention: 'comfy',
      scheduleLabel: key,
      resolvedSchedule: key,
      table: r.table,
      sigmas: sched,
      sched,
      scheduleLength: img2img ? Math.trunc(r.steps / (r.strength ?? 1)) : r.steps,
      stepsRun: sched.length - 1,
      img2img,
    }
  }

  const [schedSteps, tEnc] = img2img
    ? a1111Img2ImgSteps(r.steps, r.strength!, r.fixSteps ?? false)
    : [r.steps, undefined]

  if (info.kind === 'timestep') {
    const discard = r.alwaysDiscard ?? false
    const timesteps = a1111Timesteps(schedSteps + (discard ? 1 : 0), r.table.alphasCumprod.length)
    const run = tEnc !== undefined ? timesteps.slice(0, tEnc) : timesteps
    if (tEnc !== undefined && tEnc >= timesteps.length)
      throw new Error(`img2img: t_enc ${tEnc} is past the ${timesteps.length} timesteps`)
    return {
      info,
      convention: 'a1111',
      scheduleLabel: 'Automatic',
      table: r.table,
      timesteps,
      runTimesteps: run,
      tEnc,
      scheduleLength: schedSteps,
      stepsRun: info.name === 'UniPC' ? run.length : Math.max(run.length - 1, 0),
      img2img,
    }
  }

  const key = scheduleKey(label)
  if (!key)
    throw new Error(`unknown schedule type "${label}" (known: ${Object.values(A1111_SCHEDULES).join(', ')})`)
  const lcm = info.kind === 'lcm' ? lcmTable(r.table) : undefined
  const table = lcm ? lcm.table : r.table
  const discard = info.discardPenultimate || (r.alwaysDiscard ?? false)
  const n = schedSteps + (discard ? 1 : 0)
  let sigmas: Float64Array
  const resolved: ScheduleKey = key === 'automatic' ? info.defaultSchedule : key
  if (lcm && resolved === 'uniform') sigmas = lcmSigmas(lcm, n)
  else sigmas = a1111Schedule(resolved, table, n, r.scheduleOptions)
  if (discard) sigmas = discardPenultimate(sigmas)
  const sched = tEnc !== undefined ? sigmas.slice(schedSteps - tEnc - 1) : sigmas
  return {
    info,
    convention: 'a1111',
    scheduleLabel: key === 'automatic' ? 'Automatic' : A1111_SCHEDULES[key],
    resolvedSchedule: resolved,
    table: r.table,
    lcm,
    sigmas,
    sched,
    tEnc,
    scheduleLength: schedSteps,
    stepsRun: sched.length - 1,
    img2img,
  }
}

/**
 * Atelier's own infotext field for the DPM++ SDE family: `SDE noise: per-step` says the sampler's noise came
 * from the image RNG one draw per noise_sampler call, not from A1111's / ComfyUI's torchsde BrownianTree, so
 * the same seed does not give A1111's pixels (A1111 ignores unknown fields).
 */
export function sdeNoiseField(info: KSamplerInfo): Record<string, string> {
  return info.sde ? { 'SDE noise': 'per-step' } : {}
}

/**
 * The infotext fields A1111 (v1.9+) writes for a plan: `Schedule type` with the label of the schedule
 * that ran, except for samplers without a schedule option left on Automatic (Euler, LMS, LCM, DDIM, ...);
 * Beta adds its alpha / beta.
 */
export function a1111InfotextFields(p: KPlan, o: ScheduleOptions = {}): Record<string, string> {
  if (p.convention !== 'a1111' || p.info.kind === 'timestep') return {}
  const out: Record<string, string> = { ...sdeNoiseField(p.info) }
  const resolved = p.resolvedSchedule as ScheduleKey | undefined
  const automatic = p.scheduleLabel === 'Automatic'
  if (!resolved || (automatic && (p.info.kind === 'lcm' || p.info.defaultSchedule === 'uniform'))) return out
  if (resolved === 'beta_dev') return out
  out['Schedule type'] = A1111_SCHEDULES[resolved]
  if (resolved === 'beta') {
    out['Beta schedule alpha'] = String(o.betaAlpha ?? 0.6)
    out['Beta schedule beta'] = String(o.betaBeta ?? 0.6)
  }
  return out
}

/** Guided eps of the UNet for a (c_in-scaled) input at UNet timestep t. */
export type GuidedEps = (input: Float32Array, t: number) => Promise<Float32Array>

export interface KRunArgs {
  plan: KPlan
  eps: GuidedEps
  /** The image RNG: the initial noise first, then every sampler draw. */
  noise: NoiseFn
  /** Clean scaled latents (img2img / inpaint). */
  init?: Float32Array
  /** Applied to every denoised prediction (A1111 inpainting: init * mask + nmask * denoised). */
  postDenoise?: (denoised: Float32Array) => Float32Array
  onStep?: (step: {
    i: number
    total: number
    x: Float32Array
    denoised: Float32Array
  }) => void | Promise<void>
  /** Every model evaluation: the UNet input, its t and the guided eps. */
  trace?: (t: { input: Float32Array; t: number; eps: Float32Array; sigma?: number }) => void
  eta?: number
  signal?: AbortSignal
}

export interface KRunResult {
  latents: Float32Array
  xInit: Float32Array
}

function scaled(x: Float32Array, s: number): Float32Array {
  const out = new Float32Array(x.length)
  for (let k = 0; k < x.length; k++) out[k] = f32(x[k]! * s)
  return out
}

/** Starting latents, the wrapped model and the sampler call, as A1111 (or ComfyUI) runs them. */
export async function runSampling(a: KRunArgs): Promise<KRunResult> {
  const p = a.plan
  const total = p.stepsRun
  const noise0 = a.noise()
  const onStep = a.onStep
    ? async (s: { i: number; x: Float32Array; denoised: Float32Array }): Promise<void> =>
        a.onStep?.({ ...s, total })
    : undefined

  if (p.info.kind === 'timestep') {
    const ac = p.table.alphasCumprod
    let xInit: Float32Array
    if (p.tEnc !== undefined && a.init) {
      const at = ac[p.timesteps![p.tEnc]!]!
      const sa = f32(Math.sqrt(at))
      const s1 = f32(Math.sqrt(f32(1 - at)))
      xInit = new Float32Array(noise0.length)
      for (let k = 0; k < xInit.length; k++) xInit[k] = f32(a.init[k]! * sa) + f32(noise0[k]! * s1)
    } else xInit = noise0.slice()
    const model = async (x: Float32Array, t: number): Promise<Float32Array> => {
      const e = await a.eps(x, t)
      a.trace?.({ input: x, t, eps: e })
      return e
    }
    const args = {
      model,
      x: xInit,
      timesteps: p.runTimesteps!,
      alphasCumprod: ac,
      noise: a.noise,
      eta: 0,
      callback: onStep,
      signal: a.signal,
      img2img: p.img2img,
    }
    const latents =
      p.info.name === 'DDIM'
        ? await sampleDdim(args)
        : p.info.name === 'PLMS'
          ? await samplePlms(args)
          : await sampleUniPc(args)
    return { latents, xInit }
  }

  const sched = p.sched!
  const s0 = sched[0]!
  let xInit: Float32Array
  if (p.convention === 'comfy') {
    const maxDenoise =
      Math.abs(s0 - p.table.sigmaMax) <= 1e-5 * Math.max(Math.abs(s0), p.table.sigmaMax) ||
      s0 > p.table.sigmaMax
    const m = maxDenoise ? f32(Math.sqrt(1 + s0 * s0)) : s0
    xInit = scaled(noise0, m)
    if (a.init) for (let k = 0; k < xInit.length; k++) xInit[k] = xInit[k]! + a.init[k]!
  } else if (a.init && p.img2img) {
    xInit = new Float32Array(noise0.length)
    for (let k = 0; k < xInit.length; k++) xInit[k] = a.init[k]! + f32(noise0[k]! * s0)
  } else xInit = scaled(noise0, s0)

  const lcm = p.lcm
  const model = async (x: Float32Array, sigma: number): Promise<Float32Array> => {
    const cIn = f32(1 / Math.sqrt(f32(f32(sigma * sigma) + 1)))
    const input = scaled(x, cIn)
    const t = lcm
      ? lcmSigmaToT(lcm, sigma)
      : p.convention === 'comfy'
        ? sigmaToTQuantized(p.table, sigma)
        : sigmaToT(p.table, sigma)
    const e = await a.eps(input, t)
    a.trace?.({ input, t, eps: e, sigma })
    let den: Float32Array = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) den[k] = x[k]! - f32(sigma * e[k]!)
    if (lcm) {
      const st = t * 10
      const cSkip = f32(0.25 / (st * st + 0.25))
      const cOut = f32(st / Math.sqrt(st * st + 0.25))
      for (let k = 0; k < x.length; k++) den[k] = f32(cOut * den[k]!) + f32(cSkip * x[k]!)
    }
    if (a.postDenoise) den = a.postDenoise(den)
    return den
  }
  const latents = await p.info.sampler!({
    model,
    x: xInit,
    sigmas: sched,
    noise: a.noise,
    eta: p.info.ancestral ? (a.eta ?? 1) : undefined,
    skipUnusedDraws: p.convention === 'comfy',
    callback: onStep,
    signal: a.signal,
  })
  return { latents, xInit }
}
