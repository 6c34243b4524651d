/**
 * LyCORIS weight updates (LoCon with Tucker `lora_mid`, LoHa with `hada_t1/t2`, LoKr with full or
 * decomposed factors and `lokr_t2`, full `diff`) and DoRA's weight decomposition, computed the way A1111
 * v1.10.1 (extensions-builtin/Lora network_*.py, lyco_helpers.py) and LyCORIS compute them. Every tensor is
 * float32 in PyTorch's row-major layout; results have the layer weight's element count and layout.
 *
 * Conventions (see also the project README "LoRA and LyCORIS"):
 * - scale = alpha / rank with rank read from the tensors (LoRA: lora_down.shape[0]; LoHa: hada_w1_b.shape[0];
 *   LoKr: lokr_w2_b.shape[0], else lokr_w1_b.shape[0], and 1 when both factors are full); no alpha -> 1;
 *   `full` -> 1.
 * - merged weight W' = W + m * scale * dW, except DoRA (below).
 * - DoRA, input axis (dora_scale [1, in(, 1, 1)], A1111 and LyCORIS < 3.2): V = W + scale*dW,
 *   n[j] = ||V[:, j, ...]||, W' = W + m * (V * s / n - W).
 * - DoRA, output axis (dora_scale [out, 1(, 1, 1)], LyCORIS >= 3.2 `wd_on_output`): n[o] = ||V[o, ...]|| + eps
 *   (float32 eps, as LyCORIS adds it), W' = W + m * (V * s / n - W). At m = 1 that is exactly LyCORIS's
 *   V * s / n; at other multipliers we keep A1111's rule (no effect at m = 0, linear in m), where LyCORIS
 *   would add (1 - m) * scale * dW. Both rules are affine in m, so the update D = V * s / n - W is computed
 *   once per file and the multiplier stays a free input.
 */

export type LycoKind = 'lora' | 'loha' | 'lokr' | 'full'

/** Tensor roles of one module, by their suffix in the file. */
export const LYCO_PARTS = [
  'lora_down.weight',
  'lora_up.weight',
  'lora_mid.weight',
  'alpha',
  'dora_scale',
  'hada_w1_a',
  'hada_w1_b',
  'hada_w2_a',
  'hada_w2_b',
  'hada_t1',
  'hada_t2',
  'lokr_w1',
  'lokr_w1_a',
  'lokr_w1_b',
  'lokr_w2',
  'lokr_w2_a',
  'lokr_w2_b',
  'lokr_t2',
  'diff',
  'diff_b',
] as const
export type LycoPart = (typeof LYCO_PARTS)[number]

export interface Mat {
  data: Float32Array
  shape: number[]
}

export const FLOAT32_EPS = 1.1920928955078125e-7

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

/** The kind of a module from the parts it has; undefined when the parts form no known module. */
export function lycoKind(parts: ReadonlySet<string>): LycoKind | undefined {
  if (parts.has('hada_w1_a') && parts.has('hada_w1_b') && parts.has('hada_w2_a') && parts.has('hada_w2_b'))
    return 'loha'
  if (
    (parts.has('lokr_w1') || (parts.has('lokr_w1_a') && parts.has('lokr_w1_b'))) &&
    (parts.has('lokr_w2') || (parts.has('lokr_w2_a') && parts.has('lokr_w2_b')))
  )
    return 'lokr'
  if (parts.has('lora_down.weight') && parts.has('lora_up.weight')) return 'lora'
  if (parts.has('diff')) return 'full'
  return undefined
}

/** a [m, k] @ b [k, n] (row-major). */
export function matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const out = new Float32Array(m * n)
  for (let i = 0; i < m; i++) {
    const row = i * n
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p] as number
      if (av === 0) continue
      const brow = p * n
      for (let j = 0; j < n; j++) out[row + j] = (out[row + j] as number) + av * (b[brow + j] as number)
    }
  }
  return out
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length)
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j] as number
  return t
}

/**
 * lyco_helpers.make_weight_cp: einsum('i j k l, j r, i p -> p r k l', t, wb, wa) with t [R1, R2, kh, kw],
 * wb [R2, in], wa [R1, out]; result [out, in, kh, kw].
 */
export function makeWeightCp(t: Mat, wa: Mat, wb: Mat): Mat {
  const [r1 = 0, r2 = 0, ...k] = t.shape
  const kk = numelOf(k)
  const inDim = wb.shape[1] ?? 0
  const outDim = wa.shape[1] ?? 0
  // u[i, r, kl] = sum_j t[i, j, kl] * wb[j, r]  -> stored [i, r, kl]
  const u = new Float32Array(r1 * inDim * kk)
  for (let i = 0; i < r1; i++)
    for (let j = 0; j < r2; j++) {
      for (let r = 0; r < inDim; r++) {
        const w = wb.data[j * inDim + r] as number
        if (w === 0) continue
        const dst = (i * inDim + r) * kk
        const src = (i * r2 + j) * kk
        for (let q = 0; q < kk; q++) u[dst + q] = (u[dst + q] as number) + (t.data[src + q] as number) * w
      }
    }
  // out[p, r, kl] = sum_i wa[i, p] * u[i, r, kl]  = (wa^T [out, R1]) @ u [R1, in*kk]
  const data = matmul(transpose(wa.data, r1, outDim), u, outDim, r1, inDim * kk)
  return { data, shape: [outDim, inDim, ...k] }
}

/** lyco_helpers.rebuild_cp_decomposition: dW[o, i, kl] = sum_ab up[o, a] mid[a, b, kl] down[b, i]. */
export function rebuildCp(up: Mat, mid: Mat, down: Mat): Mat {
  const [ra = 0, rb = 0, ...k] = mid.shape
  const kk = numelOf(k)
  const outDim = up.shape[0] ?? 0
  const inDim = numelOf(down.shape.slice(1))
  // t[a, i, kl] = sum_b mid[a, b, kl] * down[b, i]
  const t = new Float32Array(ra * inDim * kk)
  for (let a = 0; a < ra; a++)
    for (let b = 0; b < rb; b++)
      for (let i = 0; i < inDim; i++) {
        const d = down.data[b * inDim + i] as number
        if (d === 0) continue
        const dst = (a * inDim + i) * kk
        const src = (a * rb + b) * kk
        for (let q = 0; q < kk; q++) t[dst + q] = (t[dst + q] as number) + (mid.data[src + q] as number) * d
      }
  return { data: matmul(up.data, t, outDim, ra, inDim * kk), shape: [outDim, inDim, ...k] }
}

/** torch.kron of two matrices seen as 2-D ([rows, everything else]). */
export function kron2d(a: Mat, b: Mat): Float32Array {
  const ar = a.shape[0] ?? 0
  const ac = a.data.length / Math.max(1, ar)
  const br = b.shape[0] ?? 0
  const bc = b.data.length / Math.max(1, br)
  const cols = ac * bc
  const out = new Float32Array(ar * br * cols)
  for (let i1 = 0; i1 < ar; i1++)
    for (let i2 = 0; i2 < br; i2++) {
      const row = (i1 * br + i2) * cols
      for (let j1 = 0; j1 < ac; j1++) {
        const av = a.data[i1 * ac + j1] as number
        const dst = row + j1 * bc
        const src = i2 * bc
        for (let j2 = 0; j2 < bc; j2++) out[dst + j2] = av * (b.data[src + j2] as number)
      }
    }
  return out
}

/** Reads a module's tensors by part name (float32). */
export type PartReader = (part: LycoPart) => Promise<Mat | undefined>

export interface ModuleUpdate {
  /** scale * dW in the weight's layout (multiplier not applied). */
  dW: Float32Array
  scale: number
  /** Bias update (full diff_b). */
  dB?: Float32Array
  doraScale?: Mat
}

function need(m: Mat | undefined, part: string, module: string): Mat {
  if (!m) throw new Error(`${module}: missing ${part}`)
  return m
}

/**
 * scale * dW of one module (and diff_b), with `weightNumel` the layer weight's element count (checked).
 * `module` names the module in error messages.
 */
export async function moduleUpdate(
  kind: LycoKind,
  read: PartReader,
  weightNumel: number,
  module: string,
): Promise<ModuleUpdate> {
  const alphaT = kind === 'full' ? undefined : await read('alpha')
  const alpha = alphaT ? (alphaT.data[0] as number) : undefined
  let dW: Float32Array
  let rank: number | undefined
  let dB: Float32Array | undefined
  if (kind === 'lora') {
    const down = need(await read('lora_down.weight'), 'lora_down', module)
    const up = need(await read('lora_up.weight'), 'lora_up', module)
    const mid = await read('lora_mid.weight')
    rank = down.shape[0] ?? 1
    if (mid) dW = rebuildCp(up, mid, down).data
    else {
      const outDim = up.shape[0] ?? 0
      const r = up.data.length / Math.max(1, outDim)
      dW = matmul(up.data, down.data, outDim, r, down.data.length / r)
    }
  } else if (kind === 'loha') {
    const w1a = need(await read('hada_w1_a'), 'hada_w1_a', module)
    const w1b = need(await read('hada_w1_b'), 'hada_w1_b', module)
    const w2a = need(await read('hada_w2_a'), 'hada_w2_a', module)
    const w2b = need(await read('hada_w2_b'), 'hada_w2_b', module)
    const t1 = await read('hada_t1')
    const t2 = await read('hada_t2')
    rank = w1b.shape[0] ?? 1
    let f1: Float32Array
    let f2: Float32Array
    if (t1 && t2) {
      f1 = makeWeightCp(t1, w1a, w1b).data
      f2 = makeWeightCp(t2, w2a, w2b).data
    } else {
      const o1 = w1a.shape[0] ?? 0
      const r1 = w1b.shape[0] ?? 0
      const o2 = w2a.shape[0] ?? 0
      const r2 = w2b.shape[0] ?? 0
      f1 = matmul(w1a.data, w1b.data, o1, r1, w1b.data.length / Math.max(1, r1))
      f2 = matmul(w2a.data, w2b.data, o2, r2, w2b.data.length / Math.max(1, r2))
    }
    if (f1.length !== f2.length) throw new Error(`${module}: LoHa factors have different sizes`)
    dW = new Float32Array(f1.length)
    for (let i = 0; i < dW.length; i++) dW[i] = (f1[i] as number) * (f2[i] as number)
  } else if (kind === 'lokr') {
    let w1 = await read('lokr_w1')
    const w1b = await read('lokr_w1_b')
    if (!w1) {
      const w1a = need(await read('lokr_w1_a'), 'lokr_w1_a', module)
      const b = need(w1b, 'lokr_w1_b', module)
      const r = b.shape[0] ?? 1
      w1 = {
        data: matmul(w1a.data, b.data, w1a.shape[0] ?? 0, r, b.data.length / r),
        shape: [w1a.shape[0] ?? 0, b.data.length / r],
      }
    }
    let w2 = await read('lokr_w2')
    const w2b = await read('lokr_w2_b')
    if (!w2) {
      const w2a = need(await read('lokr_w2_a'), 'lokr_w2_a', module)
      const b = need(w2b, 'lokr_w2_b', module)
      const t2 = await read('lokr_t2')
      if (t2) w2 = makeWeightCp(t2, w2a, b)
      else {
        const r = b.shape[0] ?? 1
        w2 = {
          data: matmul(w2a.data, b.data, w2a.shape[0] ?? 0, r, b.data.length / r),
          shape: [w2a.shape[0] ?? 0, b.data.length / r],
        }
      }
    }
    rank = w2b ? w2b.shape[0] : w1b ? w1b.shape[0] : undefined
    dW = kron2d(w1, w2)
  } else {
    dW = need(await read('diff'), 'diff', module).data
    dB = (await read('diff_b'))?.data
  }
  if (dW.length !== weightNumel)
    throw new Error(`${module}: the update has ${dW.length} values but the layer weight has ${weightNumel}`)
  const scale = kind === 'full' || rank === undefined || alpha === undefined ? 1 : alpha / rank
  if (scale !== 1) for (let i = 0; i < dW.length; i++) dW[i] = (dW[i] as number) * scale
  const doraScale = kind === 'full' ? undefined : await read('dora_scale')
  return { dW, scale, ...(dB ? { dB } : {}), ...(doraScale ? { doraScale } : {}) }
}

/** Whether a dora_scale normalises over the output axis (shape [out, 1, ...]) rather than the input axis. */
export function doraOnOutput(doraShape: readonly number[], weightShape: readonly number[]): boolean {
  const out = weightShape[0] ?? 0
  return (doraShape[0] ?? 0) === out && out !== 1 && (doraShape[1] ?? 1) === 1
}

/**
 * DoRA: the multiplier-free update D = V * s / n - W with V = W + scaledDW (so W' = W + m * D). `weight` is
 * the layer's weight [out, in, ...]. Input axis: no epsilon (A1111); output axis: + float32 eps (LyCORIS).
 */
export function doraUpdate(
  weight: Float32Array,
  weightShape: readonly number[],
  scaledDW: Float32Array,
  dora: Mat,
): Float32Array {
  const out = weightShape[0] ?? 0
  const inDim = weightShape[1] ?? 1
  const kk = numelOf(weightShape.slice(2))
  const v = new Float32Array(weight.length)
  for (let i = 0; i < v.length; i++) v[i] = (weight[i] as number) + (scaledDW[i] as number)
  const D = new Float32Array(weight.length)
  if (doraOnOutput(dora.shape, weightShape)) {
    if (dora.data.length !== out) throw new Error(`dora_scale [${dora.shape}] does not fit [${weightShape}]`)
    const per = inDim * kk
    for (let o = 0; o < out; o++) {
      let ss = 0
      for (let q = 0; q < per; q++) ss += (v[o * per + q] as number) ** 2
      const f = (dora.data[o] as number) / (Math.fround(Math.sqrt(ss)) + FLOAT32_EPS)
      for (let q = 0; q < per; q++) {
        const idx = o * per + q
        D[idx] = (v[idx] as number) * f - (weight[idx] as number)
      }
    }
    return D
  }
  if (dora.data.length !== inDim) throw new Error(`dora_scale [${dora.shape}] does not fit [${weightShape}]`)
  const norms = new Float64Array(inDim)
  for (let o = 0; o < out; o++)
    for (let j = 0; j < inDim; j++)
      for (let q = 0; q < kk; q++)
        norms[j] = (norms[j] as number) + (v[(o * inDim + j) * kk + q] as number) ** 2
  const f = new Float64Array(inDim)
  for (let j = 0; j < inDim; j++) f[j] = (dora.data[j] as number) / Math.fround(Math.sqrt(norms[j] as number))
  for (let o = 0; o < out; o++)
    for (let j = 0; j < inDim; j++)
      for (let q = 0; q < kk; q++) {
        const idx = (o * inDim + j) * kk + q
        D[idx] = (v[idx] as number) * (f[j] as number) - (weight[idx] as number)
      }
  return D
}
