import { onnx } from '../../model-formats/onnx/builder'

/**
 * The fp16 compute pass: turns one of our fp32-compute graphs (fp16 or fp32 weights) into the graph a GPU
 * provider runs in half precision, at load time, without touching the weight files.
 *
 * - Activations are fp16: MatMul, Gemm, Conv, attention and embedding lookups always compute in fp16 (their
 *   fp32 inputs are cast down, as diffusers' `.to(dtype)` does); element-wise and layout ops follow their
 *   activation inputs.
 * - fp32 islands: GroupNormalization, InstanceNormalization, LayerNormalization and Softmax take fp32 inputs
 *   and their outputs are cast back to fp16 (statistics and exp sums in fp32, as PyTorch's fp16 kernels
 *   accumulate them). Values computed from fp32 graph inputs before they meet an fp16 op stay fp32: the
 *   timestep embedding (sin/cos of t, already float64 in our UNet) and the SDXL time-id embedding,
 *   as diffusers computes them in fp32 and casts before `linear_1`.
 * - Weights: fp16 weights stored behind a Cast to fp32 feed the fp16 ops directly; fp32 constants get a
 *   Cast to fp16 that session creation folds.
 * - Graph inputs and outputs keep their fp32 types (Casts at the borders), so callers feed and read the
 *   same tensors on every provider.
 *
 * `emulate` builds the same graph with every tensor kept fp32 but rounded to fp16 (Cast fp32 -> fp16 ->
 * fp32) wherever the fp16 graph stores a value in fp16: inputs of fp16 ops, weights, and the outputs of
 * fp16 ops that compute (not those that only move values). It runs on any provider with fp32 kernels and
 * reproduces a GPU whose fp16 kernels accumulate in fp32 (cuBLAS/cuDNN defaults) up to the order of
 * additions; onnxruntime keeps Cast pairs (measured: runtime/fp16.test.ts).
 */

const DT = onnx.TensorProto.DataType
const T = onnx.AttributeProto.AttributeType
const FLOAT = DT.FLOAT as number
const HALF = DT.FLOAT16 as number

export type Fp16Mode = 'native' | 'emulate'

export interface Fp16Options {
  mode: Fp16Mode
  /** Extra op types to compute in fp32 (default islands: the norms and Softmax). */
  islands?: readonly string[]
}

export interface Fp16Result {
  model: Uint8Array
  /** Nodes computing in fp16, by op type. */
  fp16: Record<string, number>
  /** Nodes computing in fp32 (islands and fp32 regions), by op type. */
  fp32: Record<string, number>
  /** Casts (or, emulated, rounding pairs) added. */
  casts: number
}

export const FP16_ISLANDS = [
  'GroupNormalization',
  'InstanceNormalization',
  'LayerNormalization',
  'SkipLayerNormalization',
  'Softmax',
] as const

/** Ops that always compute in fp16 (the weight-carrying ones), casting fp32 activations down. */
const FP16_OPS = new Set([
  'MatMul',
  'Gemm',
  'Conv',
  'ConvTranspose',
  'MultiHeadAttention',
  'Attention',
  'Gather',
  'Einsum',
])

/** Ops whose float output is exactly one of their float input values (no rounding to emulate). */
const MOVES = new Set([
  'Reshape',
  'Transpose',
  'Slice',
  'Concat',
  'Squeeze',
  'Unsqueeze',
  'Expand',
  'Identity',
  'Gather',
  'GatherND',
  'GatherElements',
  'Split',
  'DepthToSpace',
  'SpaceToDepth',
  'Flatten',
  'Tile',
  'Where',
  'Pad',
  'Relu',
  'Max',
  'Min',
])

/** Layout ops a constant weight may pass through between its fp16 storage and an fp16 op. */
const LAYOUT = new Set(['Transpose', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Flatten'])

/** Output element types fixed by the op (not the input's). */
const INT64_OUT = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero'])
const BOOL_OUT = new Set([
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
  'IsNaN',
  'IsInf',
])

/** Inputs (by index) that keep their own type whatever the node computes in. */
const FIXED_INPUTS: Record<string, number[]> = { Resize: [1, 2], Upsample: [1] }

function isFloat(t: number | undefined): boolean {
  return t === FLOAT || t === HALF
}

function attr(n: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return n.attribute?.find((a) => a.name === name)
}

function bump(r: Record<string, number>, k: string): void {
  r[k] = (r[k] ?? 0) + 1
}

function tensorType(t: onnx.ITensorProto | null | undefined): number | undefined {
  return t?.dataType ?? undefined
}

function outputType(n: onnx.INodeProto, inTypes: (number | undefined)[]): number | undefined {
  const op = n.opType ?? ''
  if (INT64_OUT.has(op)) return DT.INT64
  if (BOOL_OUT.has(op)) return DT.BOOL
  if (op === 'Cast') return Number(attr(n, 'to')?.i ?? 0)
  if (op === 'CastLike') return inTypes[1]
  if (op === 'ConstantOfShape') return tensorType(attr(n, 'value')?.t) ?? FLOAT
  if (op === 'Constant') {
    const a = n.attribute?.[0]
    if (!a) return undefined
    if (a.name === 'value') return tensorType(a.t)
    if (a.name === 'value_float' || a.name === 'value_floats') return FLOAT
    if (a.name === 'value_int' || a.name === 'value_ints') return DT.INT64
    return undefined
  }
  if (op === 'Where') return inTypes[1]
  return inTypes.find((t) => t !== undefined)
}

export function toFp16Compute(bytes: Uint8Array, opts: Fp16Options): Fp16Result {
  const model = onnx.ModelProto.decode(bytes)
  const graph = model.graph
  if (!graph?.node) throw new Error('fp16 pass: the model has no graph')
  const emulate = opts.mode === 'emulate'
  const islands = new Set<string>([...FP16_ISLANDS, ...(opts.islands ?? [])])

  const used = new Set<string>()
  for (const n of graph.node) for (const o of [...(n.input ?? []), ...(n.output ?? [])]) used.add(o)
  for (const i of graph.initializer ?? []) if (i.name) used.add(i.name)
  for (const i of graph.input ?? []) if (i.name) used.add(i.name)
  let counter = 0
  const fresh = (base: string): string => {
    let s: string
    do s = `${base}__h${counter++}`
    while (used.has(s))
    used.add(s)
    return s
  }

  /**
   * Per value: the element type it holds in the new graph (emulated: the type it would hold, its values
   * already fp16-representable when HALF), whether it depends on a graph input (an activation), and the
   * name that holds it now (a rounding pair or island Cast renames).
   */
  const type = new Map<string, number | undefined>()
  const act = new Set<string>()
  const producer = new Map<string, onnx.INodeProto>()
  /** Emulation: values whose tensors really are fp16 (fp16 initializers, and what only moves them). */
  const realHalf = new Set<string>()
  for (const i of graph.initializer ?? []) {
    if (!i.name) continue
    type.set(i.name, i.dataType ?? undefined)
    if (i.dataType === HALF) realHalf.add(i.name)
  }
  for (const i of graph.input ?? []) {
    if (!i.name) continue
    type.set(i.name, i.type?.tensorType?.elemType ?? undefined)
    act.add(i.name)
  }
  const outputsDeclared = new Map<string, number | undefined>()
  for (const o of graph.output ?? [])
    if (o.name) outputsDeclared.set(o.name, o.type?.tensorType?.elemType ?? undefined)

  const nodes: onnx.INodeProto[] = []
  const fp16: Record<string, number> = {}
  const fp32: Record<string, number> = {}
  let casts = 0
  const converted = new Map<string, string>()

  const castNode = (input: string, to: number, out: string): void => {
    nodes.push({
      opType: 'Cast',
      domain: '',
      name: fresh(`${input}_cast`),
      input: [input],
      output: [out],
      attribute: [{ name: 'to', type: T.INT, i: to }],
    })
  }
  /** Emulation: out = fp16-rounded input, kept fp32. */
  const roundNode = (input: string, out: string): void => {
    const mid = fresh(`${input}_f16`)
    castNode(input, HALF, mid)
    castNode(mid, FLOAT, out)
  }

  const inits: onnx.ITensorProto[] = []
  let clipBounds: [string, string] | undefined
  /** fp32 constants are clipped to fp16's finite range before the Cast (a -1e9 mask stays finite). */
  const clipped = (name: string): string => {
    if (!clipBounds) {
      const lo = fresh('fp16_min')
      const hi = fresh('fp16_max')
      for (const [n, v] of [
        [lo, -65504],
        [hi, 65504],
      ] as const)
        inits.push({ name: n, dataType: FLOAT, dims: [], rawData: new Uint8Array(Float32Array.of(v).buffer) })
      clipBounds = [lo, hi]
    }
    const out = fresh(`${name}_clip`)
    nodes.push({
      opType: 'Clip',
      domain: '',
      name: fresh(`${name}_Clip`),
      input: [name, ...clipBounds],
      output: [out],
    })
    return out
  }

  /** A constant that is an fp16 weight cast to fp32, possibly through layout ops. */
  const fromHalfWeight = (name: string, depth = 0): boolean => {
    const p = producer.get(name)
    if (!p || act.has(name) || depth > 4) return false
    const i0 = p.input?.[0]
    if (!i0) return false
    if (p.opType === 'Cast') return type.get(i0) === HALF
    return LAYOUT.has(p.opType ?? '') && fromHalfWeight(i0, depth + 1)
  }

  /**
   * The value `name` as element type `to` (cached). Emulated, every value is really fp32 and `type` says
   * whether it is already fp16-representable: an fp32 consumer reads any value as it is, an fp16 one gets
   * a rounding pair. Real fp16 tensors (fp16 initializers, when emulating) are cast up first.
   */
  const as = (name: string, to: number): string => {
    const t = type.get(name)
    const key = `${name}\u0000${to}`
    const hit = converted.get(key)
    if (hit) return hit
    let out: string
    if (emulate) {
      if (realHalf.has(name)) {
        out = fresh(name)
        castNode(name, FLOAT, out)
      } else {
        if (t === to || to === FLOAT) return name
        out = fresh(name)
        roundNode(act.has(name) ? name : clipped(name), out)
      }
      type.set(out, HALF)
    } else {
      if (t === to) return name
      // An fp16 weight behind a Cast to fp32 feeds fp16 ops as it is stored, also through the layout ops
      // of a constant (a Linear weight's Transpose): no fp32 copy is folded at session creation.
      const p = producer.get(name)
      const src = p?.opType === 'Cast' ? p.input?.[0] : undefined
      if (to === HALF && src && type.get(src) === HALF && !act.has(name)) {
        converted.set(key, src)
        return src
      }
      const input0 = p?.input?.[0]
      if (
        to === HALF &&
        p &&
        input0 &&
        !act.has(name) &&
        LAYOUT.has(p.opType ?? '') &&
        (p.output?.length ?? 0) === 1 &&
        fromHalfWeight(input0)
      ) {
        out = fresh(name)
        nodes.push({
          ...p,
          name: fresh(`${p.name ?? name}_h`),
          input: [as(input0, HALF), ...(p.input ?? []).slice(1)],
          output: [out],
        })
        type.set(out, HALF)
        converted.set(key, out)
        return out
      }
      out = fresh(name)
      castNode(to === HALF && !act.has(name) ? clipped(name) : name, to, out)
      type.set(out, to)
    }
    casts++
    if (act.has(name)) act.add(out)
    converted.set(key, out)
    return out
  }

  for (const n of graph.node) {
    const op = n.opType ?? ''
    const ins = n.input ?? []
    for (const i of ins)
      if (i !== '' && !type.has(i) && !producer.has(i))
        throw new Error(`fp16 pass: ${n.name || op} reads ${i} before it is produced (graph not sorted)`)
    const isAct = ins.some((i) => act.has(i))
    const fixed = FIXED_INPUTS[op] ?? []
    const floatIdx = ins
      .map((v, idx) => ({ v, idx }))
      .filter(({ v, idx }) => v !== '' && !fixed.includes(idx) && isFloat(type.get(v)))
    const floatActs = floatIdx.filter(({ v }) => act.has(v))
    const anyHalfAct = floatActs.some(({ v }) => type.get(v) === HALF)

    // Constant subgraphs, Casts and ops without float operands stay as they are.
    let compute: number | undefined
    // Ops with a non-float result (Shape, ArgMax, comparisons) read any float type as it is.
    const floatResult = isFloat(
      outputType(
        n,
        ins.map((i) => type.get(i)),
      ),
    )
    if (isAct && floatResult && op !== 'Cast' && (n.domain ?? '') !== 'ai.onnx.ml' && floatIdx.length > 0) {
      if (islands.has(op)) compute = FLOAT
      else if (FP16_OPS.has(op)) compute = HALF
      else if (anyHalfAct) compute = HALF
      else if (floatActs.length) compute = FLOAT
      else compute = HALF // float constants selected or shaped by activations (Where masks, Expand)
    }
    if (compute === undefined) {
      nodes.push(n)
      const inTypes = ins.map((i) => type.get(i))
      let t = outputType(n, inTypes)
      const fromHalf = op === 'Cast' && type.get(ins[0] ?? '') === HALF
      if (emulate && t === HALF) for (const o of n.output ?? []) if (o) realHalf.add(o)
      // Emulated: an fp16 value cast to fp32 holds fp16-representable values.
      if (emulate && t === FLOAT && fromHalf) t = HALF
      for (const o of n.output ?? []) {
        if (!o) continue
        type.set(o, t)
        producer.set(o, n)
        if (isAct) act.add(o)
      }
      continue
    }

    const newIns = ins.map((v, idx) =>
      v !== '' && !fixed.includes(idx) && isFloat(type.get(v)) ? as(v, compute) : v,
    )
    // Islands inside an fp16 region hand fp16 back; fp16 ops that compute are rounded when emulated.
    const outType = compute === FLOAT && islands.has(op) && anyHalfAct ? HALF : compute
    const post = outType === HALF && (islands.has(op) || (emulate && !MOVES.has(op)))
    const nodeOuts: string[] = []
    const finish: (() => void)[] = []
    for (const o of n.output ?? []) {
      if (!o) {
        nodeOuts.push(o)
        continue
      }
      // The chain node -> [island Cast or rounding pair] -> [Cast to a graph output's fp32]: the last
      // step writes the value's own name, so its consumers need no renaming.
      const toGraphFloat =
        !emulate && outType === HALF && outputsDeclared.has(o) && outputsDeclared.get(o) !== HALF
      const first = post || toGraphFloat ? fresh(o) : o
      nodeOuts.push(first)
      act.add(first)
      producer.set(first, n)
      type.set(first, emulate ? (compute === HALF && !post ? HALF : FLOAT) : compute)
      finish.push(() => {
        let cur = first
        if (post) {
          const next = toGraphFloat ? fresh(o) : o
          if (emulate) roundNode(cur, next)
          else castNode(cur, HALF, next)
          casts++
          act.add(next)
          type.set(next, HALF)
          cur = next
        }
        if (toGraphFloat) {
          castNode(cur, FLOAT, o)
          casts++
          act.add(o)
          type.set(o, FLOAT)
        }
      })
    }
    nodes.push({ ...n, input: newIns, output: nodeOuts })
    for (const f of finish) f()
    bump(compute === HALF ? fp16 : fp32, op)
  }
  // Drop what nothing reads any more (the fp32 Casts and layout ops of weights that now feed fp16 ops).
  const live = new Set<string>(outputsDeclared.keys())
  const kept: onnx.INodeProto[] = []
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i] as onnx.INodeProto
    if (!(n.output ?? []).some((o) => o && live.has(o))) continue
    kept.push(n)
    for (const x of n.input ?? []) if (x) live.add(x)
  }
  graph.node = kept.reverse()
  graph.initializer = [...(graph.initializer ?? []), ...inits].filter((i) => live.has(i.name ?? ''))
  graph.valueInfo = []
  return { model: onnx.ModelProto.encode(model).finish(), fp16, fp32, casts }
}
