import { assertSameLength, f32 } from './math'
import { SigmaScheduler } from './sigma-base'
import type { NoiseFn, SchedulerConfig, TimestepSpacing } from './types'

// 5-point Gauss-Legendre: exact for the degree <= 3 Lagrange polynomials LMS integrates (what
// scipy.integrate.quad returns for them, to rounding).
const GL_X = [0, -0.5384693101056831, 0.5384693101056831, -0.906179845938664, 0.906179845938664] as const
const GL_W = [
  0.5688888888888889, 0.47862867049936647, 0.47862867049936647, 0.23692688505618908, 0.23692688505618908,
] as const

/** diffusers LMSDiscreteScheduler (linear multistep, order 4). */
export class LMSDiscreteScheduler extends SigmaScheduler {
  readonly name: string
  protected readonly spacingDefault: TimestepSpacing = 'linspace'
  protected readonly karras: boolean
  readonly lmsOrder: number
  private derivatives: Float32Array[] = []

  constructor(config: SchedulerConfig, name = 'LMS', lmsOrder = 4) {
    super(config)
    this.name = name
    this.karras = config.use_karras_sigmas ?? false
    this.lmsOrder = lmsOrder
  }

  setTimesteps(n: number): void {
    this.buildSchedule(n)
    this.derivatives = []
  }

  /**
   * Integral over [sigma_t, sigma_{t+1}] of the Lagrange basis polynomial for derivative
   * `current` among the last `order` sigmas (diffusers get_lms_coefficient).
   */
  lmsCoefficient(order: number, t: number, current: number): number {
    const s = this.sigmas
    const basis = (tau: number): number => {
      let prod = 1
      for (let k = 0; k < order; k++) {
        if (k === current) continue
        prod *= (tau - s[t - k]!) / (s[t - current]! - s[t - k]!)
      }
      return prod
    }
    const a = s[t]!
    const b = s[t + 1]!
    const half = (b - a) / 2
    const mid = (a + b) / 2
    let sum = 0
    for (let i = 0; i < GL_X.length; i++) sum += GL_W[i]! * basis(mid + half * GL_X[i]!)
    return sum * half
  }

  step(eps: Float32Array, t: number, x: Float32Array, _noise?: NoiseFn): Float32Array {
    assertSameLength(`${this.name}.step`, eps, x)
    const i = this.indexOf(t)
    const sigma = this.sigmas[i]!
    const x0 = this.predX0(eps, x, sigma)
    const derivative = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) derivative[k] = f32(x[k]! - x0[k]!) / sigma
    this.derivatives.push(derivative)
    if (this.derivatives.length > this.lmsOrder) this.derivatives.shift()
    const order = Math.min(i + 1, this.lmsOrder)
    const coeffs: number[] = []
    for (let c = 0; c < order; c++) coeffs.push(f32(this.lmsCoefficient(order, i, c)))
    // sum(coeff * derivative for coeff, derivative in zip(coeffs, reversed(derivatives)))
    const pairs = Math.min(coeffs.length, this.derivatives.length)
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) {
      let acc = 0
      for (let p = 0; p < pairs; p++) {
        const d = this.derivatives[this.derivatives.length - 1 - p]!
        acc = f32(acc + f32(coeffs[p]! * d[k]!))
      }
      out[k] = x[k]! + acc
    }
    this.predOriginalSample = x0
    return out
  }
}
