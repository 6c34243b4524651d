import { ELEM, onnx } from '../onnx/builder'
import type { ExternalDataWriter } from '../onnx/external-data'
import type { Delta } from './targets'
import { numel, repoint } from './targets'

/**
 * Low-rank LoRA branches grafted onto a converted graph: for each layer y = f(x, W) a LoRA touches,
 * y' = y + m_k * up'(down(x)) with up' = up * alpha/rank, where m_k is the graph input `lora_scale_<k>`
 * (one per LoRA file). Changing a multiplier is then only a different feed: no new graph, no new session.
 * Layers are found by following the weight initializer through Cast / Transpose to its MatMul, Gemm or
 * Conv consumer.
 */

export function scaleInputName(lora: number): string {
  return `lora_scale_${lora}`
}

/**
 * How a weight reaches its layer. `right`: y = x @ W^T (MatMul on the transposed weight, or Gemm transB);
 * `left`: y = W @ x (a 1x1 conv run as MatMul on [B, C, HW]); `conv`: Conv. `slices` are Slice nodes on
 * the output axis between the weight and the layer (e.g. GEGLU halves), replayed on the up matrix.
 */
interface Consumer {
  node: onnx.INodeProto
  kind: 'right' | 'left' | 'conv'
  slices: onnx.INodeProto[]
}

function attr(n: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return (n.attribute ?? []).find((a) => a.name === name)
}

function isLastTwoSwap(n: onnx.INodeProto): boolean {
  const perm = (attr(n, 'perm')?.ints ?? []).map(Number)
  const r = perm.length
  return (
    r >= 2 && perm[r - 1] === r - 2 && perm[r - 2] === r - 1 && perm.slice(0, r - 2).every((p, i) => p === i)
  )
}

function int64Const(inits: Map<string, onnx.ITensorProto>, name: string | undefined): number[] | undefined {
  const t = name ? inits.get(name) : undefined
  const raw = t?.rawData
  if (!t || !raw || t.dataType !== onnx.TensorProto.DataType.INT64) return undefined
  const bytes = Uint8Array.from(raw)
  return [...new BigInt64Array(bytes.buffer, 0, bytes.length / 8)].map(Number)
}

function findConsumers(
  weight: string,
  dims: number[],
  uses: Map<string, onnx.INodeProto[]>,
  inits: Map<string, onnx.ITensorProto>,
): Consumer[] {
  const out: Consumer[] = []
  const fail = (n: onnx.INodeProto, idx: number): never => {
    throw new Error(
      `weight ${weight} feeds a ${n.opType} node (input ${idx}); a LoRA branch cannot be attached there`,
    )
  }
  // rank: rank of the value; transposed: its last two axes are [in, out].
  const walk = (value: string, rank: number, transposed: boolean, slices: onnx.INodeProto[]): void => {
    for (const n of uses.get(value) ?? []) {
      const idx = (n.input ?? []).indexOf(value)
      const next = n.output?.[0] ?? ''
      const op = n.opType ?? ''
      if (op === 'Cast') walk(next, rank, transposed, slices)
      else if (op === 'Transpose' && isLastTwoSwap(n)) walk(next, rank, !transposed, slices)
      else if (op === 'Reshape' && idx === 0 && !transposed) {
        const shape = int64Const(inits, n.input?.[1])
        if (!shape || shape.length !== 2 || shape[0] !== dims[0]) fail(n, idx)
        walk(next, 2, false, slices)
      } else if (op === 'Slice' && idx === 0 && rank === 2) {
        const axes = int64Const(inits, n.input?.[3])
        const outAxis = transposed ? 1 : 0
        if (!axes || axes.length !== 1 || ((axes[0] as number) + 2) % 2 !== outAxis) fail(n, idx)
        walk(next, rank, transposed, [...slices, n])
      } else if (op === 'MatMul' && idx === 1 && transposed && rank === 2)
        out.push({ node: n, kind: 'right', slices })
      else if (op === 'MatMul' && idx === 0 && !transposed && rank === 2)
        out.push({ node: n, kind: 'left', slices })
      else if (op === 'Gemm' && idx === 1 && Number(attr(n, 'transB')?.i ?? 0) === (transposed ? 0 : 1))
        out.push({ node: n, kind: 'right', slices })
      else if (
        op === 'Conv' &&
        idx === 1 &&
        !transposed &&
        rank === 4 &&
        slices.length === 0 &&
        Number(attr(n, 'group')?.i ?? 1) === 1
      )
        out.push({ node: n, kind: 'conv', slices })
      else fail(n, idx)
    }
  }
  walk(weight, dims.length, false, [])
  if (out.length === 0) throw new Error(`weight ${weight} is not used by any MatMul, Gemm or Conv node`)
  return out
}

function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length)
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j] as number
  return t
}

/**
 * Adds the branches to `model` (mutated) with their weights appended to `side` (a file beside the graph).
 * Returns the scale input names it added.
 */
export async function addBranches(
  model: onnx.ModelProto,
  byWeight: Map<string, Delta[]>,
  side: ExternalDataWriter,
  /** The side file's final name (it is written under a temporary one). */
  location: string,
): Promise<string[]> {
  const graph = model.graph as onnx.ModelProto['graph'] & object
  const nodes = graph.node as onnx.INodeProto[]
  const uses = new Map<string, onnx.INodeProto[]>()
  for (const n of nodes) for (const i of n.input ?? []) uses.set(i, [...(uses.get(i) ?? []), n])
  const inserts = new Map<onnx.INodeProto, onnx.INodeProto[]>()
  const scales = new Set<number>()
  const initializers = graph.initializer as onnx.ITensorProto[]
  let counter = 0

  const addInit = (name: string, dims: number[], data: Float32Array): string => {
    const ref = side.append(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    const t: onnx.ITensorProto = { name, dims }
    repoint(t, location, ref.offset, ref.length)
    initializers.push(t)
    return name
  }

  const initMap = new Map(initializers.map((t) => [t.name ?? '', t]))
  for (const [weight, deltas] of byWeight) {
    const wDims = ((initMap.get(weight)?.dims ?? []) as number[]).map(Number)
    for (const c of findConsumers(weight, wDims, uses, initMap)) {
      const x = (c.kind === 'left' ? c.node.input?.[1] : c.node.input?.[0]) as string
      const y = c.node.output?.[0] as string
      const base = `${y}__lora_base`
      const added: onnx.INodeProto[] = []
      // Replays the weight's output-axis Slices (same starts/ends/axes inputs) on an up matrix.
      const sliced = (id: string, up: string): string => {
        let v = up
        c.slices.forEach((s, i) => {
          const o = `${id}_upslice${i}`
          added.push({ opType: 'Slice', name: o, input: [v, ...(s.input ?? []).slice(1)], output: [o] })
          v = o
        })
        return v
      }
      let acc = base
      for (const d of deltas) {
        const id = `lora${d.lora}_${counter++}`
        const down = d.factors ? d.factors.down.slice() : await d.file.st.readFloat32(d.pair.downKey)
        const up = d.factors ? d.factors.up.slice() : await d.file.st.readFloat32(d.pair.upKey)
        for (let i = 0; i < up.length; i++) up[i] = (up[i] as number) * d.alphaScale
        const inDim = numel(d.downTail)
        if (c.kind === 'right') {
          const dt = addInit(`${id}.down_t`, [inDim, d.rank], transpose2d(down, d.rank, inDim))
          const ut = sliced(id, addInit(`${id}.up_t`, [d.rank, d.out], transpose2d(up, d.out, d.rank)))
          added.push({ opType: 'MatMul', name: `${id}_down`, input: [x, dt], output: [`${id}_h`] })
          added.push({ opType: 'MatMul', name: `${id}_up`, input: [`${id}_h`, ut], output: [`${id}_b`] })
        } else if (c.kind === 'left') {
          const dn = addInit(`${id}.down`, [d.rank, inDim], down)
          const un = sliced(id, addInit(`${id}.up`, [d.out, d.rank], up))
          added.push({ opType: 'MatMul', name: `${id}_down`, input: [dn, x], output: [`${id}_h`] })
          added.push({ opType: 'MatMul', name: `${id}_up`, input: [un, `${id}_h`], output: [`${id}_b`] })
        } else {
          // The down conv takes the layer's own kernel, strides, pads and dilations; up is 1x1.
          const kernel = wDims.slice(2)
          const dn = addInit(`${id}.down`, [d.rank, wDims[1] ?? 0, ...kernel], down)
          const un = addInit(`${id}.up`, [d.out, d.rank, ...kernel.map(() => 1)], up)
          const keep = (c.node.attribute ?? []).filter((a) =>
            ['kernel_shape', 'pads', 'strides', 'dilations', 'auto_pad'].includes(a.name ?? ''),
          )
          added.push({
            opType: 'Conv',
            name: `${id}_down`,
            input: [x, dn],
            output: [`${id}_h`],
            attribute: keep,
          })
          added.push({ opType: 'Conv', name: `${id}_up`, input: [`${id}_h`, un], output: [`${id}_b`] })
        }
        const scale = scaleInputName(d.lora)
        scales.add(d.lora)
        added.push({ opType: 'Mul', name: `${id}_scale`, input: [`${id}_b`, scale], output: [`${id}_s`] })
        const sum = `${id}_sum`
        added.push({ opType: 'Add', name: `${id}_add`, input: [acc, `${id}_s`], output: [sum] })
        acc = sum
      }
      // The layer now writes `base`; the last Add takes over its output name, so consumers are untouched.
      ;(c.node.output as string[])[0] = base
      const last = added[added.length - 1] as onnx.INodeProto
      ;(last.output as string[])[0] = y
      inserts.set(c.node, [...(inserts.get(c.node) ?? []), ...added])
    }
  }

  const rebuilt: onnx.INodeProto[] = []
  for (const n of nodes) rebuilt.push(n, ...(inserts.get(n) ?? []))
  graph.node = rebuilt
  const names = [...scales].sort((a, b) => a - b).map(scaleInputName)
  for (const name of names)
    (graph.input as onnx.IValueInfoProto[]).push({
      name,
      type: { tensorType: { elemType: ELEM.float32, shape: { dim: [] } } },
    })
  return names
}
