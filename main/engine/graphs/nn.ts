import type { GraphBuilder } from '../../model-formats/onnx/builder'
import type { WeightProvider } from './weights'

/**
 * Layer helpers shared by the graph builders. Each takes the weight prefix in canonical (diffusers)
 * naming, e.g. `encoder.conv_in` for `encoder.conv_in.weight` / `.bias`. Everything computes in float32.
 */

/** y = x @ W^T + b over the last axis (PyTorch nn.Linear; bias optional). */
export function linear(g: GraphBuilder, w: WeightProvider, prefix: string, x: string): string {
  const y = g.op('MatMul', [x, w.getLinearT(g, `${prefix}.weight`)])
  return w.has(`${prefix}.bias`) ? g.op('Add', [y, w.get(g, `${prefix}.bias`)]) : y
}

/** LayerNormalization over the last axis (PyTorch nn.LayerNorm). */
export function layerNorm(g: GraphBuilder, w: WeightProvider, prefix: string, x: string, eps = 1e-5): string {
  return g.op('LayerNormalization', [x, w.get(g, `${prefix}.weight`), w.get(g, `${prefix}.bias`)], {
    axis: -1,
    epsilon: { float: eps },
  })
}

/** GroupNorm on NCHW (opset 21 GroupNormalization: per-channel scale and bias). */
export function groupNorm(
  g: GraphBuilder,
  w: WeightProvider,
  prefix: string,
  x: string,
  groups: number,
  eps: number,
): string {
  return g.op('GroupNormalization', [x, w.get(g, `${prefix}.weight`), w.get(g, `${prefix}.bias`)], {
    num_groups: groups,
    epsilon: { float: eps },
  })
}

/** 2-D convolution; kernel size from the weight, "same" padding (k-1)/2 unless given. */
export function conv2d(
  g: GraphBuilder,
  w: WeightProvider,
  prefix: string,
  x: string,
  opts: { stride?: number; pad?: number } = {},
): string {
  const shape = w.shape(`${prefix}.weight`)
  const kh = shape[2] ?? 1
  const kw = shape[3] ?? 1
  const pad = opts.pad ?? (kh - 1) / 2
  const stride = opts.stride ?? 1
  const inputs = [x, w.get(g, `${prefix}.weight`)]
  if (w.has(`${prefix}.bias`)) inputs.push(w.get(g, `${prefix}.bias`))
  return g.op('Conv', inputs, {
    kernel_shape: [kh, kw],
    pads: [pad, pad, pad, pad],
    strides: [stride, stride],
  })
}

/** x * sigmoid(x) */
export function silu(g: GraphBuilder, x: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [x])])
}

/** x * sigmoid(1.702 x) (OpenAI CLIP's quick_gelu). */
export function quickGelu(g: GraphBuilder, x: string): string {
  const k = g.constFloat([1.702], [], 'qgelu_k')
  return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, k])])])
}

/** Exact (erf) GELU, as torch.nn.functional.gelu. */
export function gelu(g: GraphBuilder, x: string): string {
  return g.op('Gelu', [x])
}

/** A 1-D int64 value holding dimension `axis` of x (shape [1]). */
export function dim(g: GraphBuilder, x: string, axis: number): string {
  return g.op('Shape', [x], { start: axis, end: axis + 1 })
}
