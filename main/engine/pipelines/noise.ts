import { PhiloxCudaGenerator, TorchCpuGenerator } from '../random'
import type { NoiseSource as RandomSource } from '../random'
import type { NoiseOrigin, NoiseSource } from './types'

export type NoiseKind = 'cpu' | 'gpu'

/** Largest seed accepted (A1111 and diffusers seeds are 32-bit in practice; torch takes 64-bit). */
export const MAX_SEED = 2 ** 32 - 1

/** A fresh random seed in [0, 2^32). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32)
}

/** A1111 "Variation seed": per-image variation seeds and the slerp strength (0 … 1). */
export interface NoiseVariation {
  seeds: number[]
  strength: number
}

/**
 * A1111's `slerp(val, low, high)` (modules/processing.py) on one image's noise [C, H, W]: the norms and
 * dot products run over dim 1 (H), so each (c, w) column is interpolated on its own; when the mean dot
 * product exceeds 0.9995 it falls back to A1111's linear mix `low * val + high * (1 - val)`.
 */
export function slerpNoise(
  val: number,
  low: Float32Array,
  high: Float32Array,
  dims: readonly [number, number, number],
): Float32Array {
  const [C, H, W] = dims
  if (low.length !== C * H * W || high.length !== low.length)
    throw new Error(`slerpNoise: tensors must have ${C}x${H}x${W} values`)
  const dots = new Float64Array(C * W)
  const nl = new Float64Array(C * W)
  const nh = new Float64Array(C * W)
  for (let c = 0; c < C; c++)
    for (let w = 0; w < W; w++) {
      let a = 0
      let b = 0
      for (let h = 0; h < H; h++) {
        const i = (c * H + h) * W + w
        a += low[i]! * low[i]!
        b += high[i]! * high[i]!
      }
      nl[c * W + w] = Math.sqrt(a)
      nh[c * W + w] = Math.sqrt(b)
    }
  let mean = 0
  for (let c = 0; c < C; c++)
    for (let w = 0; w < W; w++) {
      let d = 0
      for (let h = 0; h < H; h++) {
        const i = (c * H + h) * W + w
        d += (low[i]! / nl[c * W + w]!) * (high[i]! / nh[c * W + w]!)
      }
      dots[c * W + w] = d
      mean += d
    }
  mean /= C * W
  const out = new Float32Array(low.length)
  if (mean > 0.9995) {
    for (let i = 0; i < out.length; i++) out[i] = low[i]! * val + high[i]! * (1 - val)
    return out
  }
  for (let c = 0; c < C; c++)
    for (let w = 0; w < W; w++) {
      const omega = Math.acos(dots[c * W + w]!)
      const so = Math.sin(omega)
      const kl = Math.sin((1 - val) * omega) / so
      const kh = Math.sin(val * omega) / so
      for (let h = 0; h < H; h++) {
        const i = (c * H + h) * W + w
        out[i] = kl * low[i]! + kh * high[i]!
      }
    }
  return out
}

/**
 * Seeded noise, one generator per image of the batch (seed, seed + 1, ... as A1111 numbers batch
 * images): a draw of [B, ...] takes one [1, ...] draw from each image's generator. For one image it is
 * exactly `randn(shape, generator=torch.Generator().manual_seed(seed))` draw after draw, as diffusers
 * draws with a single generator. 'gpu' reproduces CUDA's Philox stream (A1111's default "RNG: GPU").
 */
export class SeededNoise implements NoiseSource {
  private readonly gens: RandomSource[]
  /** How many draws each origin made (for diagnostics and tests). */
  readonly draws: Record<NoiseOrigin, number> = { vae: 0, pipeline: 0, scheduler: 0 }

  constructor(
    readonly seeds: number[],
    readonly kind: NoiseKind = 'cpu',
    /**
     * A1111 variation seeds: the first 'pipeline' draw (the start noise) of image i becomes
     * slerp(strength, noise(seed_i), randn(variation seed_i)) from a fresh generator; later draws are as without.
     */
    readonly variation?: NoiseVariation,
  ) {
    if (seeds.length === 0) throw new Error('SeededNoise: at least one seed is needed')
    for (const s of [...seeds, ...(variation?.seeds ?? [])])
      if (!Number.isSafeInteger(s) || s < 0) throw new Error(`seed must be a non-negative integer (got ${s})`)
    if (variation && variation.seeds.length !== seeds.length)
      throw new Error('SeededNoise: one variation seed per image is needed')
    this.gens = seeds.map((s) => this.generator(s))
  }

  private generator(seed: number): RandomSource {
    return this.kind === 'gpu' ? new PhiloxCudaGenerator(seed) : new TorchCpuGenerator(seed)
  }

  /** Seeds seed, seed + 1, ... for a batch. */
  static forBatch(seed: number, batch: number, kind: NoiseKind = 'cpu'): SeededNoise {
    return new SeededNoise(
      Array.from({ length: batch }, (_, i) => seed + i),
      kind,
    )
  }

  randn(shape: number[], origin: NoiseOrigin = 'pipeline'): Float32Array {
    this.draws[origin]++
    const [batch, ...rest] = shape
    if (batch !== this.gens.length)
      throw new Error(`SeededNoise: draw of batch ${batch} from ${this.gens.length} seeded generators`)
    const v = this.variation
    if (origin === 'pipeline' && this.draws.pipeline === 1 && v && v.strength > 0 && rest.length === 3) {
      const per = rest.reduce((a, b) => a * b, 1)
      const out = new Float32Array((batch as number) * per)
      const dims = rest as [number, number, number]
      this.gens.forEach((g, i) => {
        const own = g.randn([1, ...rest])
        const sub = this.generator(v.seeds[i] as number).randn([1, ...rest])
        out.set(slerpNoise(v.strength, own, sub, dims), i * per)
      })
      return out
    }
    if (batch === 1) return (this.gens[0] as RandomSource).randn(shape)
    const per = rest.reduce((a, b) => a * b, 1)
    const out = new Float32Array(batch * per)
    this.gens.forEach((g, i) => out.set(g.randn([1, ...rest]), i * per))
    return out
  }
}
