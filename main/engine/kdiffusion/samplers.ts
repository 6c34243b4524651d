import { f32, torchLinspaceF32 } from '../schedulers/math'

/**
 * k-diffusion v0.0.16 samplers (and A1111's own Restart and LCM samplers) on flat float32 tensors.
 * `model(x, sigma)` returns the denoised prediction (x0) for the whole batch; `noise()` is
 * torch.randn_like(x), which A1111 routes to the image RNG, so draws are made exactly where
 * k-diffusion makes them (also the unused ones of Euler / Heun / DPM2).
 */

export type DenoiseFn = (x: Float32Array, sigma: number) => Promise<Float32Array>
export type NoiseFn = () => Float32Array

export interface SamplerStep {
  /** Sampler step (0-based). */
  i: number
  /** Latents after this step. */
  x: Float32Array
  denoised: Float32Array
  sigma: number
}

export interface SamplerArgs {
  model: DenoiseFn
  x: Float32Array
  sigmas: Float64Array
  noise: NoiseFn
  /** After every sampler step. */
  callback?: (s: SamplerStep) => void | Promise<void>
  /** Ancestral eta (A1111 opts.eta_ancestral, default 1). */
  eta?: number
  sNoise?: number
  sChurn?: number
  sTmin?: number
  sTmax?: number
  /** k-diffusion v0.0.16 draws eps every step of Euler / Heun / DPM2 even unused (A1111); ComfyUI does not. */
  skipUnusedDraws?: boolean
  signal?: AbortSignal
}

export type Sampler = (a: SamplerArgs) => Promise<Float32Array>

/** x + d * dt with d = (x - denoised) / sigma (to_d), in float32 steps as torch does. */
function eulerUpdate(x: Float32Array, denoised: Float32Array, sigma: number, dt: number): Float32Array {
  const out = new Float32Array(x.length)
  for (let k = 0; k < x.length; k++) {
    const d = f32(f32(x[k]! - denoised[k]!) / sigma)
    out[k] = x[k]! + f32(d * dt)
  }
  return out
}

function toD(x: Float32Array, sigma: number, denoised: Float32Array): Float32Array {
  const out = new Float32Array(x.length)
  for (let k = 0; k < x.length; k++) out[k] = f32(x[k]! - denoised[k]!) / sigma
  return out
}

function addScaled(x: Float32Array, v: Float32Array, s: number): Float32Array {
  const out = new Float32Array(x.length)
  for (let k = 0; k < x.length; k++) out[k] = x[k]! + f32(v[k]! * s)
  return out
}

/** k-diffusion get_ancestral_step. */
export function ancestralStep(from: number, to: number, eta = 1): { down: number; up: number } {
  if (!eta) return { down: to, up: 0 }
  const up = Math.min(to, eta * Math.sqrt((to ** 2 * (from ** 2 - to ** 2)) / from ** 2))
  return { down: Math.sqrt(to ** 2 - up ** 2), up }
}

function churnGamma(a: SamplerArgs, sigma: number): number {
  const churn = a.sChurn ?? 0
  const tmin = a.sTmin ?? 0
  const tmax = a.sTmax ?? Infinity
  return tmin <= sigma && sigma <= tmax ? Math.min(churn / (a.sigmas.length - 1), 2 ** 0.5 - 1) : 0
}

/** Draws eps (every step, as k-diffusion does), applies churn when gamma > 0. */
function churn(a: SamplerArgs, x: Float32Array, sigma: number): { x: Float32Array; sigmaHat: number } {
  const gamma = churnGamma(a, sigma)
  if (gamma <= 0 && a.skipUnusedDraws) return { x, sigmaHat: sigma }
  const eps = a.noise()
  const sigmaHat = sigma * (gamma + 1)
  if (gamma > 0) {
    const s = Math.sqrt(sigmaHat ** 2 - sigma ** 2) * (a.sNoise ?? 1)
    return { x: addScaled(x, eps, s), sigmaHat }
  }
  return { x, sigmaHat }
}

export const sampleEuler: Sampler = async (a) => {
  let x = a.x
  const s = a.sigmas
  for (let i = 0; i < s.length - 1; i++) {
    a.signal?.throwIfAborted()
    const c = churn(a, x, s[i]!)
    x = c.x
    const denoised = await a.model(x, c.sigmaHat)
    x = eulerUpdate(x, denoised, c.sigmaHat, s[i + 1]! - c.sigmaHat)
    await a.callback?.({ i, x, denoised, sigma: s[i]! })
  }
  return x
}

export const sampleEulerAncestral: Sampler = async (a) => {
  let x = a.x
  const s = a.sigmas
  for (let i = 0; i < s.length - 1; i++) {
    a.signal?.throwIfAborted()
    const denoised = await a.model(x, s[i]!)
    const { down, up } = ancestralStep(s[i]!, s[i + 1]!, a.eta ?? 1)
    x = eulerUpdate(x, denoised, s[i]!, down - s[i]!)
    if (s[i + 1]! > 0) x = addScaled(x, a.noise(), (a.sNoise ?? 1) * up)
    await a.callback?.({ i, x, denoised, sigma: s[i]! })
  }
  return x
}

export const sampleHeun: Sampler = async (a) => {
  let x = a.x
  const s = a.sigmas
  for (let i = 0; i < s.length - 1; i++) {
    a.signal?.throwIfAborted()
    const c = churn(a, x, s[i]!)
    x = c.x
    const denoised = await a.model(x, c.sigmaHat)
    const d = toD(x, c.sigmaHat, denoised)
    const dt = s[i + 1]! - c.sigmaHat
    if (s[i + 1] === 0) x = addScaled(x, d, dt)
    else {
      const x2 = addScaled(x, d, dt)
      const den2 = await a.model(x2, s[i + 1]!)
      const d2 = toD(x2, s[i + 1]!, den2)
      const dp = new Float32Array(d.length)
      for (let k = 0; k < d.length; k++) dp[k] = f32(d[k]! + d2[k]!) / 2
      x = addScaled(x, dp, dt)
    }
    await a.callback?.({ i, x, denoised, sigma: s[i]! })
  }
  return x
}

/** exp(lerp(log a, log b, 0.5)) in float32. */
function logMid(a: number, b: number): number {
  const la = f32(Math.log(a))
  const lb = f32(Math.log(b))
  return f32(Math.exp(f32(la + f32(0.5 * f32(lb - la)))))
}

export const sampleDpm2: Sampler = async (a) => {
  let x = a.x
  const s = a.sigmas
  for (let i = 0; i < s.length - 1; i++) {
    a.signal?.throwIfAborted()
    const c = churn(a, x, s[i]!)
    x = c.x
    const denoised = await a.model(x, c.sigmaHat)
    const d = toD(x, c.sigmaHat, denoised)
    if (s[i + 1] === 0) x = addScaled(x, d, s[i + 1]! - c.sigmaHat)
    else {
      const mid = logMid(c.sigmaHat, s[i + 1]!)
      const x2 = addScaled(x, d, mid - c.sigmaHat)
      const den2 = await a.model(x2, mid)
      x = addScaled(x, toD(x2, mid, den2), s[i + 1]! - c.sigmaHat)
    }
    await a.callback?.({ i, x, denoised, sigma: s[i]! })
  }
  return x
}

export const sampleDpm2Ancestral: Sampler = async (a) => {
  let x = a.x
  const s = a.sigmas
  for (let i = 0; i < s.length - 1; i++) {
    a.signal?.throwIfAborted()
    const denoised = await a.model(x, s[i]!)
    const { down, up } = ancestralStep(s[i]!, s[i + 1]!, a.eta ?? 1)
    const d = toD(x, s[i]!, denoised)
    if (down === 0) x = addScaled(x, d, down - s[i]!)
    else {
      const mid = logMid(s[i]!, down)
      const x2 = addScaled(x, d, mid - s[i]!)
      const den2 = await a.model(x2, mid)
      x = addScaled(x, toD(x2, mid, den2), down - s[i]!)
      x = addScaled(x, a.noise(), (a.sNoise ?? 1) * up)
    }
    await a.callback?.({ i, x, denoised, sigma: s[i]! })
  }
  return x
}

/** Exact integral of the LMS Lagrange basis polynomial (what scipy's quad returns for it). */
export function lmsCoefficient(order: number, t: ArrayLike<number>, i: number, j: number): number {
  const basis = (tau: number): number => {
    let prod = 1
    for (let k = 0; k < order; k++) {
      if (j === k) continue
      prod *= (tau - t[i - k]!) / (t[i - j]! - t[i - k]!)
    }
    return prod
  }
  // 5-point Gauss-Legendre is exact for the degree <= 3 polynomials.
  const X = [0, -0.5384693101056831, 0.5384693101056831, -0.906179845938664, 0.906179845938664]
  const W = [
    0.5688888888888889, 0.47862867049936647, 0.47862867049936647, 0.23692688505618908, 0.23692688505618908,
  ]
  const lo = t[i]!
  const hi = t[i + 1]!
  const half = (hi - lo) / 2
  const mid = (hi + lo) / 2
  let sum = 0
  for (let q = 0; q < X.length; q++) sum += W[q]! * basis(mid + half * X[q]!)
  return sum * half
}

export function makeLms(order = 4): Sampler {
  return async (a) => {
    let x = a.x
    const s = a.sigmas
    const ds: Float32Array[] = []
    for (let i = 0; i < s.length - 1; i++) {
      a.signal?.throwIfAborted()
      const denoised = await a.model(x, s[i]!)
      ds.push(toD(x, s[i]!, denoised))
      if (ds.length > order) ds.shift()
      const cur = Math.min(i + 1, order)
      const coeffs = Array.from({ length: cur }, (_, j) => lmsCoefficient(cur, s, i, j))
      const out = x.slice()
      const rev = ds.slice().reverse()
      const acc = new Float32Array(x.length)
      for (let j = 0; j < cur; j++) {
        const c = f32(coeffs[j]!)
        const d = rev[j]!
        for (let k = 0; k < x.length; k++) acc[k] = acc[k]! + f32(c * d[k]!)
      }
      for (let k = 0; k < x.length; k++) out[k] = x[k]! + acc[k]!
      x = out
      await a.callback?.({ i, x, denoised, sigma: s[i]! })
    }
    return x
  }
}

export const sampleLms = makeLms(4)

export const sampleDpmpp2m: Sampler = async (a) => {
  let x = a.x
  const s = a.sigmas
  let old: Float32Array | undefined
  for (let i = 0; i < s.length - 1; i++) {
    a.signal?.throwIfAborted()
    const denoised = await a.model(x, s[i]!)
    const next = s[i + 1]!
    const out = new Float32Array(x.length)
    if (next === 0) out.set(denoised)
    else {
      const t = -Math.log(s[i]!)
      const tn = -Math.log(next)
      const h = tn - t
      const ratio = f32(next / s[i]!)
      const e = f32(-Math.expm1(-h))
      if (!old) for (let k = 0; k < x.length; k++) out[k] = f32(ratio * x[k]!) + f32(e * denoised[k]!)
      else {
        const hLast = t + Math.log(s[i - 1]!)
        const r = hLast / h
        const c1 = f32(1 + 1 / (2 * r))
        const c2 = f32(1 / (2 * r))
        for (let k = 0; k < x.length; k++) {
          const dd = f32(f32(c1 * denoised[k]!) - f32(c2 * old[k]!))
          out[k] = f32(ratio * x[k]!) + f32(e * dd)
        }
      }
    }
    old = denoised
    x = out
    await a.callback?.({ i, x, denoised, sigma: s[i]! })
  }
  return x
}

export const sampleDpmpp2sAncestral: Sampler = async (a) => {
  let x = a.x
  const s = a.sigmas
  for (let i = 0; i < s.length - 1; i++) {
    a.signal?.throwIfAborted()
    const denoised = await a.model(x, s[i]!)
    const { down, up } = ancestralStep(s[i]!, s[i + 1]!, a.eta ?? 1)
    if (down === 0) x = eulerUpdate(x, denoised, s[i]!, down - s[i]!)
    else {
      const t = -Math.log(s[i]!)
      const tn = -Math.log(down)
      const h = tn - t
      const sMid = t + 0.5 * h
      const sigmaS = f32(Math.exp(-sMid))
      const r1 = f32(sigmaS / s[i]!)
      const e1 = f32(-Math.expm1(-h * 0.5))
      const x2 = new Float32Array(x.length)
      for (let k = 0; k < x.length; k++) x2[k] = f32(r1 * x[k]!) + f32(e1 * denoised[k]!)
      const den2 = await a.model(x2, sigmaS)
      const r2 = f32(down / s[i]!)
      const e2 = f32(-Math.expm1(-h))
      const out = new Float32Array(x.length)
      for (let k = 0; k < x.length; k++) out[k] = f32(r2 * x[k]!) + f32(e2 * den2[k]!)
      x = out
    }
    if (s[i + 1]! > 0) x = addScaled(x, a.noise(), (a.sNoise ?? 1) * up)
    await a.callback?.({ i, x, denoised, sigma: s[i]! })
  }
  return x
}

/**
 * k-diffusion sample_dpm_fast (DPMSolver.dpm_solver_fast): `nfe` model evaluations between sigma_max
 * and sigma_min (the schedule's first and last non-zero sigmas), orders 3, ..., 3, 2, 1 / nfe % 3.
 */
export const sampleDpmFast: Sampler = async (a) => {
  const s = a.sigmas
  const nfe = s.length - 1
  const sigmaMax = s[0]!
  const sigmaMin = s[s.length - 1] === 0 ? s[s.length - 2]! : s[s.length - 1]!
  if (!(sigmaMin > 0 && sigmaMax > 0)) throw new Error('DPM fast: sigma_min and sigma_max must not be 0')
  const eta = a.eta ?? 0
  const sNoise = a.sNoise ?? 1
  const sig = (t: number): number => Math.exp(-t)
  const tOf = (sigma: number): number => -Math.log(sigma)
  const tStart = f32(tOf(sigmaMax))
  const tEnd = f32(tOf(sigmaMin))
  const m = Math.floor(nfe / 3) + 1
  const ts = torchLinspaceF32(tStart, tEnd, m + 1)
  const orders =
    nfe % 3 === 0 ? [...Array<number>(m - 2).fill(3), 2, 1] : [...Array<number>(m - 1).fill(3), nfe % 3]
  let x = a.x
  const epsAt = async (xx: Float32Array, t: number): Promise<Float32Array> => {
    const sigma = sig(t)
    const den = await a.model(xx, sigma)
    const out = new Float32Array(xx.length)
    for (let k = 0; k < xx.length; k++) out[k] = f32(xx[k]! - den[k]!) / sigma
    return out
  }
  const lin = (terms: [number, Float32Array][]): Float32Array => {
    const out = new Float32Array(terms[0]![1].length)
    for (const [c, v] of terms) for (let k = 0; k < out.length; k++) out[k] = out[k]! + f32(c * v[k]!)
    return out
  }
  for (let i = 0; i < orders.length; i++) {
    a.signal?.throwIfAborted()
    const t = ts[i]!
    const tNext = ts[i + 1]!
    let tn = tNext
    let su = 0
    if (eta) {
      const { down } = ancestralStep(sig(t), sig(tNext), eta)
      tn = Math.min(tEnd, tOf(down))
      su = Math.sqrt(Math.max(0, sig(tNext) ** 2 - sig(tn) ** 2))
    }
    const eps = await epsAt(x, t)
    const denoised = lin([
      [1, x],
      [-sig(t), eps],
    ])
    const h = tn - t
    const order = orders[i]!
    if (order === 1)
      x = lin([
        [1, x],
        [-sig(tn) * Math.expm1(h), eps],
      ])
    else if (order === 2) {
      const r1 = 0.5
      const s1 = t + r1 * h
      const u1 = lin([
        [1, x],
        [-sig(s1) * Math.expm1(r1 * h), eps],
      ])
      const e1 = await epsAt(u1, s1)
      const c = (sig(tn) / (2 * r1)) * Math.expm1(h)
      x = lin([
        [1, x],
        [-sig(tn) * Math.expm1(h) + c, eps],
        [-c, e1],
      ])
    } else {
      const r1 = 1 / 3
      const r2 = 2 / 3
      const s1 = t + r1 * h
      const s2 = t + r2 * h
      const u1 = lin([
        [1, x],
        [-sig(s1) * Math.expm1(r1 * h), eps],
      ])
      const e1 = await epsAt(u1, s1)
      const c2 = sig(s2) * (r2 / r1) * (Math.expm1(r2 * h) / (r2 * h) - 1)
      const u2 = lin([
        [1, x],
        [-sig(s2) * Math.expm1(r2 * h) + c2, eps],
        [-c2, e1],
      ])
      const e2 = await epsAt(u2, s2)
      const c3 = (sig(tn) / r2) * (Math.expm1(h) / h - 1)
      x = lin([
        [1, x],
        [-sig(tn) * Math.expm1(h) + c3, eps],
        [-c3, e2],
      ])
    }
    if (eta) x = addScaled(x, a.noise(), su * sNoise)
    await a.callback?.({ i, x, denoised, sigma: sig(t) })
  }
  return x
}

/** k-diffusion get_sigmas_karras as A1111's Restart sampler calls it (float32, trailing 0). */
function karrasF32(n: number, sigmaMin: number, sigmaMax: number, rho = 7): Float64Array {
  const out = new Float64Array(n + 1)
  const minInv = sigmaMin ** (1 / rho)
  const maxInv = sigmaMax ** (1 / rho)
  const span = f32(minInv - maxInv)
  for (let i = 0; i < n; i++) {
    const ramp = n === 1 ? 0 : f32(i / (n - 1))
    out[i] = f32(f32(f32(maxInv) + f32(ramp * span)) ** rho)
  }
  return out
}

function argminAbs(s: Float64Array, v: number): number {
  let best = 0
  for (let i = 1; i < s.length; i++) if (Math.abs(f32(s[i]! - v)) < Math.abs(f32(s[best]! - v))) best = i
  return best
}

/** A1111 restart_sampler (sd_samplers_extra.py) with its automatic restart list. */
export const sampleRestart: Sampler = async (a) => {
  let s = a.sigmas
  const steps = s.length - 1
  let restart = new Map<number, [number, number, number]>()
  if (steps >= 20) {
    let rSteps = 9
    let rTimes = 1
    if (steps >= 36) {
      rSteps = Math.floor(steps / 4)
      rTimes = 2
    }
    s = karrasF32(steps - rSteps * rTimes, s[s.length - 2]!, s[0]!)
    restart = new Map([[argminAbs(s, 0.1), [rSteps + 1, rTimes, 2]]])
  }
  const pairs: [number, number][] = []
  for (let i = 0; i < s.length - 1; i++) {
    pairs.push([s[i]!, s[i + 1]!])
    const r = restart.get(i + 1)
    if (r) {
      const [rs, rt, rmax] = r
      const maxIdx = argminAbs(s, rmax)
      if (maxIdx < i + 1) {
        const sr = karrasF32(rs, s[i + 1]!, s[maxIdx]!).slice(0, rs)
        for (let k = 0; k < rt; k++) for (let j = 0; j < sr.length - 1; j++) pairs.push([sr[j]!, sr[j + 1]!])
      }
    }
  }
  let x = a.x
  let last: number | undefined
  for (let i = 0; i < pairs.length; i++) {
    a.signal?.throwIfAborted()
    const [old, next] = pairs[i]!
    if (last === undefined) last = old
    else if (last < old)
      x = addScaled(x, a.noise(), (a.sNoise ?? 1) * Math.sqrt(f32(old ** 2) - f32(last ** 2)))
    const denoised = await a.model(x, old)
    const d = toD(x, old, denoised)
    const dt = next - old
    if (next === 0) x = addScaled(x, d, dt)
    else {
      const x2 = addScaled(x, d, dt)
      const den2 = await a.model(x2, next)
      const d2 = toD(x2, next, den2)
      const dp = new Float32Array(d.length)
      for (let k = 0; k < d.length; k++) dp[k] = f32(d[k]! + d2[k]!) / 2
      x = addScaled(x, dp, dt)
    }
    last = next
    await a.callback?.({ i, x, denoised, sigma: old })
  }
  return x
}

/** A1111 sample_lcm: x = denoised, then fresh noise at the next sigma. */
export const sampleLcm: Sampler = async (a) => {
  let x = a.x
  const s = a.sigmas
  for (let i = 0; i < s.length - 1; i++) {
    a.signal?.throwIfAborted()
    const denoised = await a.model(x, s[i]!)
    x = denoised.slice()
    if (s[i + 1]! > 0) x = addScaled(x, a.noise(), s[i + 1]!)
    await a.callback?.({ i, x, denoised, sigma: s[i]! })
  }
  return x
}

/**
 * The DPM++ SDE family (k-diffusion sample_dpmpp_sde / sample_dpmpp_2m_sde / sample_dpmpp_3m_sde).
 *
 * Noise: k-diffusion and A1111 draw these samplers' noise from a torchsde BrownianTree seeded with the
 * image seed (`noise_sampler(sigma, sigma_next)` = the Brownian increment over [sigma_next, sigma] divided
 * by its standard deviation). That tree (torchsde's BrownianInterval with its SeedSequence-derived child
 * seeds and bridge sampling) is not reproduced here: every `noise_sampler` call is one standard-normal draw
 * from the image RNG instead (the `default_noise_sampler` of later k-diffusion / ComfyUI versions), in call
 * order. The update formulas are upstream's, so with eta = 0 (no noise) the results are exact, and with
 * eta > 0 the images follow the same distribution but not A1111's pixels (see the README).
 */
export interface SdeOptions {
  /** sample_dpmpp_2m_sde solver_type. */
  solver?: 'midpoint' | 'heun'
}

/** x * a + v * b in float32 steps. */
function axpby(x: Float32Array, a: number, v: Float32Array, b: number): Float32Array {
  const out = new Float32Array(x.length)
  const fa = f32(a)
  const fb = f32(b)
  for (let k = 0; k < x.length; k++) out[k] = f32(fa * x[k]!) + f32(fb * v[k]!)
  return out
}

/** k-diffusion sample_dpmpp_sde (DPM-Solver++ stochastic, singlestep, r = 1/2): two model calls a step. */
export const sampleDpmppSde: Sampler = async (a) => {
  let x = a.x
  const s = a.sigmas
  const eta = a.eta ?? 1
  const sNoise = a.sNoise ?? 1
  const r = 0.5
  const fac = 1 / (2 * r)
  const sigmaFn = (t: number): number => Math.exp(-t)
  const tFn = (sigma: number): number => -Math.log(sigma)
  for (let i = 0; i < s.length - 1; i++) {
    a.signal?.throwIfAborted()
    const denoised = await a.model(x, s[i]!)
    if (s[i + 1] === 0) x = eulerUpdate(x, denoised, s[i]!, s[i + 1]! - s[i]!)
    else {
      const t = tFn(s[i]!)
      const tNext = tFn(s[i + 1]!)
      const h = tNext - t
      const sMid = t + h * r
      // Step 1
      const st1 = ancestralStep(sigmaFn(t), sigmaFn(sMid), eta)
      const s1 = tFn(st1.down)
      let x2 = axpby(x, sigmaFn(s1) / sigmaFn(t), denoised, -Math.expm1(t - s1))
      if (eta) x2 = addScaled(x2, a.noise(), sNoise * st1.up)
      const denoised2 = await a.model(x2, f32(sigmaFn(sMid)))
      // Step 2
      const st2 = ancestralStep(sigmaFn(t), sigmaFn(tNext), eta)
      const tn = tFn(st2.down)
      const dd = axpby(denoised, 1 - fac, denoised2, fac)
      x = axpby(x, sigmaFn(tn) / sigmaFn(t), dd, -Math.expm1(t - tn))
      if (eta) x = addScaled(x, a.noise(), sNoise * st2.up)
    }
    await a.callback?.({ i, x, denoised, sigma: s[i]! })
  }
  return x
}

/** k-diffusion sample_dpmpp_2m_sde (DPM-Solver++(2M) SDE), midpoint or Heun solver. */
export function makeDpmpp2mSde(o: SdeOptions = {}): Sampler {
  const solver = o.solver ?? 'midpoint'
  return async (a) => {
    let x = a.x
    const s = a.sigmas
    const eta = a.eta ?? 1
    const sNoise = a.sNoise ?? 1
    let old: Float32Array | undefined
    let hLast = 0
    for (let i = 0; i < s.length - 1; i++) {
      a.signal?.throwIfAborted()
      const denoised = await a.model(x, s[i]!)
      let h = hLast
      if (s[i + 1] === 0) x = denoised.slice()
      else {
        const t = -Math.log(s[i]!)
        const sn = -Math.log(s[i + 1]!)
        h = sn - t
        const etaH = eta * h
        const e = -Math.expm1(-h - etaH)
        x = axpby(x, (s[i + 1]! / s[i]!) * Math.exp(-etaH), denoised, e)
        if (old) {
          const rr = hLast / h
          const c = solver === 'heun' ? (e / (-h - etaH) + 1) * (1 / rr) : 0.5 * e * (1 / rr)
          const fc = f32(c)
          for (let k = 0; k < x.length; k++) x[k] = x[k]! + f32(fc * f32(denoised[k]! - old[k]!))
        }
        if (eta) x = addScaled(x, a.noise(), s[i + 1]! * Math.sqrt(-Math.expm1(-2 * etaH)) * sNoise)
      }
      old = denoised
      hLast = h
      await a.callback?.({ i, x, denoised, sigma: s[i]! })
    }
    return x
  }
}

export const sampleDpmpp2mSde = makeDpmpp2mSde({ solver: 'midpoint' })
export const sampleDpmpp2mSdeHeun = makeDpmpp2mSde({ solver: 'heun' })

/** k-diffusion sample_dpmpp_3m_sde (DPM-Solver++(3M) SDE): 1st, then 2nd, then 3rd order multistep. */
export const sampleDpmpp3mSde: Sampler = async (a) => {
  let x = a.x
  const s = a.sigmas
  const eta = a.eta ?? 1
  const sNoise = a.sNoise ?? 1
  let d1: Float32Array | undefined
  let d2: Float32Array | undefined
  let h1: number | undefined
  let h2: number | undefined
  for (let i = 0; i < s.length - 1; i++) {
    a.signal?.throwIfAborted()
    const denoised = await a.model(x, s[i]!)
    let h: number | undefined
    if (s[i + 1] === 0) x = denoised.slice()
    else {
      const t = -Math.log(s[i]!)
      const sn = -Math.log(s[i + 1]!)
      h = sn - t
      const hEta = h * (eta + 1)
      x = axpby(x, Math.exp(-hEta), denoised, -Math.expm1(-hEta))
      const phi2 = Math.expm1(-hEta) / hEta + 1
      if (h2 !== undefined && d1 && d2) {
        const r0 = h1! / h
        const r1 = h2 / h
        const phi3 = phi2 / hEta - 0.5
        for (let k = 0; k < x.length; k++) {
          const d10 = f32(f32(denoised[k]! - d1[k]!) / r0)
          const d11 = f32(f32(d1[k]! - d2[k]!) / r1)
          const dA = d10 + f32(f32((d10 - d11) * r0) / (r0 + r1))
          const dB = f32((d10 - d11) / (r0 + r1))
          x[k] = x[k]! + f32(phi2 * dA) - f32(phi3 * dB)
        }
      } else if (h1 !== undefined && d1) {
        const rr = h1 / h
        for (let k = 0; k < x.length; k++) x[k] = x[k]! + f32(phi2 * f32(f32(denoised[k]! - d1[k]!) / rr))
      }
      if (eta) x = addScaled(x, a.noise(), s[i + 1]! * Math.sqrt(-Math.expm1(-2 * h * eta)) * sNoise)
    }
    d2 = d1
    d1 = denoised
    h2 = h1
    h1 = h
    await a.callback?.({ i, x, denoised, sigma: s[i]! })
  }
  return x
}

/** Steps a sampler function runs over a sigma list (for progress totals). */
export function samplerSteps(sigmas: Float64Array): number {
  return sigmas.length - 1
}
