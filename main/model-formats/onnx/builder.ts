import onnxProto from 'onnx-proto'

// onnx-proto is CommonJS; its namespace comes through the default export under ESM.
export const onnx = onnxProto.onnx
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace onnx {
  type ModelProto = onnxProto.onnx.ModelProto
  type ITensorProto = onnxProto.onnx.ITensorProto
  type INodeProto = onnxProto.onnx.INodeProto
  type IValueInfoProto = onnxProto.onnx.IValueInfoProto
  type IAttributeProto = onnxProto.onnx.IAttributeProto
}

/**
 * A small ONNX graph builder over the official schema (onnx-proto). Graph code calls `op()` with string
 * value names; weights are either inline (small constants) or external references into side files or
 * straight into a checkpoint, so models over 2 GB serialize fine.
 */

export type ElemType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'bool' | 'uint8' | 'float64'

export const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  bfloat16: onnx.TensorProto.DataType.BFLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
  uint8: onnx.TensorProto.DataType.UINT8,
  float64: onnx.TensorProto.DataType.DOUBLE,
}

export type Dim = number | string
export type AttrValue =
  number | string | number[] | { float: number } | { floats: number[] } | onnx.ITensorProto

/** Where an external initializer's bytes live: a file relative to the model file, and a byte range. */
export interface ExternalRef {
  location: string
  offset: number
  length: number
}

export interface OpOptions {
  domain?: string
  outputs?: number
  name?: string
}

function valueInfo(name: string, elem: ElemType, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[elem],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  }
}

function attribute(name: string, value: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use {float: x} for non-integers`)
    return { name, type: T.INT, i: value }
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) }
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value }
  if ('float' in value && typeof value.float === 'number') return { name, type: T.FLOAT, f: value.float }
  if ('floats' in value && Array.isArray(value.floats)) return { name, type: T.FLOATS, floats: value.floats }
  return { name, type: T.TENSOR, t: value as onnx.ITensorProto }
}

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = []
  private readonly inputs: onnx.IValueInfoProto[] = []
  private readonly outputs: onnx.IValueInfoProto[] = []
  private readonly initializers: onnx.ITensorProto[] = []
  private readonly names = new Set<string>()
  private counter = 0

  constructor(readonly name: string) {}

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    let n: string
    do n = `${prefix}_${this.counter++}`
    while (this.names.has(n))
    this.names.add(n)
    return n
  }

  input(name: string, elem: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elem, dims))
    this.names.add(name)
    return name
  }

  output(value: string, elem: ElemType, dims: Dim[], name = value): void {
    if (name !== value) this.op('Identity', [value], {}, { name: `out_${name}` }, name)
    this.outputs.push(valueInfo(name, elem, dims))
  }

  /** An inline initializer (keep these small: they live inside the .onnx protobuf). */
  initializer(name: string, elem: ElemType, dims: number[], raw: Uint8Array): string {
    const unique = this.names.has(name) ? this.fresh(name) : name
    this.names.add(unique)
    this.initializers.push({ name: unique, dataType: ELEM[elem], dims, rawData: raw })
    return unique
  }

  /** An initializer whose bytes live outside the model file (side file or checkpoint). */
  external(name: string, elem: ElemType, dims: number[], ref: ExternalRef): string {
    const unique = this.names.has(name) ? this.fresh(name) : name
    this.names.add(unique)
    this.initializers.push({
      name: unique,
      dataType: ELEM[elem],
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: ref.location },
        { key: 'offset', value: String(ref.offset) },
        { key: 'length', value: String(ref.length) },
      ],
    })
    return unique
  }

  constFloat(values: ArrayLike<number>, dims: number[] = [values.length], name = 'cf'): string {
    const f = Float32Array.from(values)
    return this.initializer(this.fresh(name), 'float32', dims, new Uint8Array(f.buffer))
  }

  constInt64(values: number[], dims: number[] = [values.length], name = 'ci'): string {
    const b = BigInt64Array.from(values.map((v) => BigInt(v)))
    return this.initializer(this.fresh(name), 'int64', dims, new Uint8Array(b.buffer))
  }

  /** Adds one node; returns its first output (use `opMulti` for several). */
  op(
    type: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    opts: OpOptions = {},
    outName?: string,
  ): string {
    return this.opMulti(
      type,
      inputs,
      attrs,
      { ...opts, outputs: 1 },
      outName ? [outName] : undefined,
    )[0] as string
  }

  opMulti(
    type: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    opts: OpOptions = {},
    outNames?: string[],
  ): string[] {
    const count = opts.outputs ?? 1
    const outs = outNames ?? Array.from({ length: count }, () => this.fresh(type.toLowerCase()))
    for (const o of outs) this.names.add(o)
    this.nodes.push({
      opType: type,
      domain: opts.domain ?? '',
      name: opts.name ?? this.fresh(`n_${type}`),
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    })
    return outs
  }

  toModel(
    opts: { opset?: number; msOpset?: number; producer?: string; docString?: string } = {},
  ): onnx.ModelProto {
    return onnx.ModelProto.create({
      irVersion: 10,
      producerName: opts.producer ?? 'atelier',
      producerVersion: '1',
      docString: opts.docString ?? '',
      opsetImport: [
        { domain: '', version: opts.opset ?? 21 },
        { domain: 'com.microsoft', version: opts.msOpset ?? 1 },
      ],
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    })
  }

  encode(opts?: Parameters<GraphBuilder['toModel']>[0]): Uint8Array {
    return onnx.ModelProto.encode(this.toModel(opts)).finish()
  }

  get nodeCount(): number {
    return this.nodes.length
  }
}
