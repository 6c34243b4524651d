import { describe, expect, it } from 'vitest'
import { compareTensors, maxAbsDiff } from './tolerance'

describe('maxAbsDiff (the shared tensor compare)', () => {
  it('is the largest element-wise difference, for typed and plain arrays', () => {
    expect(maxAbsDiff(Float32Array.of(1, 2, 3), Float32Array.of(1, 2.5, 2))).toBe(1)
    expect(maxAbsDiff([0, -4], [0, 4])).toBe(8)
    expect(maxAbsDiff([], [])).toBe(0)
  })

  it('NaN anywhere fails both kinds of bound; different lengths are an error', () => {
    const d = maxAbsDiff([1, Number.NaN, 100], [1, 1, 0])
    expect(d < 1e-3).toBe(false)
    expect(d > 1e-3).toBe(false)
    expect(() => maxAbsDiff([1, 2], [1])).toThrow(/2 vs 1 values/)
  })

  it('agrees with the reference comparison', () => {
    const a = Float32Array.of(0.5, -0.25, 2)
    const b = Float32Array.of(0.5, -0.5, 1.75)
    expect(compareTensors(a, b, { atol: 0, rtol: 0 }).maxAbs).toBe(maxAbsDiff(a, b))
  })
})
