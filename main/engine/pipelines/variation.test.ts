import { describe, expect, it } from 'vitest'
import { TorchCpuGenerator } from '../random'
import { SeededNoise, slerpNoise } from './noise'

describe('slerpNoise (A1111 variation seed)', () => {
  it('interpolates each (c, w) column over H on the great circle', () => {
    // [C=1, H=2, W=1]: orthogonal unit columns, half way = (sin π/4, sin π/4)
    const low = Float32Array.from([1, 0])
    const high = Float32Array.from([0, 1])
    const mid = slerpNoise(0.5, low, high, [1, 2, 1])
    expect(mid[0]).toBeCloseTo(Math.SQRT1_2, 6)
    expect(mid[1]).toBeCloseTo(Math.SQRT1_2, 6)
    const q = slerpNoise(0.25, low, high, [1, 2, 1])
    expect(q[0]).toBeCloseTo(Math.cos(Math.PI / 8), 6)
    expect(q[1]).toBeCloseTo(Math.sin(Math.PI / 8), 6)
  })

  it('strength 0 keeps the seed noise, 1 gives the variation noise', () => {
    const a = new TorchCpuGenerator(1).randn([4, 8, 8])
    const b = new TorchCpuGenerator(2).randn([4, 8, 8])
    const at0 = slerpNoise(0, a, b, [4, 8, 8])
    const at1 = slerpNoise(1, a, b, [4, 8, 8])
    for (let i = 0; i < a.length; i++) {
      expect(at0[i]).toBeCloseTo(a[i]!, 5)
      expect(at1[i]).toBeCloseTo(b[i]!, 5)
    }
  })

  it('columns are independent: each (c, w) column has its own angle', () => {
    // [C=1, H=2, W=2], laid out h-major: column 0 goes (1,0) → (0,1) (π/2), column 1 (1,0) → (1,1) (π/4)
    const low = Float32Array.from([1, 1, 0, 0])
    const high = Float32Array.from([0, 1, 1, 1])
    const out = slerpNoise(0.5, low, high, [1, 2, 2])
    expect(out[0]).toBeCloseTo(Math.SQRT1_2, 6)
    expect(out[2]).toBeCloseTo(Math.SQRT1_2, 6)
    const k = Math.sin(Math.PI / 8) / Math.sin(Math.PI / 4)
    expect(out[1]).toBeCloseTo(2 * k, 6)
    expect(out[3]).toBeCloseTo(k, 6)
  })

  it('parallel noise (mean dot > 0.9995) uses A1111 linear fallback low*val + high*(1 - val)', () => {
    const low = Float32Array.from([1, 2, 3, 4])
    const high = Float32Array.from([2, 4, 6, 8])
    expect(Array.from(slerpNoise(0.25, low, high, [1, 4, 1]))).toEqual([1.75, 3.5, 5.25, 7])
  })

  it('rejects mismatched sizes', () => {
    expect(() => slerpNoise(0.5, new Float32Array(4), new Float32Array(3), [1, 2, 2])).toThrow(/2x2/)
  })
})

describe('SeededNoise with variation seeds', () => {
  const dims: [number, number, number] = [4, 6, 5]

  it('the first pipeline draw is slerp(noise(seed_i), noise(variation seed_i)) per image; later draws are not', () => {
    const n = new SeededNoise([10, 11], 'cpu', { seeds: [77, 78], strength: 0.3 })
    const first = n.randn([2, ...dims], 'pipeline')
    const per = 4 * 6 * 5
    for (const [i, [s, v]] of [
      [10, 77],
      [11, 78],
    ].entries()) {
      const expected = slerpNoise(
        0.3,
        new TorchCpuGenerator(s!).randn([1, ...dims]),
        new TorchCpuGenerator(v!).randn([1, ...dims]),
        dims,
      )
      expect(Array.from(first.subarray(i * per, (i + 1) * per))).toEqual(Array.from(expected))
    }
    // the next draw continues each seed's generator, as without a variation
    const plain = new SeededNoise([10, 11])
    plain.randn([2, ...dims], 'pipeline')
    expect(Array.from(n.randn([2, ...dims], 'scheduler'))).toEqual(
      Array.from(plain.randn([2, ...dims], 'scheduler')),
    )
  })

  it('strength 0 is the plain noise; a different variation seed gives different noise', () => {
    const a = new SeededNoise([3], 'cpu', { seeds: [9], strength: 0 }).randn([1, ...dims])
    expect(Array.from(a)).toEqual(Array.from(new SeededNoise([3]).randn([1, ...dims])))
    const b = new SeededNoise([3], 'cpu', { seeds: [9], strength: 0.5 }).randn([1, ...dims])
    const c = new SeededNoise([3], 'cpu', { seeds: [10], strength: 0.5 }).randn([1, ...dims])
    expect(Array.from(b)).not.toEqual(Array.from(c))
    expect(Array.from(b)).not.toEqual(Array.from(a))
  })

  it('needs one variation seed per image', () => {
    expect(() => new SeededNoise([1, 2], 'cpu', { seeds: [5], strength: 0.2 })).toThrow(/one variation seed/)
  })
})
