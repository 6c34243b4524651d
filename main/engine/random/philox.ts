import type { NoiseSource } from './types'
import { seedWords, shapeSize } from './types'

const M0 = 0xd2511f53
const M1 = 0xcd9e8d57
const W0 = 0x9e3779b9
const W1 = 0xbb67ae85
const INV32 = Math.fround(2.3283064e-10)
const INV32_2PI = Math.fround(2.3283064e-10 * 6.2831855)

/** High 32 bits of the 64-bit product of two uint32 values. */
function mulhi(a: number, b: number): number {
  const aH = a >>> 16
  const aL = a & 0xffff
  const bH = b >>> 16
  const bL = b & 0xffff
  const ll = aL * bL
  const lh = aL * bH
  const hl = aH * bL
  const hh = aH * bH
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff)
  return (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0
}

/**
 * `torch.randn(shape, device='cuda')` after `torch.manual_seed(seed)` on NVIDIA GPUs, as A1111's
 * "NV" random source reproduces it (modules/rng_philox.py): element i is Philox4x32-10 with
 * key = (seed low, seed high) and counter = (offset, 0, i, 0); Box-Muller on the first two output
 * words only. Each randn() call uses the next offset (0, 1, 2, ...).
 */
export class PhiloxCudaGenerator implements NoiseSource {
  private readonly key: [number, number]
  offset: number

  constructor(seed: number | bigint, offset = 0) {
    this.key = seedWords(seed)
    this.offset = offset
  }

  randn(shape: number[]): Float32Array {
    const n = shapeSize(shape)
    if (n > 0x100000000) throw new Error(`PhiloxCudaGenerator: at most 2^32 elements per draw (got ${n})`)
    const out = new Float32Array(n)
    const off = this.offset >>> 0
    this.offset++
    for (let i = 0; i < n; i++) {
      let c0 = off
      let c1 = 0
      let c2 = i >>> 0
      let c3 = 0
      let k0 = this.key[0]
      let k1 = this.key[1]
      for (let r = 0; r < 10; r++) {
        const hi0 = mulhi(c0, M0)
        const lo0 = Math.imul(c0, M0) >>> 0
        const hi2 = mulhi(c2, M1)
        const lo2 = Math.imul(c2, M1) >>> 0
        c0 = (hi2 ^ c1 ^ k0) >>> 0
        c1 = lo2
        c2 = (hi0 ^ c3 ^ k1) >>> 0
        c3 = lo0
        k0 = (k0 + W0) >>> 0
        k1 = (k1 + W1) >>> 0
      }
      const u = c0 * INV32 + INV32 / 2
      const v = c1 * INV32_2PI + INV32_2PI / 2
      out[i] = Math.sqrt(-2 * Math.log(u)) * Math.sin(v)
    }
    return out
  }
}
