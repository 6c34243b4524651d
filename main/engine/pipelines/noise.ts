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
  ) {
    if (seeds.length === 0) throw new Error('SeededNoise: at least one seed is needed')
    for (const s of seeds)
      if (!Number.isSafeInteger(s) || s < 0) throw new Error(`seed must be a non-negative integer (got ${s})`)
    this.gens = seeds.map((s) => (kind === 'gpu' ? new PhiloxCudaGenerator(s) : new TorchCpuGenerator(s)))
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
    if (batch === 1) return (this.gens[0] as RandomSource).randn(shape)
    const per = rest.reduce((a, b) => a * b, 1)
    const out = new Float32Array(batch * per)
    this.gens.forEach((g, i) => out.set(g.randn([1, ...rest]), i * per))
    return out
  }
}
