import { describe, expect, it } from 'vitest'
import type { LycoKind, LycoPart, Mat } from './lycoris'
import { doraOnOutput, doraUpdate, kron2d, lycoKind, makeWeightCp, moduleUpdate, rebuildCp } from './lycoris'

/** Each formula against a direct index-by-index evaluation of its definition, on small random tensors. */

function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5
  }
}

const next = rng(7)
function rand(...shape: number[]): Mat {
  const n = shape.reduce((a, b) => a * b, 1)
  return { shape, data: Float32Array.from({ length: n }, () => next()) }
}

/** Row-major index of `idx` in `shape`. */
function at(m: Mat, ...idx: number[]): number {
  let o = 0
  for (let i = 0; i < idx.length; i++) o = o * (m.shape[i] ?? 1) + (idx[i] as number)
  return m.data[o] as number
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5): void {
  expect(a.length).toBe(b.length)
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)))
  expect(worst).toBeLessThanOrEqual(tol)
}

function matmulRef(a: Mat, b: Mat): number[] {
  const [m = 0, k = 0] = a.shape
  const n = b.data.length / k
  const out: number[] = []
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0
      for (let p = 0; p < k; p++) s += (a.data[i * k + p] as number) * (b.data[p * n + j] as number)
      out.push(s)
    }
  return out
}

function reader(parts: Partial<Record<LycoPart, Mat>>): (p: LycoPart) => Promise<Mat | undefined> {
  return async (p) => parts[p]
}

describe('LyCORIS building blocks', () => {
  it('make_weight_cp = einsum(i j k l, j r, i p -> p r k l)', () => {
    const t = rand(3, 2, 3, 3)
    const wa = rand(3, 5) // [R1, out]
    const wb = rand(2, 4) // [R2, in]
    const got = makeWeightCp(t, wa, wb)
    expect(got.shape).toEqual([5, 4, 3, 3])
    const ref: number[] = []
    for (let p = 0; p < 5; p++)
      for (let r = 0; r < 4; r++)
        for (let k = 0; k < 3; k++)
          for (let l = 0; l < 3; l++) {
            let s = 0
            for (let i = 0; i < 3; i++)
              for (let j = 0; j < 2; j++) s += at(t, i, j, k, l) * at(wb, j, r) * at(wa, i, p)
            ref.push(s)
          }
    close(got.data, ref)
  })

  it('rebuild_cp_decomposition: sum_ab up[o,a] mid[a,b,k,l] down[b,i]', () => {
    const up = rand(6, 3, 1, 1)
    const mid = rand(3, 3, 3, 3)
    const down = rand(3, 4, 1, 1)
    const got = rebuildCp(up, mid, down)
    expect(got.shape).toEqual([6, 4, 3, 3])
    const ref: number[] = []
    for (let o = 0; o < 6; o++)
      for (let i = 0; i < 4; i++)
        for (let k = 0; k < 3; k++)
          for (let l = 0; l < 3; l++) {
            let s = 0
            for (let a = 0; a < 3; a++)
              for (let b = 0; b < 3; b++) s += at(up, o, a, 0, 0) * at(mid, a, b, k, l) * at(down, b, i, 0, 0)
            ref.push(s)
          }
    close(got.data, ref)
  })

  it('kron of [a, c] with a 4-D w2 equals torch.kron(w1[a, c, 1, 1], w2) flattened', () => {
    const w1 = rand(2, 3)
    const w2 = rand(4, 5, 3, 3)
    const got = kron2d(w1, w2)
    const ref: number[] = []
    for (let r = 0; r < 8; r++)
      for (let c = 0; c < 15; c++)
        for (let k = 0; k < 3; k++)
          for (let l = 0; l < 3; l++)
            ref.push(at(w1, Math.floor(r / 4), Math.floor(c / 5)) * at(w2, r % 4, c % 5, k, l))
    close(got, ref, 1e-7)
  })

  it('names the module kind from its parts', () => {
    const k = (...p: string[]): LycoKind | undefined => lycoKind(new Set(p))
    expect(k('lora_down.weight', 'lora_up.weight', 'lora_mid.weight')).toBe('lora')
    expect(k('hada_w1_a', 'hada_w1_b', 'hada_w2_a', 'hada_w2_b')).toBe('loha')
    expect(k('lokr_w1', 'lokr_w2_a', 'lokr_w2_b')).toBe('lokr')
    expect(k('lokr_w1_a', 'lokr_w1_b', 'lokr_w2')).toBe('lokr')
    expect(k('diff', 'diff_b')).toBe('full')
    expect(k('hada_w1_a', 'hada_w1_b')).toBeUndefined()
    expect(k('lora_down.weight')).toBeUndefined()
  })
})

describe('module updates (scale * dW)', () => {
  it('LoCon 3x3: up @ down reshaped, alpha / rank', async () => {
    const down = rand(2, 4, 3, 3)
    const up = rand(5, 2, 1, 1)
    const u = await moduleUpdate(
      'lora',
      reader({
        'lora_down.weight': down,
        'lora_up.weight': up,
        alpha: { shape: [], data: Float32Array.of(1) },
      }),
      5 * 4 * 9,
      'm',
    )
    expect(u.scale).toBe(0.5)
    close(
      u.dW,
      matmulRef({ shape: [5, 2], data: up.data }, { shape: [2, 36], data: down.data }).map((x) => x * 0.5),
    )
  })

  it('LoHa: (w1a @ w1b) * (w2a @ w2b) * alpha / rank; Tucker form through make_weight_cp', async () => {
    const p = { hada_w1_a: rand(6, 3), hada_w1_b: rand(3, 8), hada_w2_a: rand(6, 3), hada_w2_b: rand(3, 8) }
    const u = await moduleUpdate(
      'loha',
      reader({ ...p, alpha: { shape: [], data: Float32Array.of(6) } }),
      48,
      'm',
    )
    const f1 = matmulRef(p.hada_w1_a, p.hada_w1_b)
    const f2 = matmulRef(p.hada_w2_a, p.hada_w2_b)
    close(
      u.dW,
      f1.map((x, i) => x * (f2[i] as number) * 2),
    )

    const cp = {
      hada_w1_a: rand(2, 5),
      hada_w1_b: rand(2, 4),
      hada_w2_a: rand(2, 5),
      hada_w2_b: rand(2, 4),
      hada_t1: rand(2, 2, 3, 3),
      hada_t2: rand(2, 2, 3, 3),
    }
    const v = await moduleUpdate(
      'loha',
      reader({ ...cp, alpha: { shape: [], data: Float32Array.of(1) } }),
      180,
      'm',
    )
    const g1 = makeWeightCp(cp.hada_t1, cp.hada_w1_a, cp.hada_w1_b).data
    const g2 = makeWeightCp(cp.hada_t2, cp.hada_w2_a, cp.hada_w2_b).data
    close(
      v.dW,
      Array.from(g1, (x, i) => x * (g2[i] as number) * 0.5),
    )
  })

  it('LoKr: kron(w1, w2) with decomposed w2 (scale alpha / w2_b rank) and both full (scale 1)', async () => {
    const w1 = rand(2, 2)
    const w2a = rand(4, 2)
    const w2b = rand(2, 3)
    const u = await moduleUpdate(
      'lokr',
      reader({ lokr_w1: w1, lokr_w2_a: w2a, lokr_w2_b: w2b, alpha: { shape: [], data: Float32Array.of(1) } }),
      8 * 6,
      'm',
    )
    const w2 = matmulRef(w2a, w2b)
    const ref: number[] = []
    for (let r = 0; r < 8; r++)
      for (let c = 0; c < 6; c++)
        ref.push(at(w1, r >> 2, Math.floor(c / 3)) * (w2[(r % 4) * 3 + (c % 3)] as number) * 0.5)
    close(u.dW, ref)

    const full = await moduleUpdate(
      'lokr',
      reader({ lokr_w1: w1, lokr_w2: rand(4, 3), alpha: { shape: [], data: Float32Array.of(8) } }),
      48,
      'm',
    )
    expect(full.scale).toBe(1)
  })

  it('full: diff and diff_b unscaled; a wrong-size update is refused', async () => {
    const diff = rand(4, 3)
    const diffB = rand(4)
    const u = await moduleUpdate('full', reader({ diff, diff_b: diffB }), 12, 'm')
    close(u.dW, diff.data, 0)
    close(u.dB ?? [], diffB.data, 0)
    await expect(moduleUpdate('full', reader({ diff }), 13, 'layer_x')).rejects.toThrow(/layer_x/)
  })
})

describe('DoRA', () => {
  const W = rand(4, 3, 3, 3)
  const dW = rand(4, 3, 3, 3)

  it('input axis (A1111): W + m (V s / ||V[:, j]|| - W), no epsilon', () => {
    const s = rand(1, 3, 1, 1)
    expect(doraOnOutput(s.shape, W.shape)).toBe(false)
    const D = doraUpdate(W.data, W.shape, dW.data, s)
    const V = W.data.map((x, i) => x + (dW.data[i] as number))
    for (let o = 0; o < 4; o++)
      for (let j = 0; j < 3; j++)
        for (let q = 0; q < 9; q++) {
          let n = 0
          for (let oo = 0; oo < 4; oo++)
            for (let qq = 0; qq < 9; qq++) n += (V[(oo * 3 + j) * 9 + qq] as number) ** 2
          const idx = (o * 3 + j) * 9 + q
          const ref = ((V[idx] as number) * (s.data[j] as number)) / Math.sqrt(n) - (W.data[idx] as number)
          expect(Math.abs((D[idx] as number) - ref)).toBeLessThan(1e-5)
        }
  })

  it('output axis (LyCORIS wd_on_output): norms per output row plus float32 eps', () => {
    const s = rand(4, 1, 1, 1)
    expect(doraOnOutput(s.shape, W.shape)).toBe(true)
    const D = doraUpdate(W.data, W.shape, dW.data, s)
    const V = W.data.map((x, i) => x + (dW.data[i] as number))
    for (let o = 0; o < 4; o++) {
      let n = 0
      for (let q = 0; q < 27; q++) n += (V[o * 27 + q] as number) ** 2
      for (let q = 0; q < 27; q++) {
        const idx = o * 27 + q
        const ref =
          ((V[idx] as number) * (s.data[o] as number)) / (Math.sqrt(n) + 1.1920929e-7) -
          (W.data[idx] as number)
        expect(Math.abs((D[idx] as number) - ref)).toBeLessThan(1e-5)
      }
    }
  })

  it('refuses a dora_scale that fits neither axis', () => {
    expect(() => doraUpdate(W.data, W.shape, dW.data, rand(1, 5, 1, 1))).toThrow(/dora_scale/)
  })
})
