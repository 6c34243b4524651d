import fs from 'node:fs'
import type { ElemType, GraphBuilder } from '../../model-formats/onnx/builder'
import { ExternalDataWriter } from '../../model-formats/onnx/external-data'
import { toFloat32 } from '../../model-formats/safetensors'
import type { WeightSource } from './weights'
import { BaseWeights } from './weights'

/**
 * Weights written for fast CPU session creation: every tensor is cast to float32 while the graph is built
 * and streamed into one side file, and Linear weights are stored already transposed ([in, out]), so the
 * session has no Cast or Transpose to fold and no fp16 + fp32 copies to hold while it is created — the
 * graph's initializers are what a plain `torch.onnx.export` would carry. Costs disk: 4 bytes per weight.
 *
 * Tensors are read and written one at a time (never the whole model in memory).
 */
export class Fp32Weights extends BaseWeights {
  private side: ExternalDataWriter | undefined
  private readonly fds = new Map<string, number>()
  private readonly transposed = new WeakMap<GraphBuilder, Map<string, string>>()

  constructor(
    private readonly sources: Map<string, WeightSource>,
    private readonly modelDir: string,
    private readonly opts: { sideFileName?: string; transposeLinear?: boolean } = {},
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

  /** Bytes written to the side file so far. */
  get sideBytes(): number {
    return this.side?.bytesWritten ?? 0
  }

  close(): void {
    this.side?.close()
    for (const fd of this.fds.values()) fs.closeSync(fd)
    this.fds.clear()
  }

  private values(name: string): Float32Array {
    const s = this.sources.get(name) ?? this.missing(name)
    if (s.kind === 'data') return s.data instanceof Float32Array ? s.data : toFloat32('F16', bytesOf(s.data))
    let fd = this.fds.get(s.file)
    if (fd === undefined) {
      fd = fs.openSync(s.file, 'r')
      this.fds.set(s.file, fd)
    }
    const raw = new Uint8Array(s.end - s.begin)
    let done = 0
    while (done < raw.length) {
      const n = fs.readSync(fd, raw, done, raw.length - done, s.begin + done)
      if (n === 0) throw new Error(`weight "${name}": unexpected end of ${s.file}`)
      done += n
    }
    const f = toFloat32(s.dtype, raw)
    if (f.length !== numel(s.shape))
      throw new Error(`weight "${name}": ${f.length} values for shape [${s.shape}]`)
    return f
  }

  private write(g: GraphBuilder, name: string, dims: number[], data: Float32Array): string {
    this.side ??= new ExternalDataWriter(this.modelDir, this.opts.sideFileName ?? 'weights.bin')
    const ref = this.side.append(bytesOf(data))
    return g.external(sanitize(name), 'float32', dims, ref)
  }

  protected place(g: GraphBuilder, name: string): { value: string; elem: ElemType } {
    return { value: this.write(g, name, this.shape(name), this.values(name)), elem: 'float32' }
  }

  override getLinearT(g: GraphBuilder, name: string): string {
    let m = this.transposed.get(g)
    if (!m) {
      m = new Map()
      this.transposed.set(g, m)
    }
    const hit = m.get(name)
    if (hit !== undefined) return hit
    const shape = this.shape(name)
    if (shape.length !== 2 || this.opts.transposeLinear !== true) return super.getLinearT(g, name)
    const [rows, cols] = shape as [number, number]
    const v = this.values(name)
    const t = new Float32Array(v.length)
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = v[r * cols + c] as number
    const value = this.write(g, `${name}_T`, [cols, rows], t)
    m.set(name, value)
    return value
  }
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_.]/g, '_')
}

function bytesOf(a: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
}
