import type { GraphBuilder } from '../../model-formats/onnx/builder'
import type { WeightProvider } from './weights'

/**
 * UNet layer helpers whose ONNX form was chosen for ORT CPU speed (see bench/unet.ts for the numbers).
 * All take canonical (diffusers) weight prefixes and compute in float32.
 */

export type GroupNormImpl = 'native' | 'instance'
export type AttentionImpl = 'mha' | 'unfused'
/**
 * GEGLU projection: one MatMul + Split (the PyTorch export form), two MatMuls on weight slices, or the whole
 * feed-forward as 1x1 convolutions on [B, C, S, 1].
 */
export type GegluImpl = 'split' | 'sliced' | 'conv'
/** Transformer Linears: MatMul on [B, S, C] with transposed weights + Add, or Gemm on [B*S, C]. */
export type LinearImpl = 'matmul' | 'gemm'

export interface LayerOptions {
  groupNorm: GroupNormImpl
  attention: AttentionImpl
  geglu: GegluImpl
  linear: LinearImpl
}

/** Per-graph constants shared by many layers (created once). */
export class Consts {
  private readonly memo = new Map<string, string>()
  constructor(private readonly g: GraphBuilder) {}

  private once(key: string, make: () => string): string {
    let v = this.memo.get(key)
    if (v === undefined) this.memo.set(key, (v = make()))
    return v
  }

  int64(values: number[]): string {
    return this.once(`i:${values.join(',')}`, () => this.g.constInt64(values))
  }

  ones(n: number): string {
    return this.once(`1:${n}`, () => this.g.constFloat(new Float32Array(n).fill(1), [n], 'ones'))
  }

  zeros(n: number): string {
    return this.once(`0:${n}`, () => this.g.constFloat(new Float32Array(n), [n], 'zeros'))
  }
}

/** x * sigmoid(x); ORT folds this pair into one kernel (QuickGelu with alpha 1). */
export function silu(g: GraphBuilder, x: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [x])])
}

/** A weight reshaped to a fixed shape (a constant Reshape, folded by ORT at session creation). */
export function weightAs(
  g: GraphBuilder,
  w: WeightProvider,
  c: Consts,
  name: string,
  shape: number[],
): string {
  const have = w.shape(name)
  if (have.length === shape.length && have.every((d, i) => d === shape[i])) return w.get(g, name)
  return g.op('Reshape', [w.get(g, name), c.int64(shape)])
}

/**
 * GroupNorm on NCHW with per-channel affine (PyTorch nn.GroupNorm). `native`: opset-21
 * GroupNormalization; `instance`: Reshape [B, G, -1] -> InstanceNormalization -> Reshape back -> affine.
 */
export function groupNorm(
  g: GraphBuilder,
  w: WeightProvider,
  c: Consts,
  prefix: string,
  x: string,
  channels: number,
  eps: number,
  impl: GroupNormImpl,
  groups = 32,
): string {
  if (impl === 'native') {
    return g.op('GroupNormalization', [x, w.get(g, `${prefix}.weight`), w.get(g, `${prefix}.bias`)], {
      num_groups: groups,
      epsilon: { float: eps },
    })
  }
  const grouped = g.op('Reshape', [x, c.int64([0, groups, -1])])
  const normed = g.op('InstanceNormalization', [grouped, c.ones(groups), c.zeros(groups)], {
    epsilon: { float: eps },
  })
  const back = g.op('Reshape', [normed, g.op('Shape', [x])])
  const scale = weightAs(g, w, c, `${prefix}.weight`, [channels, 1, 1])
  const bias = weightAs(g, w, c, `${prefix}.bias`, [channels, 1, 1])
  return g.op('Add', [g.op('Mul', [back, scale]), bias])
}

/** Convolution with the weight's kernel, "same" padding unless given (shared with the VAE and text graphs). */
export { conv2d as conv } from './nn'

/** nn.Linear on the last axis: x @ W^T (+ b). */
export function linear(g: GraphBuilder, w: WeightProvider, prefix: string, x: string): string {
  const y = g.op('MatMul', [x, w.getLinearT(g, `${prefix}.weight`)])
  return w.has(`${prefix}.bias`) ? g.op('Add', [y, w.get(g, `${prefix}.bias`)]) : y
}

/** nn.Linear on a 2-D input as one Gemm (no transposed copy of the weight needed). */
export function gemm(g: GraphBuilder, w: WeightProvider, prefix: string, x: string): string {
  const inputs = [x, w.get(g, `${prefix}.weight`)]
  if (w.has(`${prefix}.bias`)) inputs.push(w.get(g, `${prefix}.bias`))
  return g.op('Gemm', inputs, { transB: 1 })
}

export function layerNorm(g: GraphBuilder, w: WeightProvider, prefix: string, x: string, eps = 1e-5): string {
  return g.op('LayerNormalization', [x, w.get(g, `${prefix}.weight`), w.get(g, `${prefix}.bias`)], {
    axis: -1,
    epsilon: { float: eps },
  })
}

/**
 * Scaled dot-product attention over [B, S, heads*d] queries and [B, L, heads*d] keys/values (softmax scale
 * 1/sqrt(d)). `mha`: one com.microsoft MultiHeadAttention node; `unfused`: Reshape/Transpose/MatMul/Softmax.
 */
export function attention(
  g: GraphBuilder,
  c: Consts,
  q: string,
  k: string,
  v: string,
  heads: number,
  channels: number,
  impl: AttentionImpl,
): string {
  if (impl === 'mha')
    return g.op('MultiHeadAttention', [q, k, v], { num_heads: heads }, { domain: 'com.microsoft' })
  const d = channels / heads
  const split = (x: string, perm: number[]): string =>
    g.op('Transpose', [g.op('Reshape', [x, c.int64([0, 0, heads, d])])], { perm })
  const qh = split(q, [0, 2, 1, 3])
  const kh = split(k, [0, 2, 3, 1])
  const vh = split(v, [0, 2, 1, 3])
  const scale = g.constFloat([1 / Math.sqrt(d)], [], 'attn_scale')
  const scores = g.op('Mul', [g.op('MatMul', [qh, kh]), scale])
  const probs = g.op('Softmax', [scores], { axis: -1 })
  const out = g.op('Transpose', [g.op('MatMul', [probs, vh])], { perm: [0, 2, 1, 3] })
  return g.op('Reshape', [out, c.int64([0, 0, channels])])
}
