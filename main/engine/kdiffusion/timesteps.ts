import { f32 } from '../schedulers/math'

/**
 * A1111's timestep samplers (sd_samplers_timesteps_impl.py): DDIM, PLMS and UniPC walk integer DDPM
 * timesteps (CompVisSampler.get_timesteps) and get the guided eps prediction directly.
 */

/** Guided eps for x at UNet timestep t. */
export type EpsFn = (x: Float32Array, t: number) => Promise<Float32Array>

export interface TimestepSamplerArgs {
  model: EpsFn
  x: Float32Array
  /** Ascending timesteps (get_timesteps, possibly cut for img2img). */
  timesteps: number[]
  alphasCumprod: Float32Array
  noise: () => Float32Array
  eta?: number
  callback?: (s: { i: number; x: Float32Array; denoised: Float32Array }) => void | Promise<void>
  signal?: AbortSignal
  /** UniPC img2img: the schedule starts at timesteps[-1] / 1000 + 1 / 1000 instead of 1. */
  img2img?: boolean
}

/** CompVisSampler.get_timesteps: clip(arange(0, 1000, 1000 // steps) + 1, 0, 999). */
export function a1111Timesteps(steps: number, trainSteps = 1000): number[] {
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`steps must be a positive integer (got ${steps})`)
  const stride = Math.floor(trainSteps / steps)
  if (stride < 1) throw new Error(`${steps} steps is more than the model's ${trainSteps} timesteps`)
  const out: number[] = []
  for (let v = 0; v < trainSteps; v += stride) out.push(Math.min(Math.max(v + 1, 0), trainSteps - 1))
  return out
}

export async function sampleDdim(a: TimestepSamplerArgs): Promise<Float32Array> {
  const ts = a.timesteps
  const ac = a.alphasCumprod
  const eta = a.eta ?? 0
  let x = a.x
  for (let i = 0; i < ts.length - 1; i++) {
    a.signal?.throwIfAborted()
    const index = ts.length - 1 - i
    const e = await a.model(x, ts[index]!)
    const at = ac[ts[index]!]!
    const aprev = ac[index - 1 >= 0 ? ts[index - 1]! : 0]!
    const sigma = eta * Math.sqrt(((1 - aprev) / (1 - at)) * (1 - at / aprev))
    const sqrtOneMinusAt = f32(Math.sqrt(f32(1 - at)))
    const sqrtAt = f32(Math.sqrt(at))
    const sqrtAprev = f32(Math.sqrt(aprev))
    const dirC = f32(Math.sqrt(f32(1 - aprev - sigma ** 2)))
    const z = a.noise()
    const pred = new Float32Array(x.length)
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) {
      pred[k] = f32(x[k]! - f32(sqrtOneMinusAt * e[k]!)) / sqrtAt
      out[k] = f32(f32(sqrtAprev * pred[k]!) + f32(dirC * e[k]!)) + f32(f32(sigma) * z[k]!)
    }
    x = out
    await a.callback?.({ i, x, denoised: pred })
  }
  return x
}

export async function samplePlms(a: TimestepSamplerArgs): Promise<Float32Array> {
  const ts = a.timesteps
  const ac = a.alphasCumprod
  let x = a.x
  const old: Float32Array[] = []
  const prev = (e: Float32Array, index: number): { xPrev: Float32Array; pred: Float32Array } => {
    const at = ac[ts[index]!]!
    const aprev = ac[index - 1 >= 0 ? ts[index - 1]! : 0]!
    const s1 = f32(Math.sqrt(f32(1 - at)))
    const sa = f32(Math.sqrt(at))
    const sp = f32(Math.sqrt(aprev))
    const dc = f32(Math.sqrt(1 - aprev))
    const pred = new Float32Array(x.length)
    const xPrev = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) {
      pred[k] = f32(x[k]! - f32(s1 * e[k]!)) / sa
      xPrev[k] = f32(sp * pred[k]!) + f32(dc * e[k]!)
    }
    return { xPrev, pred }
  }
  for (let i = 0; i < ts.length - 1; i++) {
    a.signal?.throwIfAborted()
    const index = ts.length - 1 - i
    const tNext = ts[Math.max(index - 1, 0)]!
    const e = await a.model(x, ts[index]!)
    const n = e.length
    const ep = new Float32Array(n)
    if (old.length === 0) {
      const { xPrev } = prev(e, index)
      const en = await a.model(xPrev, tNext)
      for (let k = 0; k < n; k++) ep[k] = f32(e[k]! + en[k]!) / 2
    } else if (old.length === 1) {
      const o1 = old[old.length - 1]!
      for (let k = 0; k < n; k++) ep[k] = f32(f32(3 * e[k]!) - o1[k]!) / 2
    } else if (old.length === 2) {
      const o1 = old[old.length - 1]!
      const o2 = old[old.length - 2]!
      for (let k = 0; k < n; k++) ep[k] = f32(f32(f32(23 * e[k]!) - f32(16 * o1[k]!)) + f32(5 * o2[k]!)) / 12
    } else {
      const o1 = old[old.length - 1]!
      const o2 = old[old.length - 2]!
      const o3 = old[old.length - 3]!
      for (let k = 0; k < n; k++)
        ep[k] = f32(f32(f32(f32(55 * e[k]!) - f32(59 * o1[k]!)) + f32(37 * o2[k]!)) - f32(9 * o3[k]!)) / 24
    }
    const { xPrev, pred } = prev(ep, index)
    old.push(e)
    if (old.length >= 4) old.shift()
    x = xPrev
    await a.callback?.({ i, x, denoised: pred })
  }
  return x
}

/** NoiseScheduleVP('discrete'): piecewise-linear log alpha over t in (0, 1]. */
class DiscreteVP {
  readonly tArray: Float64Array
  readonly logAlpha: Float64Array
  readonly totalN: number

  constructor(ac: Float32Array) {
    this.totalN = ac.length
    this.logAlpha = Float64Array.from(ac, (v) => f32(0.5 * Math.log(v)))
    this.tArray = new Float64Array(this.totalN)
    for (let i = 0; i < this.totalN; i++) this.tArray[i] = f32((i + 1) / this.totalN)
  }

  logMean(t: number): number {
    const xs = this.tArray
    const ys = this.logAlpha
    const n = xs.length
    let lo: number
    if (t <= xs[0]!) lo = 0
    else if (t >= xs[n - 1]!) lo = n - 2
    else {
      lo = 0
      while (lo < n - 2 && xs[lo + 1]! < t) lo++
    }
    const x0 = xs[lo]!
    const x1 = xs[lo + 1]!
    return ys[lo]! + ((t - x0) * (ys[lo + 1]! - ys[lo]!)) / (x1 - x0)
  }

  alpha(t: number): number {
    return Math.exp(this.logMean(t))
  }

  std(t: number): number {
    return Math.sqrt(1 - Math.exp(2 * this.logMean(t)))
  }

  lambda(t: number): number {
    const l = this.logMean(t)
    return l - 0.5 * Math.log(1 - Math.exp(2 * l))
  }
}

/** Solves a small dense system (Gaussian elimination with partial pivoting). */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length
  const M = A.map((r, i) => [...r.slice(0, n), b[i]!])
  for (let c = 0; c < n; c++) {
    let p = c
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r
    ;[M[c], M[p]] = [M[p]!, M[c]!]
    for (let r = c + 1; r < n; r++) {
      const f = M[r]![c]! / M[c]![c]!
      for (let k = c; k <= n; k++) M[r]![k] = M[r]![k]! - f * M[c]![k]!
    }
  }
  const x = new Array<number>(n).fill(0)
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r]![n]!
    for (let k = r + 1; k < n; k++) s -= M[r]![k]! * x[k]!
    x[r] = s / M[r]![r]!
  }
  return x
}

export interface UniPcOptions {
  order?: number
  variant?: 'bh1' | 'bh2'
  lowerOrderFinal?: boolean
}

/**
 * A1111 unipc(): UniPC multistep (data prediction) on a time-uniform grid of len(timesteps) steps from
 * t = 1 (or the img2img start) to 1/1000; the UNet gets t_input = (t - 1/1000) * 1000.
 */
export async function sampleUniPc(a: TimestepSamplerArgs, o: UniPcOptions = {}): Promise<Float32Array> {
  const ns = new DiscreteVP(a.alphasCumprod)
  const order = o.order ?? 3
  const variant = o.variant ?? 'bh1'
  const lowerOrderFinal = o.lowerOrderFinal ?? true
  const steps = a.timesteps.length
  if (steps < order) throw new Error(`UniPC: order ${order} needs at least ${order} steps (got ${steps})`)
  const t0 = 1 / ns.totalN
  const tT = a.img2img ? a.timesteps[a.timesteps.length - 1]! / 1000 + 1 / 1000 : 1
  const grid = Array.from({ length: steps + 1 }, (_, i) => f32(tT + ((t0 - tT) * i) / steps))
  const modelX0 = async (x: Float32Array, t: number): Promise<Float32Array> => {
    const e = await a.model(x, f32((t - 1 / ns.totalN) * 1000))
    const al = ns.alpha(t)
    const sd = ns.std(t)
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) out[k] = f32(x[k]! - f32(sd * e[k]!)) / al
    return out
  }
  const update = async (
    x: Float32Array,
    models: Float32Array[],
    tsPrev: number[],
    t: number,
    ord: number,
    useCorrector: boolean,
  ): Promise<{ x: Float32Array; modelT?: Float32Array }> => {
    const tp0 = tsPrev[tsPrev.length - 1]!
    const lp0 = ns.lambda(tp0)
    const lt = ns.lambda(t)
    const m0 = models[models.length - 1]!
    const sp0 = ns.std(tp0)
    const st = ns.std(t)
    const alphaT = Math.exp(ns.logMean(t))
    const h = lt - lp0
    const rks: number[] = []
    const D1s: Float32Array[] = []
    for (let i = 1; i < ord; i++) {
      const tpi = tsPrev[tsPrev.length - 1 - i]!
      const mi = models[models.length - 1 - i]!
      const rk = (ns.lambda(tpi) - lp0) / h
      rks.push(rk)
      const d = new Float32Array(x.length)
      for (let k = 0; k < x.length; k++) d[k] = f32(mi[k]! - m0[k]!) / rk
      D1s.push(d)
    }
    rks.push(1)
    const hh = -h
    const hPhi1 = Math.expm1(hh)
    let hPhiK = hPhi1 / hh - 1
    let fact = 1
    const Bh = variant === 'bh1' ? hh : Math.expm1(hh)
    const R: number[][] = []
    const b: number[] = []
    for (let i = 1; i <= ord; i++) {
      R.push(rks.map((r) => r ** (i - 1)))
      b.push((hPhiK * fact) / Bh)
      fact *= i + 1
      hPhiK = hPhiK / hh - 1 / fact
    }
    let rhosP: number[] = []
    if (D1s.length > 0)
      rhosP =
        ord === 2
          ? [0.5]
          : solve(
              R.slice(0, -1).map((r) => r.slice(0, -1)),
              b.slice(0, -1),
            )
    const rhosC = useCorrector ? (ord === 1 ? [0.5] : solve(R, b)) : []
    const ratio = st / sp0
    const base = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) base[k] = f32(ratio * x[k]!) - f32(alphaT * hPhi1 * m0[k]!)
    const xt = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) {
      let pred = 0
      for (let j = 0; j < D1s.length; j++) pred += rhosP[j]! * D1s[j]![k]!
      xt[k] = base[k]! - f32(alphaT * Bh * pred)
    }
    if (!useCorrector) return { x: xt }
    const modelT = await modelX0(xt, t)
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) {
      let corr = 0
      for (let j = 0; j < D1s.length; j++) corr += rhosC[j]! * D1s[j]![k]!
      out[k] = base[k]! - f32(alphaT * Bh * (corr + rhosC[rhosC.length - 1]! * f32(modelT[k]! - m0[k]!)))
    }
    return { x: out, modelT }
  }

  let x = a.x
  const models = [await modelX0(x, grid[0]!)]
  const tsPrev = [grid[0]!]
  for (let io = 1; io < order; io++) {
    a.signal?.throwIfAborted()
    const t = grid[io]!
    const r = await update(x, models, tsPrev, t, io, true)
    x = r.x
    models.push(r.modelT ?? (await modelX0(x, t)))
    tsPrev.push(t)
    await a.callback?.({ i: io - 1, x, denoised: models[models.length - 1]! })
  }
  for (let step = order; step <= steps; step++) {
    a.signal?.throwIfAborted()
    const t = grid[step]!
    const ord = lowerOrderFinal ? Math.min(order, steps + 1 - step) : order
    const useCorrector = step !== steps
    const r = await update(x, models, tsPrev, t, ord, useCorrector)
    x = r.x
    for (let i = 0; i < order - 1; i++) {
      tsPrev[i] = tsPrev[i + 1]!
      models[i] = models[i + 1]!
    }
    tsPrev[tsPrev.length - 1] = t
    if (step < steps) models[models.length - 1] = r.modelT ?? (await modelX0(x, t))
    await a.callback?.({ i: step - 1, x, denoised: models[models.length - 1]! })
  }
  return x
}
