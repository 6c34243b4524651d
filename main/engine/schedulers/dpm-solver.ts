import { BaseScheduler, spacingError } from './base'
import {
  assertSameLength,
  f32,
  karrasSigmas,
  logF32,
  npArange,
  npLinspace,
  roundHalfEven,
  sigmaToT,
  trainSigmas,
} from './math'
import type { NoiseFn, SchedulerConfig } from './types'

/**
 * diffusers 0.21.4 DPMSolverMultistepScheduler (A1111 "DPM++ 2M", "DPM++ 2M Karras"; with
 * algorithm_type 'sde-dpmsolver++', "DPM++ 2M SDE"). In 0.21.4 the solver works on the training
 * tables alpha_t, sigma_t, lambda_t indexed by integer timesteps; use_karras_sigmas only chooses
 * which (rounded) timesteps are visited, and the last step goes to timestep 0, not to sigma 0.
 */
export class DPMSolverMultistepScheduler extends BaseScheduler {
  readonly name: string
  /** Karras: the N respaced sigmas (ascending, as diffusers keeps them); else the training sigmas. */
  sigmas: Float64Array = new Float64Array(0)
  private readonly alphaT: Float32Array
  private readonly sigmaT: Float32Array
  private readonly lambdaT: Float32Array
  private modelOutputs: (Float32Array | undefined)[]
  private lowerOrderNums = 0

  constructor(config: SchedulerConfig, name = 'DPM++ 2M') {
    super(config)
    this.name = name
    if (config.algorithm_type !== 'dpmsolver++' && config.algorithm_type !== 'sde-dpmsolver++') {
      throw new Error(`${name}: algorithm_type "${config.algorithm_type}" is not supported (use dpmsolver++)`)
    }
    const n = this.alphasCumprod.length
    this.alphaT = new Float32Array(n)
    this.sigmaT = new Float32Array(n)
    this.lambdaT = new Float32Array(n)
    for (let i = 0; i < n; i++) {
      const a = this.alphasCumprod[i]!
      this.alphaT[i] = Math.sqrt(a)
      this.sigmaT[i] = Math.sqrt(f32(1 - a))
      this.lambdaT[i] = f32(Math.log(this.alphaT[i]!)) - f32(Math.log(this.sigmaT[i]!))
    }
    this.modelOutputs = new Array<Float32Array | undefined>(config.solver_order).fill(undefined)
  }

  setTimesteps(n: number): void {
    this.checkSteps(n)
    const cfg = this.config
    const T = cfg.num_train_timesteps
    // clipped_idx = searchsorted(flip(lambda_t), lambda_min_clipped)
    const flipped = Float32Array.from(this.lambdaT).reverse()
    let clipped = 0
    while (clipped < flipped.length && flipped[clipped]! < cfg.lambda_min_clipped) clipped++
    const last = T - clipped
    const spacing = cfg.timestep_spacing ?? 'linspace'
    let ts: Float64Array
    if (spacing === 'linspace') {
      ts = npLinspace(0, last - 1, n + 1)
        .map(roundHalfEven)
        .reverse()
        .slice(0, n)
    } else if (spacing === 'leading') {
      const ratio = Math.floor(last / (n + 1))
      const all = new Float64Array(n + 1)
      for (let i = 0; i <= n; i++) all[n - i] = roundHalfEven(i * ratio)
      ts = all.slice(0, n).map((v) => v + cfg.steps_offset)
    } else if (spacing === 'trailing') {
      ts = npArange(last, 0, -(T / n)).map((v) => roundHalfEven(v) - 1)
    } else {
      throw spacingError(this.name, spacing)
    }
    const train = trainSigmas(this.alphasCumprod)
    if (cfg.use_karras_sigmas) {
      const logSigmas = logF32(train)
      // diffusers passes the ascending table, so "sigma_min" is the largest sigma: the ramp ascends.
      const k = karrasSigmas(train[0]!, train[train.length - 1]!, n)
      this.sigmas = k
      ts = k.map((s) => roundHalfEven(sigmaToT(s, logSigmas))).reverse()
    } else {
      this.sigmas = Float64Array.from(train)
    }
    // drop duplicates, keeping first occurrences in order
    const seen = new Set<number>()
    ts = ts.filter((v) => (seen.has(v) ? false : (seen.add(v), true)))
    this.timesteps = ts
    this.numInferenceSteps = ts.length
    this.modelOutputs = new Array<Float32Array | undefined>(cfg.solver_order).fill(undefined)
    this.lowerOrderNums = 0
    this.predOriginalSample = undefined
  }

  /** convert_model_output for dpmsolver++: the predicted x0. */
  private toX0(eps: Float32Array, t: number, x: Float32Array): Float32Array {
    const a = this.alphaT[t]!
    const s = this.sigmaT[t]!
    const out = new Float32Array(x.length)
    switch (this.config.prediction_type) {
      case 'epsilon':
        for (let k = 0; k < x.length; k++) out[k] = f32(x[k]! - f32(s * eps[k]!)) / a
        break
      case 'sample':
        out.set(eps)
        break
      case 'v_prediction':
        for (let k = 0; k < x.length; k++) out[k] = f32(a * x[k]!) - f32(s * eps[k]!)
        break
    }
    return out
  }

  step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseFn): Float32Array {
    assertSameLength(`${this.name}.step`, eps, x)
    this.requireTimesteps()
    this.trainIndex(t)
    const L = this.timesteps.length
    let i = this.timesteps.indexOf(t)
    if (i < 0) i = L - 1
    const prevT = i === L - 1 ? 0 : this.timesteps[i + 1]!
    const lof = this.config.lower_order_final && L < 15
    const lowerOrderFinal = i === L - 1 && lof
    const lowerOrderSecond = i === L - 2 && lof

    const m0 = this.toX0(eps, t, x)
    const order = this.config.solver_order
    for (let k = 0; k < order - 1; k++) this.modelOutputs[k] = this.modelOutputs[k + 1]
    this.modelOutputs[order - 1] = m0

    const sde = this.config.algorithm_type === 'sde-dpmsolver++'
    let z: Float32Array | undefined
    if (sde) {
      if (!noise) throw new Error(`${this.name}: step() needs a noise source (SDE solver)`)
      z = noise()
      assertSameLength(`${this.name}.step noise`, z, x)
    }

    let out: Float32Array
    if (order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) {
      out = this.firstOrder(m0, t, prevT, x, z)
    } else if (order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) {
      const m1 = this.modelOutputs[order - 2]!
      out = this.secondOrder(m0, m1, t, this.timesteps[i - 1]!, prevT, x, z)
    } else {
      if (sde) throw new Error(`${this.name}: third-order SDE steps are not supported`)
      const m1 = this.modelOutputs[order - 2]!
      const m2 = this.modelOutputs[order - 3]!
      out = this.thirdOrder(m0, m1, m2, t, this.timesteps[i - 1]!, this.timesteps[i - 2]!, prevT, x)
    }
    if (this.lowerOrderNums < order) this.lowerOrderNums++
    this.predOriginalSample = m0
    return out
  }

  private firstOrder(
    m0: Float32Array,
    s: number,
    t: number,
    x: Float32Array,
    z?: Float32Array,
  ): Float32Array {
    const h = f32(this.lambdaT[t]! - this.lambdaT[s]!)
    const aT = this.alphaT[t]!
    const sT = this.sigmaT[t]!
    const sS = this.sigmaT[s]!
    const out = new Float32Array(x.length)
    if (!z) {
      const c = f32(sT / sS)
      const A = f32(aT * f32(f32(Math.exp(-h)) - 1))
      for (let k = 0; k < x.length; k++) out[k] = f32(c * x[k]!) - f32(A * m0[k]!)
    } else {
      const c = f32(f32(sT / sS) * f32(Math.exp(-h)))
      const e2 = f32(Math.exp(f32(-2 * h)))
      const A = f32(aT * f32(1 - e2))
      const N = f32(sT * f32(Math.sqrt(f32(1 - e2))))
      for (let k = 0; k < x.length; k++) out[k] = f32(f32(c * x[k]!) + f32(A * m0[k]!)) + f32(N * z[k]!)
    }
    return out
  }

  private secondOrder(
    m0: Float32Array,
    m1: Float32Array,
    s0: number,
    s1: number,
    t: number,
    x: Float32Array,
    z?: Float32Array,
  ): Float32Array {
    const lt = this.lambdaT[t]!
    const ls0 = this.lambdaT[s0]!
    const ls1 = this.lambdaT[s1]!
    const aT = this.alphaT[t]!
    const sT = this.sigmaT[t]!
    const sS0 = this.sigmaT[s0]!
    const h = f32(lt - ls0)
    const h0 = f32(ls0 - ls1)
    const r0 = f32(h0 / h)
    const invR0 = f32(1 / r0)
    const expmh = f32(Math.exp(-h))
    const heun = this.config.solver_type === 'heun'
    const out = new Float32Array(x.length)
    if (!z) {
      const c = f32(sT / sS0)
      const A = f32(aT * f32(expmh - 1))
      // midpoint: - 0.5 * A * D1; heun: + alpha_t * ((exp(-h) - 1) / h + 1) * D1
      const B = heun ? f32(aT * f32(f32(f32(expmh - 1) / h) + 1)) : f32(-f32(0.5 * A))
      for (let k = 0; k < x.length; k++) {
        const d1 = f32(invR0 * f32(m0[k]! - m1[k]!))
        out[k] = f32(f32(c * x[k]!) - f32(A * m0[k]!)) + f32(B * d1)
      }
    } else {
      const c = f32(f32(sT / sS0) * expmh)
      const e2 = f32(Math.exp(f32(-2 * h)))
      const A = f32(aT * f32(1 - e2))
      const B = heun ? f32(aT * f32(f32(f32(1 - e2) / f32(-2 * h)) + 1)) : f32(0.5 * A)
      const N = f32(sT * f32(Math.sqrt(f32(1 - e2))))
      for (let k = 0; k < x.length; k++) {
        const d1 = f32(invR0 * f32(m0[k]! - m1[k]!))
        out[k] = f32(f32(f32(c * x[k]!) + f32(A * m0[k]!)) + f32(B * d1)) + f32(N * z[k]!)
      }
    }
    return out
  }

  private thirdOrder(
    m0: Float32Array,
    m1: Float32Array,
    m2: Float32Array,
    s0: number,
    s1: number,
    s2: number,
    t: number,
    x: Float32Array,
  ): Float32Array {
    const L = this.lambdaT
    const h = f32(L[t]! - L[s0]!)
    const h0 = f32(L[s0]! - L[s1]!)
    const h1 = f32(L[s1]! - L[s2]!)
    const r0 = f32(h0 / h)
    const r1 = f32(h1 / h)
    const aT = this.alphaT[t]!
    const c = f32(this.sigmaT[t]! / this.sigmaT[s0]!)
    const em1 = f32(f32(Math.exp(-h)) - 1)
    const A = f32(aT * em1)
    const B = f32(aT * f32(f32(em1 / h) + 1))
    const C = f32(aT * f32(f32(f32(em1 + h) / f32(h * h)) - 0.5))
    const i0 = f32(1 / r0)
    const i1 = f32(1 / r1)
    const w = f32(r0 / f32(r0 + r1))
    const iw = f32(1 / f32(r0 + r1))
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) {
      const d10 = f32(i0 * f32(m0[k]! - m1[k]!))
      const d11 = f32(i1 * f32(m1[k]! - m2[k]!))
      const d1 = f32(d10 + f32(w * f32(d10 - d11)))
      const d2 = f32(iw * f32(d10 - d11))
      out[k] = f32(f32(f32(c * x[k]!) - f32(A * m0[k]!)) + f32(B * d1)) - f32(C * d2)
    }
    return out
  }

  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    return this.addNoiseByAlpha(x0, noise, t)
  }
}
