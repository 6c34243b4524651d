import { assertSameLength, f32 } from './math'
import { SigmaScheduler } from './sigma-base'
import type { NoiseFn, SchedulerConfig, TimestepSpacing } from './types'

/** diffusers EulerDiscreteScheduler (k-diffusion's Euler; s_churn = 0, so no noise is added). */
export class EulerDiscreteScheduler extends SigmaScheduler {
  readonly name: string
  protected readonly spacingDefault: TimestepSpacing = 'linspace'
  protected readonly karras: boolean

  constructor(config: SchedulerConfig, name = 'Euler') {
    super(config)
    this.name = name
    this.karras = config.use_karras_sigmas ?? false
  }

  setTimesteps(n: number): void {
    this.buildSchedule(n)
  }

  step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseFn): Float32Array {
    assertSameLength(`${this.name}.step`, eps, x)
    const i = this.indexOf(t)
    const sigma = this.sigmas[i]!
    // diffusers draws randn_tensor every step; with s_churn = 0 it is multiplied by gamma = 0.
    if (noise) noise()
    const sigmaHat = sigma // sigma * (gamma + 1) with gamma = 0
    const x0 = this.predX0(eps, x, sigmaHat)
    const dt = f32(this.sigmas[i + 1]! - sigmaHat)
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) {
      const derivative = f32(f32(x[k]! - x0[k]!) / sigmaHat)
      out[k] = x[k]! + f32(derivative * dt)
    }
    this.predOriginalSample = x0
    return out
  }
}

/** diffusers EulerAncestralDiscreteScheduler (A1111 "Euler a"). */
export class EulerAncestralDiscreteScheduler extends SigmaScheduler {
  readonly name: string
  protected readonly spacingDefault: TimestepSpacing = 'linspace'
  protected readonly karras = false

  constructor(config: SchedulerConfig, name = 'Euler a') {
    super(config)
    this.name = name
  }

  setTimesteps(n: number): void {
    this.buildSchedule(n)
  }

  step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseFn): Float32Array {
    assertSameLength(`${this.name}.step`, eps, x)
    const i = this.indexOf(t)
    const sigma = this.sigmas[i]!
    const x0 = this.predX0(eps, x, sigma)
    const sFrom = sigma
    const sTo = this.sigmas[i + 1]!
    const to2 = f32(sTo * sTo)
    const from2 = f32(sFrom * sFrom)
    const sigmaUp = f32(Math.sqrt(f32(f32(to2 * f32(from2 - to2)) / from2)))
    const sigmaDown = f32(Math.sqrt(f32(to2 - f32(sigmaUp * sigmaUp))))
    const dt = f32(sigmaDown - sigma)
    if (!noise) throw new Error(`${this.name}: step() needs a noise source (ancestral sampler)`)
    const z = noise()
    assertSameLength(`${this.name}.step noise`, z, x)
    const out = new Float32Array(x.length)
    for (let k = 0; k < x.length; k++) {
      const derivative = f32(f32(x[k]! - x0[k]!) / sigma)
      const prev = f32(x[k]! + f32(derivative * dt))
      out[k] = prev + f32(z[k]! * sigmaUp)
    }
    this.predOriginalSample = x0
    return out
  }
}
