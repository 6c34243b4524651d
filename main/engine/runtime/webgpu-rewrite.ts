import { onnx } from '../../model-formats/onnx/builder'

/**
 * Load-time rewrites of a model for onnxruntime 1.30's WebGPU execution provider, replacing nodes whose
 * WebGPU kernels compute wrong numbers with the same math in standard ONNX ops. Both were found by
 * bisecting our graphs with every intermediate value as an output, WebGPU (SwiftShader) against CPU;
 * runtime/webgpu.test.ts keeps minimal models of both.
 *
 * 1. `InstanceNormalization` (always on WebGPU): the kernel writes epsilon into the shader source with
 *    `std::to_string` but leaves it out of the program's cache key (components and B*C only), so every
 *    InstanceNormalization of the same shape class in the process runs with the epsilon of whichever was
 *    compiled first; our UNet's resnet GroupNorms (eps 1e-5) and transformer GroupNorms (eps 1e-6) share
 *    one shader and the second set is off (UNet eps 1.45e-2 vs CPU on the oracle model). `std::to_string`
 *    also prints eps < 5e-7 as 0, and the variance is E[x^2] - E[x]^2 (cancellation). Replaced by a
 *    two-pass ReduceMean form: mean, centred square mean, (x - mean) / sqrt(var + eps), then scale/bias.
 * 2. `Conv` (always on WebGPU): with more than 3 input channels divisible by 3 but not by 4 (6, 9, 15, 18,
 *    ...; 3 and 12 are right), 3x3 convolutions come out wrong by several units (its "Conv2dMM" shader with
 *    3-wide inner vectors); the 9-channel inpainting UNet's conv_in is one (inpaint eps 1.29 vs CPU).
 *    Replaced by the same Conv on inputs and weights zero-padded to a multiple of 4 channels.
 * 3. `com.microsoft.MultiHeadAttention` (only where the adapter's flash attention fails the probe, see
 *    webgpu-probe.ts): query lengths >= 32 with head size divisible by 4 go to a "FlashAttention" prefill
 *    shader that exchanges K/V rows with `subgroupShuffle` lanes up to 15 without checking the subgroup
 *    size; with 4-wide subgroups (SwiftShader) it is wrong by 0.2-0.5 on unit-scale inputs. Replaced by
 *    Reshape/Transpose/MatMul/Softmax: softmax(q k^T * scale + attention_bias) v per head, scale = the
 *    node's `scale` or 1/sqrt(head size). Only the forms our builders emit are rewritten (3-D q/k/v, an
 *    optional attention_bias); anything else is kept and reported.
 */

const MS_DOMAIN = 'com.microsoft'
const T = onnx.AttributeProto.AttributeType

export interface RewriteOptions {
  instanceNorm: boolean
  attention: boolean
  conv: boolean
}

export interface RewriteResult {
  model: Uint8Array
  /** Nodes replaced, by op type. */
  rewritten: Record<string, number>
  /** Nodes left as they were, with why. */
  kept: string[]
}

/** Cheap pre-check on the serialized bytes (op type names are plain strings in the protobuf). */
export function mayNeedRewrite(bytes: Uint8Array, opts: RewriteOptions): boolean {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return (
    (opts.instanceNorm && b.includes('InstanceNormalization')) ||
    (opts.attention && b.includes('MultiHeadAttention')) ||
    (opts.conv && b.includes('Conv'))
  )
}

function attr(n: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return n.attribute?.find((a) => a.name === name)
}

function int64Init(name: string, values: number[]): onnx.ITensorProto {
  const b = BigInt64Array.from(values.map((v) => BigInt(v)))
  return {
    name,
    dataType: onnx.TensorProto.DataType.INT64,
    dims: [values.length],
    rawData: new Uint8Array(b.buffer),
  }
}

function floatInit(name: string, value: number): onnx.ITensorProto {
  const f = Float32Array.from([value])
  return { name, dataType: onnx.TensorProto.DataType.FLOAT, dims: [], rawData: new Uint8Array(f.buffer) }
}

export function rewriteForWebGpu(bytes: Uint8Array, opts: RewriteOptions): RewriteResult {
  const none: RewriteResult = { model: bytes, rewritten: {}, kept: [] }
  if (!mayNeedRewrite(bytes, opts)) return none
  const model = onnx.ModelProto.decode(bytes)
  const graph = model.graph
  if (!graph?.node) return none
  const opset = Number(model.opsetImport?.find((o) => (o.domain ?? '') === '')?.version ?? 0)
  const used = new Set<string>()
  for (const n of graph.node) for (const o of [...(n.input ?? []), ...(n.output ?? [])]) used.add(o)
  for (const i of graph.initializer ?? []) if (i.name) used.add(i.name)
  const initDims = new Map<string, number[]>()
  for (const i of graph.initializer ?? []) if (i.name) initDims.set(i.name, (i.dims ?? []).map(Number))
  const producer = new Map<string, onnx.INodeProto>()
  for (const n of graph.node) for (const o of n.output ?? []) producer.set(o, n)
  /**
   * Static dims of a constant: an initializer, possibly behind the nodes fp16.ts puts in front of weights
   * (Cast for fp16-stored weights; Clip to ±65504 then Cast for fp32-stored ones) or an Identity.
   */
  const constDims = (name: string): number[] | undefined => {
    for (let hops = 0; hops < 4; hops++) {
      const d = initDims.get(name)
      if (d) return d
      const p = producer.get(name)
      if (!p || !['Cast', 'Identity', 'Clip'].includes(p.opType ?? '') || !p.input?.[0]) return undefined
      name = p.input[0]
    }
    return undefined
  }
  let counter = 0
  const fresh = (base: string): string => {
    let s: string
    do s = `${base}__wg${counter++}`
    while (used.has(s))
    used.add(s)
    return s
  }
  const nodes: onnx.INodeProto[] = []
  const inits: onnx.ITensorProto[] = []
  const kept: string[] = []
  const rewritten: Record<string, number> = {}
  const builder = (base: string) => {
    const op = (
      opType: string,
      inputs: string[],
      attrs: onnx.IAttributeProto[] = [],
      out?: string,
    ): string => {
      const o = out ?? fresh(base)
      nodes.push({
        opType,
        domain: '',
        name: fresh(`${base}_${opType}`),
        input: inputs,
        output: [o],
        attribute: attrs,
      })
      return o
    }
    const i64 = (values: number[]): string => {
      const n = fresh(`${base}_c`)
      inits.push(int64Init(n, values))
      return n
    }
    const f32 = (value: number): string => {
      const n = fresh(`${base}_c`)
      inits.push(floatInit(n, value))
      return n
    }
    return { op, i64, f32 }
  }
  const perm = (p: number[]): onnx.IAttributeProto => ({ name: 'perm', type: T.INTS, ints: p })

  for (const n of graph.node) {
    const label = n.name || n.output?.[0] || n.opType || '?'
    const out = n.output?.[0] ?? ''
    if (opts.instanceNorm && n.opType === 'InstanceNormalization' && (n.domain ?? '') === '') {
      const [x, scale, bias] = n.input ?? []
      if (!x || !scale || !bias || !out) {
        kept.push(`${label}: InstanceNormalization with missing inputs`)
        nodes.push(n)
        continue
      }
      const { op, i64, f32 } = builder(label)
      const eps = attr(n, 'epsilon')?.f ?? 1e-5
      // [N, C, spatial...] -> [N, C, L]; statistics over L in two passes; per-channel affine; shape back.
      const keep = { name: 'keepdims', type: T.INT, i: 1 }
      const x3 = op('Reshape', [x, i64([0, 0, -1])])
      // ReduceMean takes its axes as an input from opset 18, as an attribute before.
      const axesInput = opset >= 18 ? [i64([2])] : []
      const axesAttr = opset >= 18 ? [] : [{ name: 'axes', type: T.INTS, ints: [2] }]
      const mean = (t: string): string => op('ReduceMean', [t, ...axesInput], [keep, ...axesAttr])
      const centred = op('Sub', [x3, mean(x3)])
      const variance = mean(op('Mul', [centred, centred]))
      const normed = op('Div', [centred, op('Sqrt', [op('Add', [variance, f32(eps)])])])
      const column = i64([-1, 1])
      const affine = op('Add', [
        op('Mul', [normed, op('Reshape', [scale, column])]),
        op('Reshape', [bias, column]),
      ])
      op('Reshape', [affine, op('Shape', [x])], [], out)
      rewritten.InstanceNormalization = (rewritten.InstanceNormalization ?? 0) + 1
      continue
    }
    if (opts.conv && n.opType === 'Conv' && (n.domain ?? '') === '') {
      const [x, weight, ...rest] = n.input ?? []
      const wd = weight ? constDims(weight) : undefined
      const cin = wd?.[1] ?? 0
      const group = Number(attr(n, 'group')?.i ?? 1)
      if (
        x &&
        weight &&
        out &&
        wd?.length === 4 &&
        group === 1 &&
        cin > 3 &&
        cin % 3 === 0 &&
        cin % 4 !== 0
      ) {
        // Zero channels up to a multiple of 4 on the input and the weight (ORT folds the weight's Pad).
        const { op, i64 } = builder(label)
        const extra = 4 - (cin % 4)
        const pads = i64([0, 0, 0, 0, 0, extra, 0, 0])
        const padded = [op('Pad', [x, pads]), op('Pad', [weight, pads]), ...rest]
        nodes.push({ ...n, input: padded })
        rewritten.Conv = (rewritten.Conv ?? 0) + 1
        continue
      }
      nodes.push(n)
      continue
    }
    if (!(opts.attention && n.opType === 'MultiHeadAttention' && n.domain === MS_DOMAIN)) {
      nodes.push(n)
      continue
    }
    const ins = n.input ?? []
    const [q, k, v] = ins
    const extraInputs = [3, 4, 6, 7].some((i) => (ins[i] ?? '') !== '')
    const unidirectional = Number(attr(n, 'unidirectional')?.i ?? 0) !== 0
    const heads = Number(attr(n, 'num_heads')?.i ?? 0)
    const outputs = (n.output ?? []).filter((o) => o !== '')
    if (!q || !k || !v || extraInputs || unidirectional || !(heads > 0) || outputs.length !== 1 || !out) {
      kept.push(`${label}: MultiHeadAttention with inputs or attributes outside the rewritten form`)
      nodes.push(n)
      continue
    }
    const { op, i64, f32 } = builder(label)
    const split = i64([0, 0, heads, -1])
    const qh = op('Transpose', [op('Reshape', [q, split])], [perm([0, 2, 1, 3])])
    const kh = op('Transpose', [op('Reshape', [k, split])], [perm([0, 2, 3, 1])])
    const vh = op('Transpose', [op('Reshape', [v, split])], [perm([0, 2, 1, 3])])
    const given = attr(n, 'scale')?.f
    let scale: string
    if (typeof given === 'number' && given !== 0) scale = f32(given)
    else {
      // 1/sqrt(head size), head size = last dim of q / heads (scalar ops; ORT keeps them on CPU).
      const hidden = op('Shape', [q], [{ name: 'start', type: T.INT, i: -1 }])
      const d = op(
        'Cast',
        [op('Div', [hidden, i64([heads])])],
        [{ name: 'to', type: T.INT, i: onnx.TensorProto.DataType.FLOAT }],
      )
      scale = op('Reciprocal', [op('Sqrt', [d])])
    }
    // Scale, bias and softmax in fp32 (an fp32 island when the graph computes in fp16, see fp16.ts; the
    // Casts are no-ops that ORT removes in fp32 graphs), probabilities back in q's type for the MatMul.
    const toFloat = [{ name: 'to', type: T.INT, i: onnx.TensorProto.DataType.FLOAT }]
    let scores = op('Mul', [op('Cast', [op('MatMul', [qh, kh])], toFloat), scale])
    if ((ins[5] ?? '') !== '') scores = op('Add', [scores, op('Cast', [ins[5] as string], toFloat)])
    const probs = op('CastLike', [op('Softmax', [scores], [{ name: 'axis', type: T.INT, i: -1 }]), vh])
    const merged = op('Transpose', [op('MatMul', [probs, vh])], [perm([0, 2, 1, 3])])
    op('Reshape', [merged, i64([0, 0, -1])], [], out)
    rewritten.MultiHeadAttention = (rewritten.MultiHeadAttention ?? 0) + 1
  }
  if (Object.keys(rewritten).length === 0) return { ...none, kept }
  graph.node = nodes
  graph.initializer = [...(graph.initializer ?? []), ...inits]
  return { model: onnx.ModelProto.encode(model).finish(), rewritten, kept }
}
