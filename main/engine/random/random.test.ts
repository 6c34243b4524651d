import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import { MT19937, PhiloxCudaGenerator, RecordedNoise, TorchCpuGenerator, seedWords, stepNoise } from './index'

const RNG_DIR = path.resolve(repoRoot(), '../shared/oracle-rng')
const HAVE =
  fs.existsSync(path.join(RNG_DIR, 'manifest.json')) && fs.existsSync(path.join(RNG_DIR, 'rng.safetensors'))
if (!HAVE) console.warn(`seed-parity oracle tests skipped: ${RNG_DIR} not found (../shared is absent)`)

describe('MT19937', () => {
  it('matches the C++ standard check value (10000th output for seed 5489)', () => {
    const mt = new MT19937(5489)
    let v = 0
    for (let i = 0; i < 10000; i++) v = mt.next()
    expect(v).toBe(4123659995)
  })
})

describe('TorchCpuGenerator', () => {
  it('seed 0, shape 3x4 gives the well-known torch.randn values', () => {
    const v = new TorchCpuGenerator(0).randn([3, 4])
    const want = [
      1.5409961, -0.2934289, -2.1787894, 0.56843126, -1.0845224, -1.3985955, 0.40334684, 0.83802634,
    ]
    want.forEach((w, i) => expect(v[i]).toBeCloseTo(w, 6))
  })

  it('is reproducible per seed and advances between draws', () => {
    const a = new TorchCpuGenerator(1234)
    const b = new TorchCpuGenerator(1234)
    const a1 = a.randn([1, 4, 8, 8])
    expect(b.randn([1, 4, 8, 8])).toEqual(a1)
    const a2 = a.randn([1, 4, 8, 8])
    expect(a2).not.toEqual(a1)
    expect(new TorchCpuGenerator(1235).randn([1, 4, 8, 8])).not.toEqual(a1)
  })

  it('small draws share the cached Box-Muller partner: randn(3) twice == randn(6)', () => {
    const g = new TorchCpuGenerator(7)
    const two = [...g.randn([3]), ...g.randn([3])]
    expect(two).toEqual([...new TorchCpuGenerator(7).randn([6])])
  })

  it('sizes not a multiple of 16 redraw the last 16 values', () => {
    const v17 = new TorchCpuGenerator(3).randn([17])
    const v16 = new TorchCpuGenerator(3).randn([16])
    expect(v17[0]).toBe(v16[0]) // element 0 keeps the first block's value
    expect(v17[1]).not.toBe(v16[1]) // elements 1..16 come from 16 fresh uniforms
    const z = new TorchCpuGenerator(3).randn([4, 1000])
    let s = 0
    let s2 = 0
    for (const x of z) {
      s += x
      s2 += x * x
    }
    expect(Math.abs(s / z.length)).toBeLessThan(0.05)
    expect(Math.abs(s2 / z.length - 1)).toBeLessThan(0.05)
  })

  it('scalar mode agrees with the AVX2 path to float rounding', () => {
    const a = new TorchCpuGenerator(42).randn([1, 4, 64, 64])
    const b = new TorchCpuGenerator(42, 'scalar').randn([1, 4, 64, 64])
    let m = 0
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
    expect(m).toBeLessThan(1e-5)
  })

  it('rejects bad seeds and shapes', () => {
    expect(() => new TorchCpuGenerator(-1)).toThrow(/seed/)
    expect(() => new TorchCpuGenerator(1.5)).toThrow(/seed/)
    expect(() => new TorchCpuGenerator(0).randn([2, -1])).toThrow(/shape/)
    expect(seedWords(2n ** 64n - 1n)).toEqual([0xffffffff, 0xffffffff])
  })
})

describe('PhiloxCudaGenerator', () => {
  it('seed 0, shape 3x4 starts -0.92466, -0.42534, -2.64385, 0.14518 (A1111 rng_philox docstring)', () => {
    const v = new PhiloxCudaGenerator(0).randn([3, 4])
    const want = [-0.92466259, -0.42534415, -2.6438457, 0.14518388, -0.12086647, -0.57972564]
    want.forEach((w, i) => expect(v[i]).toBeCloseTo(w, 6))
  })

  it('each draw uses the next offset; a prefix of a larger draw is the smaller draw', () => {
    const g = new PhiloxCudaGenerator(99)
    const first = g.randn([2, 8])
    expect(g.offset).toBe(1)
    const second = g.randn([2, 8])
    expect(second).toEqual(new PhiloxCudaGenerator(99, 1).randn([2, 8]))
    expect(new PhiloxCudaGenerator(99).randn([4, 8]).subarray(0, 16)).toEqual(first)
  })
})

describe('RecordedNoise', () => {
  it('hands out draws in order and checks shapes and count', () => {
    const a = new Float32Array([1, 2, 3, 4])
    const b = new Float32Array([5, 6])
    const r = new RecordedNoise([{ data: a, shape: [1, 4], name: 'noise_00' }, b])
    expect(r.remaining).toBe(2)
    expect(() => r.randn([2, 2])).toThrow(/noise_00.*\[1, 4\].*\[2, 2\]/)
    const got = r.randn([1, 4])
    expect(got).toEqual(a)
    got[0] = 9 // a copy: the recording is not changed
    expect(() => r.randn([3])).toThrow(/draw 1.*2 elements/)
    expect(stepNoise(r, [2])()).toEqual(b)
    expect(r.used).toBe(2)
    expect(() => r.randn([2])).toThrow(/only 2 draws were recorded/)
  })
})

interface RngCase {
  seed: number
  shape: number[]
  tensors: string[]
}

describe.skipIf(!HAVE)('seed parity with oracle-rng (PyTorch 1.13.1)', () => {
  it('torch CPU and CUDA Philox draws match every recorded tensor bit for bit', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(RNG_DIR, 'manifest.json'), 'utf8')) as {
      cases: RngCase[]
      tolerance: { atol: number; rtol: number }
    }
    const { atol, rtol } = manifest.tolerance
    const st = await SafetensorsFile.open(path.join(RNG_DIR, 'rng.safetensors'))
    let checked = 0
    try {
      for (const c of manifest.cases) {
        const cpu = new TorchCpuGenerator(c.seed)
        const nv = new PhiloxCudaGenerator(c.seed)
        const tag = `s${c.seed}_${c.shape.join('x')}`
        const ours: Record<string, Float32Array> = {
          [`torch_cpu_${tag}`]: cpu.randn(c.shape),
          [`torch_cpu_second_${tag}`]: cpu.randn(c.shape),
          [`cuda_philox_${tag}`]: nv.randn(c.shape),
          [`cuda_philox_offset1_${tag}`]: nv.randn(c.shape),
        }
        for (const name of c.tensors) {
          const want = await st.readFloat32(name)
          const got = ours[name]
          expect(got, `no generator for ${name}`).toBeDefined()
          expect(st.info(name).shape).toEqual(c.shape)
          let worst = 0
          for (let i = 0; i < want.length; i++) {
            const d = Math.abs(got![i]! - want[i]!)
            if (d > atol + rtol * Math.abs(want[i]!)) worst = Math.max(worst, d)
          }
          expect(worst, `${name} outside tolerance`).toBe(0)
          expect(got, name).toEqual(want)
          checked++
        }
      }
    } finally {
      await st.close()
    }
    expect(checked).toBe(80)
  })
})
