import { logAvx, sincosAvx } from './avx-mathfun'
import { MT19937 } from './mt19937'
import type { NoiseSource } from './types'
import { seedWords, shapeSize } from './types'

const TWO_PI_F32 = Math.fround(2 * Math.PI)
const INV_2_24 = 1 / 16777216
const INV_2_53 = 1 / 9007199254740992

/**
 * `torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed))` (PyTorch 1.13 CPU,
 * float32), draw after draw from one generator:
 * - 16 or more elements: every element first gets a float uniform (24 bits of one mt19937 output
 *   / 2^24); then each block of 16 is Box-Muller'd pairwise (j, j + 8):
 *   r = sqrt(-2 ln(1 - u_j)), theta = 2pi * u_{j+8}, out_j = r cos(theta), out_{j+8} = r sin(theta).
 *   When the size is not a multiple of 16, the last 16 elements are redrawn (16 new uniforms) and
 *   transformed again.
 * - fewer than 16: one double normal per element (53-bit uniforms from two outputs each,
 *   u1 -> angle, u2 -> radius); the sin half is cached and returned by the next scalar draw.
 * The block transform follows PyTorch's AVX2 kernel (normal_fill_16_AVX2 with avx_mathfun's float
 * log / sincos), which is what x86-64 builds run; mode 'scalar' follows the portable normal_fill_16
 * (float std::log / cos / sin) used by builds without AVX2. Small tensors are identical in both.
 */
export class TorchCpuGenerator implements NoiseSource {
  private readonly mt: MT19937
  private cachedNormal: number | undefined
  readonly mode: 'avx2' | 'scalar'

  constructor(seed: number | bigint, mode: 'avx2' | 'scalar' = 'avx2') {
    this.mt = new MT19937(seedWords(seed)[0])
    this.mode = mode
  }

  private uniformFloat(): number {
    return (this.mt.next() & 0xffffff) * INV_2_24
  }

  private uniformDouble(): number {
    const hi = this.mt.next()
    const lo = this.mt.next()
    return ((hi & 0x1fffff) * 4294967296 + lo) * INV_2_53
  }

  private normalDouble(): number {
    if (this.cachedNormal !== undefined) {
      const v = this.cachedNormal
      this.cachedNormal = undefined
      return v
    }
    const u1 = this.uniformDouble()
    const u2 = this.uniformDouble()
    const r = Math.sqrt(-2 * Math.log(1 - u2))
    const theta = 2 * Math.PI * u1
    this.cachedNormal = r * Math.sin(theta)
    return r * Math.cos(theta)
  }

  private fill16(out: Float32Array, at: number, u: Float32Array, from: number): void {
    for (let j = 0; j < 8; j++) {
      const u1 = Math.fround(1 - u[from + j]!)
      const u2 = u[from + j + 8]!
      if (this.mode === 'avx2') {
        const radius = Math.fround(Math.sqrt(Math.fround(-2 * logAvx(u1))))
        const [s, c] = sincosAvx(Math.fround(TWO_PI_F32 * u2))
        out[at + j] = radius * c
        out[at + j + 8] = radius * s
      } else {
        const radius = Math.fround(Math.sqrt(Math.fround(-2 * Math.fround(Math.log(u1)))))
        const theta = Math.fround(2 * Math.PI * u2)
        out[at + j] = Math.fround(radius * Math.fround(Math.cos(theta)))
        out[at + j + 8] = Math.fround(radius * Math.fround(Math.sin(theta)))
      }
    }
  }

  randn(shape: number[]): Float32Array {
    const n = shapeSize(shape)
    const out = new Float32Array(n)
    if (n < 16) {
      for (let i = 0; i < n; i++) out[i] = this.normalDouble()
      return out
    }
    const u = new Float32Array(n)
    for (let i = 0; i < n; i++) u[i] = this.uniformFloat()
    for (let i = 0; i + 16 <= n; i += 16) this.fill16(out, i, u, i)
    if (n % 16 !== 0) {
      const tail = new Float32Array(16)
      for (let i = 0; i < 16; i++) tail[i] = this.uniformFloat()
      this.fill16(out, n - 16, tail, 0)
    }
    return out
  }
}
