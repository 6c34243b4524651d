import { f32, npLinspace, sigmaToT as interpolatedT, torchLinspaceF32 } from '../schedulers/math'

/**
 * The noise table of an SD 1.x / SDXL eps model the way LDM (A1111, Forge) and ComfyUI build it, and
 * k-diffusion's sigma <-> t mappings. Everything is float32 where upstream holds float32 tensors.
 */
export interface NoiseTable {
  /** alphas_cumprod (float32 values), index = DDPM timestep. */
  alphasCumprod: Float32Array
  /** Ascending model sigmas ((1 - ac) / ac) ** 0.5, index = timestep. */
  sigmas: Float32Array
  logSigmas: Float32Array
  sigmaMin: number
  sigmaMax: number
}

export interface LinearScheduleConfig {
  numTrainTimesteps?: number
  betaStart?: number
  betaEnd?: number
}

/** LDM make_beta_schedule('linear'): linspace(sqrt(start), sqrt(end), n) ** 2 in float64; cumprod in float64. */
function alphasCumprodF64(c: LinearScheduleConfig): Float64Array {
  const n = c.numTrainTimesteps ?? 1000
  const lin = npLinspace(Math.sqrt(c.betaStart ?? 0.00085), Math.sqrt(c.betaEnd ?? 0.012), n)
  const out = new Float64Array(n)
  let p = 1
  for (let i = 0; i < n; i++) {
    p *= 1 - lin[i]! * lin[i]!
    out[i] = p
  }
  return out
}

function fromSigmas(alphasCumprod: Float32Array, sigmas: Float32Array, logSigmas: Float32Array): NoiseTable {
  return {
    alphasCumprod,
    sigmas,
    logSigmas,
    sigmaMin: sigmas[0]!,
    sigmaMax: sigmas[sigmas.length - 1]!,
  }
}

/**
 * A1111 / k-diffusion: alphas_cumprod is LatentDiffusion's float32 buffer (float64 cumprod rounded);
 * sigmas = ((1 - ac) / ac) ** 0.5 evaluated in float32, log_sigmas = log in float32.
 */
export function a1111Table(c: LinearScheduleConfig = {}): NoiseTable {
  const ac = Float32Array.from(alphasCumprodF64(c))
  return tableFromAlphasCumprod(ac)
}

/** The k-diffusion sigma table of a float32 alphas_cumprod (DiscreteEpsDDPMDenoiser). */
export function tableFromAlphasCumprod(ac: Float32Array): NoiseTable {
  const sigmas = new Float32Array(ac.length)
  const logSigmas = new Float32Array(ac.length)
  for (let i = 0; i < ac.length; i++) {
    const a = ac[i]!
    sigmas[i] = Math.sqrt(f32(f32(1 - a) / a))
    logSigmas[i] = Math.log(sigmas[i]!)
  }
  return fromSigmas(ac, sigmas, logSigmas)
}

/** ComfyUI ModelSamplingDiscrete: the same formula in float64, then rounded (log likewise). */
export function comfyTable(c: LinearScheduleConfig = {}): NoiseTable {
  const ac64 = alphasCumprodF64(c)
  const sigmas = new Float32Array(ac64.length)
  const logSigmas = new Float32Array(ac64.length)
  for (let i = 0; i < ac64.length; i++) {
    const s = Math.sqrt((1 - ac64[i]!) / ac64[i]!)
    sigmas[i] = s
    logSigmas[i] = Math.log(s)
  }
  return fromSigmas(Float32Array.from(ac64), sigmas, logSigmas)
}

/** k-diffusion sigma_to_t, interpolated in log sigma (A1111's default, enable_quantization off). */
export function sigmaToT(table: NoiseTable, sigma: number): number {
  return interpolatedT(sigma, table.logSigmas)
}

/** Nearest table index in log sigma (k-diffusion quantize=True, ComfyUI's timestep()). */
export function sigmaToTQuantized(table: NoiseTable, sigma: number): number {
  const ls = Math.log(f32(sigma))
  let best = 0
  let bestD = Infinity
  for (let i = 0; i < table.logSigmas.length; i++) {
    const d = Math.abs(f32(ls - table.logSigmas[i]!))
    if (d < bestD) {
      bestD = d
      best = i
    }
  }
  return best
}

/** k-diffusion t_to_sigma: log-linear interpolation between the neighbouring table entries. */
export function tToSigma(table: NoiseTable, t: number): number {
  const n = table.logSigmas.length
  const tt = Math.min(Math.max(f32(t), 0), n - 1)
  const lo = Math.floor(tt)
  const hi = Math.ceil(tt)
  const w = f32(tt - lo)
  const ls = f32(f32(f32(1 - w) * table.logSigmas[lo]!) + f32(w * table.logSigmas[hi]!))
  return f32(Math.exp(ls))
}

/** k-diffusion DiscreteSchedule.get_sigmas(n): t = linspace(T - 1, 0, n) (float32), append 0. */
export function uniformSigmas(table: NoiseTable, n: number): Float64Array {
  const ts = torchLinspaceF32(table.sigmas.length - 1, 0, n)
  const out = new Float64Array(n + 1)
  for (let i = 0; i < n; i++) out[i] = tToSigma(table, ts[i]!)
  return out
}

/**
 * A1111's LCM wrapper (LCMCompVisDenoiser): a 50-entry table alphas_cumprod[999 - 20k] (ascending),
 * t = 20 * argmin + 19, t_to_sigma on (t - 19) / 20.
 */
export interface LcmTable {
  table: NoiseTable
  skip: number
}

export function lcmTable(base: NoiseTable, originalSteps = 50): LcmTable {
  const T = base.alphasCumprod.length
  const skip = Math.floor(T / originalSteps)
  const ac = new Float32Array(originalSteps)
  for (let x = 0; x < originalSteps; x++) ac[originalSteps - 1 - x] = base.alphasCumprod[T - 1 - x * skip]!
  return { table: tableFromAlphasCumprod(ac), skip }
}

export function lcmSigmaToT(l: LcmTable, sigma: number): number {
  return sigmaToTQuantized(l.table, sigma) * l.skip + (l.skip - 1)
}

export function lcmTToSigma(l: LcmTable, t: number): number {
  const idx = Math.min(Math.max(f32((t - (l.skip - 1)) / l.skip), 0), l.table.sigmas.length - 1)
  return tToSigma(l.table, idx)
}

/** LCMCompVisDenoiser.get_sigmas(n): t = linspace(t(sigma_max), t(sigma_min), n), append 0. */
export function lcmSigmas(l: LcmTable, n: number): Float64Array {
  const start = lcmSigmaToT(l, l.table.sigmaMax)
  const end = lcmSigmaToT(l, l.table.sigmaMin)
  const ts = torchLinspaceF32(start, end, n)
  const out = new Float64Array(n + 1)
  for (let i = 0; i < n; i++) out[i] = lcmTToSigma(l, ts[i]!)
  return out
}
