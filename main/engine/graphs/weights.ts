import fs from 'node:fs'
import path from 'node:path'
import type { ElemType, ExternalRef, GraphBuilder } from '../../model-formats/onnx/builder'
import { ExternalDataWriter } from '../../model-formats/onnx/external-data'

/**
 * Weights as graph builders see them: canonical (diffusers) names, float32 values in the graph.
 *
 * Canonical names are relative to one component: UNet `down_blocks.0.resnets.0.conv1.weight`, text encoder
 * `text_model.encoder.layers.0.self_attn.q_proj.weight`, VAE `decoder.mid_block.attentions.0.to_q.weight`.
 */
export interface WeightProvider {
  has(name: string): boolean
  shape(name: string): number[]
  /** Every canonical name this provider holds. */
  names(): string[]
  /**
   * Puts the weight in graph g as a float32-valued value (an external initializer, + Cast when it is stored
   * as fp16/bf16; or inline) and returns its value name. Cached per graph.
   */
  get(g: GraphBuilder, name: string): string
  /**
   * The weight of a Linear layer ([out, in]) transposed to [in, out] for MatMul (a Transpose node on the
   * constant, which ORT folds at session creation). Cached per graph.
   */
  getLinearT(g: GraphBuilder, name: string): string
}

export type StoredDType = 'F16' | 'BF16' | 'F32'

/** Where the bytes of one canonical tensor come from. */
export type WeightSource =
  | {
      kind: 'file'
      /** Canonical shape; may reinterpret the stored one (same element count, e.g. [C,C,1,1] -> [C,C]). */
      shape: number[]
      dtype: StoredDType
      file: string
      /** Absolute byte range in `file`. */
      begin: number
      end: number
    }
  | {
      kind: 'data'
      shape: number[]
      /** float32 values, or fp16 bits (Uint16Array). */
      data: Float32Array | Uint16Array
    }

const ONNX_ELEM: Record<StoredDType, ElemType> = { F16: 'float16', BF16: 'bfloat16', F32: 'float32' }
const ELEM_SIZE: Record<StoredDType, number> = { F16: 2, BF16: 2, F32: 4 }

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_.]/g, '_')
}

/** Shared caching and the float/transposed views; subclasses only place the stored tensor in a graph. */
export abstract class BaseWeights implements WeightProvider {
  private readonly cache = new WeakMap<GraphBuilder, Map<string, string>>()

  abstract has(name: string): boolean
  abstract shape(name: string): number[]
  abstract names(): string[]
  /** Adds the initializer (any stored dtype) and returns its name and element type. */
  protected abstract place(g: GraphBuilder, name: string): { value: string; elem: ElemType }

  private memo(g: GraphBuilder, key: string, make: () => string): string {
    let m = this.cache.get(g)
    if (!m) {
      m = new Map()
      this.cache.set(g, m)
    }
    const hit = m.get(key)
    if (hit !== undefined) return hit
    const v = make()
    m.set(key, v)
    return v
  }

  protected missing(name: string): never {
    throw new Error(`weight "${name}" is not in this model`)
  }

  get(g: GraphBuilder, name: string): string {
    return this.memo(g, name, () => {
      if (!this.has(name)) this.missing(name)
      const { value, elem } = this.place(g, name)
      if (elem === 'float32') return value
      return g.op('Cast', [value], { to: 1 }, {}, g.fresh(`${sanitize(name)}_f32`))
    })
  }

  getLinearT(g: GraphBuilder, name: string): string {
    return this.memo(g, `${name}#T`, () => {
      const rank = this.shape(name).length
      if (rank < 2) throw new Error(`weight "${name}" has rank ${rank}; getLinearT needs a matrix`)
      const perm = Array.from({ length: rank }, (_, i) => i)
      perm[rank - 1] = rank - 2
      perm[rank - 2] = rank - 1
      return g.op('Transpose', [this.get(g, name)], { perm }, {}, g.fresh(`${sanitize(name)}_T`))
    })
  }
}

/** Float32 tensors held in memory, emitted as inline initializers (tests and tiny graphs). */
export class InlineWeights extends BaseWeights {
  constructor(private readonly tensors: Map<string, { shape: number[]; data: Float32Array }>) {
    super()
  }

  has(name: string): boolean {
    return this.tensors.has(name)
  }

  shape(name: string): number[] {
    return [...(this.tensors.get(name) ?? this.missing(name)).shape]
  }

  names(): string[] {
    return [...this.tensors.keys()]
  }

  protected place(g: GraphBuilder, name: string): { value: string; elem: ElemType } {
    const t = this.tensors.get(name) ?? this.missing(name)
    const d = t.data
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
    return { value: g.initializer(sanitize(name), 'float32', t.shape, bytes), elem: 'float32' }
  }
}

export interface CheckpointWeightsOptions {
  /** The folder the graph's model.onnx will be written to; external locations are relative to it. */
  modelDir: string
  /** Side file (in modelDir) for tensors given as data (LoRA-merged, converted). Created on first use. */
  sideFileName?: string
  /**
   * How a source file is named from modelDir (default: a relative path). Conversion passes a function
   * that links the checkpoint into the cache folder, because ORT refuses locations outside the model's
   * folder.
   */
  locate?: (file: string) => string
}

/**
 * Weights pointing straight into checkpoint files (no copy: the graph's initializers are external
 * references with offsets into the .safetensors), plus a side file for tensors given as data.
 */
export class CheckpointWeights extends BaseWeights {
  private side: ExternalDataWriter | undefined
  private readonly located = new Map<string, string>()

  constructor(
    private readonly sources: Map<string, WeightSource>,
    private readonly opts: CheckpointWeightsOptions,
  ) {
    super()
  }

  has(name: string): boolean {
    return this.sources.has(name)
  }

  shape(name: string): number[] {
    return [...(this.sources.get(name) ?? this.missing(name)).shape]
  }

  names(): string[] {
    return [...this.sources.keys()]
  }

  source(name: string): WeightSource {
    return this.sources.get(name) ?? this.missing(name)
  }

  /** A copy with some tensors replaced by data (e.g. LoRA-merged weights); shares nothing mutable. */
  withOverrides(
    overrides: Map<string, Float32Array | Uint16Array>,
    opts: Partial<CheckpointWeightsOptions> = {},
  ): CheckpointWeights {
    const next = new Map(this.sources)
    for (const [name, data] of overrides) {
      const src = this.source(name)
      if (data.length !== numel(src.shape))
        throw new Error(
          `override for "${name}" has ${data.length} values; the weight has ${numel(src.shape)}`,
        )
      next.set(name, { kind: 'data', shape: src.shape, data })
    }
    return new CheckpointWeights(next, { ...this.opts, ...opts })
  }

  /** Bytes written to the side file so far (0 when none). */
  get sideBytes(): number {
    return this.side?.bytesWritten ?? 0
  }

  /** Closes the side file; call after the graph is built. */
  close(): void {
    this.side?.close()
  }

  private locationOf(file: string): string {
    let loc = this.located.get(file)
    if (loc === undefined) {
      loc = this.opts.locate ? this.opts.locate(file) : path.relative(this.opts.modelDir, file)
      this.located.set(file, loc)
    }
    return loc
  }

  private sideRef(bytes: Uint8Array): ExternalRef {
    if (!this.side) {
      fs.mkdirSync(this.opts.modelDir, { recursive: true })
      this.side = new ExternalDataWriter(this.opts.modelDir, this.opts.sideFileName ?? 'weights.bin')
    }
    return this.side.append(bytes)
  }

  protected place(g: GraphBuilder, name: string): { value: string; elem: ElemType } {
    const src = this.source(name)
    if (src.kind === 'file') {
      const expected = numel(src.shape) * ELEM_SIZE[src.dtype]
      if (src.end - src.begin !== expected)
        throw new Error(
          `weight "${name}": ${src.end - src.begin} bytes for shape [${src.shape}] ${src.dtype}`,
        )
      const elem = ONNX_ELEM[src.dtype]
      const ref = { location: this.locationOf(src.file), offset: src.begin, length: src.end - src.begin }
      return { value: g.external(sanitize(name), elem, src.shape, ref), elem }
    }
    const d = src.data
    const elem: ElemType = d instanceof Float32Array ? 'float32' : 'float16'
    const ref = this.sideRef(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))
    return { value: g.external(sanitize(name), elem, src.shape, ref), elem }
  }
}

/** Stored tensor facts a key map needs (what SafetensorsFile.info returns). */
export interface StoredTensor {
  dtype: string
  shape: number[]
  begin: number
  end: number
}

/** A mapping result: the canonical name, and optionally a reinterpreted shape (same element count). */
export type KeyMapping = string | { name: string; shape?: number[] } | undefined

/**
 * Builds file-backed sources from a checkpoint's header through a key mapping (LDM or diffusers naming to
 * canonical). Keys the mapping returns undefined for are skipped.
 */
export function sourcesFromFile(
  file: string,
  tensors: Iterable<[string, StoredTensor]>,
  map: (key: string) => KeyMapping,
): Map<string, WeightSource> {
  const out = new Map<string, WeightSource>()
  for (const [key, t] of tensors) {
    const m = map(key)
    if (m === undefined) continue
    const name = typeof m === 'string' ? m : m.name
    const shape = typeof m === 'string' || !m.shape ? t.shape : m.shape
    if (t.dtype !== 'F16' && t.dtype !== 'BF16' && t.dtype !== 'F32')
      throw new Error(
        `${path.basename(file)}: tensor "${key}" has dtype ${t.dtype}; expected F16, BF16 or F32`,
      )
    if (numel(shape) !== numel(t.shape))
      throw new Error(`${path.basename(file)}: cannot view "${key}" [${t.shape}] as [${shape}]`)
    if (out.has(name))
      throw new Error(`${path.basename(file)}: two tensors map to "${name}" (one is "${key}")`)
    out.set(name, { kind: 'file', shape, dtype: t.dtype, file, begin: t.begin, end: t.end })
  }
  return out
}
