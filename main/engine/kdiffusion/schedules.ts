import { f32, npInterp, npLinspace, roundHalfEven, torchLinspaceF32 } from '../schedulers/math'
import { betaPpf } from './beta-dist'
import type { NoiseTable } from './table'
import { sigmaToT, sigmaToTQuantized, tToSigma, uniformSigmas } from './table'

/**
 * Sigma schedules ("Schedule type") as A1111 v1.10.1 (sd_schedulers.py + k-diffusion v0.0.16) and
 * ComfyUI (comfy/samplers.py) compute them. Each returns the noise levels the sampler visits, in
 * float32 values, usually n + 1 of them ending in 0.
 */

export interface ScheduleOptions {
  /** Beta schedule alpha / beta (A1111 opts.beta_dist_alpha / beta_dist_beta, ComfyUI defaults). */
  betaAlpha?: number
  betaBeta?: number
  /** SDXL model: Align Your Steps uses NVIDIA's SDXL list. */
  sdxl?: boolean
}

/** A1111 schedule keys (sd_schedulers.schedulers) with their infotext labels. */
export const A1111_SCHEDULES = {
  automatic: 'Automatic',
  uniform: 'Uniform',
  karras: 'Karras',
  exponential: 'Exponential',
  polyexponential: 'Polyexponential',
  sgm_uniform: 'SGM Uniform',
  kl_optimal: 'KL Optimal',
  align_your_steps: 'Align Your Steps',
  simple: 'Simple',
  normal: 'Normal',
  ddim: 'DDIM',
  beta: 'Beta',
} as const

export type A1111ScheduleKey = keyof typeof A1111_SCHEDULES
/** Every schedule this module computes (A1111 keys, A1111 dev's Beta, ComfyUI-only ones). */
export type ScheduleKey = Exclude<A1111ScheduleKey, 'automatic'> | 'beta_dev'
export type ComfyScheduleKey =
  | 'normal'
  | 'karras'
  | 'exponential'
  | 'sgm_uniform'
  | 'simple'
  | 'ddim_uniform'
  | 'beta'
  | 'linear_quadratic'
  | 'kl_optimal'

export const COMFY_SCHEDULES: readonly ComfyScheduleKey[] = [
  'normal',
  'karras',
  'exponential',
  'sgm_uniform',
  'simple',
  'ddim_uniform',
  'beta',
  'linear_quadratic',
  'kl_optimal',
]

function appendZero(values: ArrayLike<number>): Float64Array {
  const out = new Float64Array(values.length + 1)
  for (let i = 0; i < values.length; i++) out[i] = f32(values[i]!)
  return out
}

/** k-diffusion get_sigmas_karras (float32 torch arithmetic), with a trailing 0. */
export function karras(n: number, sigmaMin: number, sigmaMax: number, rho = 7): Float64Array {
  const ramp = torchLinspaceF32(0, 1, n)
  const minInv = sigmaMin ** (1 / rho)
  const maxInv = sigmaMax ** (1 / rho)
  const span = f32(minInv - maxInv)
  const out = new Float64Array(n + 1)
  for (let i = 0; i < n; i++) out[i] = f32(f32(f32(maxInv) + f32(ramp[i]! * span)) ** f32(rho))
  return out
}

/** k-diffusion get_sigmas_exponential. */
export function exponential(n: number, sigmaMin: number, sigmaMax: number): Float64Array {
  const ls = torchLinspaceF32(Math.log(sigmaMax), Math.log(sigmaMin), n)
  return appendZero(ls.map((v) => Math.exp(v)))
}

/** k-diffusion get_sigmas_polyexponential (ramp ** rho, interpolated in log sigma). */
export function polyexponential(n: number, sigmaMin: number, sigmaMax: number, rho = 1): Float64Array {
  const ramp = torchLinspaceF32(1, 0, n)
  const lmax = f32(Math.log(sigmaMax))
  const lmin = f32(Math.log(sigmaMin))
  const span = f32(lmax - lmin)
  return appendZero(ramp.map((r) => Math.exp(f32(f32(f32(f32(r ** rho) * span)) + lmin))))
}

function linspaceT(table: NoiseTable, n: number, dropLast: boolean): Float64Array {
  const start = f32(sigmaToT(table, table.sigmaMax))
  const end = f32(sigmaToT(table, table.sigmaMin))
  const ts = torchLinspaceF32(start, end, dropLast ? n + 1 : n)
  const used = dropLast ? ts.subarray(0, n) : ts
  return appendZero(Array.from(used, (t) => tToSigma(table, t)))
}

function alignYourSteps(n: number, sdxl: boolean): Float64Array {
  const base = sdxl
    ? [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.38, 0.234, 0.113, 0.029]
    : [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]
  if (n === base.length) return appendZero(base)
  const xs = npLinspace(0, 1, base.length)
  const ys = base
    .slice()
    .reverse()
    .map((v) => Math.log(v))
  const nx = npLinspace(0, 1, n)
  const out = Array.from(nx, (x) => Math.exp(npInterp(x, xs, ys))).reverse()
  return appendZero(out)
}

function klOptimalA1111(n: number, sigmaMin: number, sigmaMax: number): Float64Array {
  const aMin = f32(Math.atan(f32(sigmaMin)))
  const aMax = f32(Math.atan(f32(sigmaMax)))
  const out = new Float64Array(n + 1)
  for (let i = 0; i <= n; i++) {
    const r = f32(i / n)
    out[i] = f32(Math.tan(f32(f32(r * aMin) + f32(f32(1 - r) * aMax))))
  }
  return out
}

/**
 * One A1111 schedule for n steps (KDiffusionSampler.get_sigmas without the sampler's discard rule).
 * 'beta' is v1.10.1's (linear in sigma); 'beta_dev' the dev branch's (through timesteps).
 */
export function a1111Schedule(
  key: ScheduleKey,
  table: NoiseTable,
  n: number,
  o: ScheduleOptions = {},
): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new Error(`schedule: steps must be a positive integer (got ${n})`)
  const { sigmaMin, sigmaMax } = table
  const T = table.sigmas.length
  switch (key) {
    case 'uniform':
      return uniformSigmas(table, n)
    case 'karras':
      return karras(n, sigmaMin, sigmaMax)
    case 'exponential':
      return exponential(n, sigmaMin, sigmaMax)
    case 'polyexponential':
      return polyexponential(n, sigmaMin, sigmaMax, 1)
    case 'sgm_uniform':
      return linspaceT(table, n, true)
    case 'normal':
      return linspaceT(table, n, false)
    case 'kl_optimal':
      return klOptimalA1111(n, sigmaMin, sigmaMax)
    case 'align_your_steps':
      return alignYourSteps(n, o.sdxl ?? false)
    case 'simple': {
      const ss = T / n
      return appendZero(Array.from({ length: n }, (_, x) => table.sigmas[T - 1 - Math.trunc(x * ss)]!))
    }
    case 'ddim': {
      const ss = Math.max(Math.floor(T / n), 1)
      const sigs: number[] = []
      for (let x = 1; x < T; x += ss) sigs.push(table.sigmas[x]!)
      return appendZero(sigs.reverse())
    }
    case 'beta': {
      const a = o.betaAlpha ?? 0.6
      const b = o.betaBeta ?? 0.6
      const q = npLinspace(0, 1, n)
      return appendZero(Array.from(q, (v) => sigmaMin + betaPpf(1 - v, a, b) * (sigmaMax - sigmaMin)))
    }
    case 'beta_dev': {
      const a = o.betaAlpha ?? 0.6
      const b = o.betaBeta ?? 0.6
      const start = f32(sigmaToT(table, sigmaMax))
      const end = f32(sigmaToT(table, sigmaMin))
      const curve = Array.from(npLinspace(1, 0, n), (v) => betaPpf(v, a, b))
      return appendZero(curve.map((c) => tToSigma(table, end + c * (start - end))))
    }
  }
}

/** Drops the last non-zero sigma (torch.cat([sigmas[:-2], sigmas[-1:]])): the discard rule of DPM2 & co. */
export function discardPenultimate(sigmas: Float64Array): Float64Array {
  if (sigmas.length < 2) return sigmas.slice()
  const out = new Float64Array(sigmas.length - 1)
  out.set(sigmas.subarray(0, sigmas.length - 2))
  out[out.length - 1] = sigmas[sigmas.length - 1]!
  return out
}

/** ComfyUI calculate_sigmas(model_sampling, scheduler, steps) on a ComfyUI noise table. */
export function comfySchedule(
  key: ComfyScheduleKey,
  table: NoiseTable,
  n: number,
  o: ScheduleOptions = {},
): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new Error(`schedule: steps must be a positive integer (got ${n})`)
  const { sigmaMin, sigmaMax } = table
  const T = table.sigmas.length
  switch (key) {
    case 'karras':
      return karras(n, sigmaMin, sigmaMax)
    case 'exponential':
      return exponential(n, sigmaMin, sigmaMax)
    case 'normal':
    case 'sgm_uniform': {
      const sgm = key === 'sgm_uniform'
      const start = sigmaToTQuantized(table, sigmaMax)
      const end = sigmaToTQuantized(table, sigmaMin)
      let steps = n
      let zero = true
      if (!sgm && Math.abs(tToSigma(table, end)) <= 1e-5) {
        steps += 1
        zero = false
      }
      const ts = torchLinspaceF32(start, end, sgm ? steps + 1 : steps)
      const used = Array.from(sgm ? ts.subarray(0, steps) : ts, (t) => tToSigma(table, t))
      return zero ? appendZero(used) : Float64Array.from(used, f32)
    }
    case 'simple': {
      const ss = T / n
      return appendZero(Array.from({ length: n }, (_, x) => table.sigmas[T - 1 - Math.trunc(x * ss)]!))
    }
    case 'ddim_uniform': {
      let steps = n
      let sigs: number[]
      if (Math.abs(table.sigmas[1]!) <= 1e-5) {
        steps += 1
        sigs = []
      } else sigs = [0]
      const ss = Math.max(Math.floor(T / steps), 1)
      for (let x = 1; x < T; x += ss) sigs.push(table.sigmas[x]!)
      return Float64Array.from(sigs.reverse(), f32)
    }
    case 'beta': {
      const a = o.betaAlpha ?? 0.6
      const b = o.betaBeta ?? 0.6
      const sigs: number[] = []
      let last = -1
      for (let i = 0; i < n; i++) {
        const t = roundHalfEven(betaPpf(1 - i / n, a, b) * (T - 1))
        if (t !== last) sigs.push(table.sigmas[t]!)
        last = t
      }
      return appendZero(sigs)
    }
    case 'linear_quadratic': {
      const threshold = 0.025
      let sched: number[]
      if (n === 1) sched = [1, 0]
      else {
        const lin = Math.floor(n / 2)
        const linear = Array.from({ length: lin }, (_, i) => (i * threshold) / lin)
        const diff = lin - threshold * n
        const quadSteps = n - lin
        const qc = diff / (lin * quadSteps ** 2)
        const lc = threshold / lin - (2 * diff) / quadSteps ** 2
        const c = qc * lin ** 2
        const quad: number[] = []
        for (let i = lin; i < n; i++) quad.push(qc * i ** 2 + lc * i + c)
        sched = [...linear, ...quad, 1].map((x) => 1 - x)
      }
      return Float64Array.from(sched, (v) => f32(f32(v) * sigmaMax))
    }
    case 'kl_optimal': {
      const out = new Float64Array(n + 1)
      const aMin = Math.atan(sigmaMin)
      const aMax = Math.atan(sigmaMax)
      for (let i = 0; i < n; i++) {
        const r = f32(i / (n - 1))
        out[i] = f32(Math.tan(f32(f32(r * aMin) + f32(f32(1 - r) * aMax))))
      }
      return out
    }
  }
}

/**
 * ComfyUI KSampler.set_steps: with denoise < 0.9999 the schedule is built for int(steps / denoise) steps
 * and its last steps + 1 values run; `discard` drops the penultimate sigma (dpm_2, uni_pc, ...).
 */
export function comfyKSamplerSigmas(
  key: ComfyScheduleKey,
  table: NoiseTable,
  steps: number,
  denoise = 1,
  discard = false,
  o: ScheduleOptions = {},
): Float64Array {
  const calc = (n: number): Float64Array => {
    const s = comfySchedule(key, table, discard ? n + 1 : n, o)
    return discard ? discardPenultimate(s) : s
  }
  if (denoise > 0.9999) return calc(steps)
  if (!(denoise > 0)) throw new Error(`denoise must be greater than 0 (got ${denoise})`)
  const all = calc(Math.trunc(steps / denoise))
  return all.slice(Math.max(0, all.length - (steps + 1)))
}
