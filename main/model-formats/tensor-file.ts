import path from 'node:path'
import { detectPickle, TorchFile } from './pickle'
import type { TorchTensor } from './pickle'
import { SafetensorsFile, toFloat32 } from './safetensors'

/**
 * One reader over `.safetensors` files and PyTorch pickles (`.bin/.pt/.pth`, read with the safe unpickler,
 * which refuses any global a state dict does not need). Pickles that nest dicts (IP-Adapter's
 * `{"image_proj": {...}, "ip_adapter": {...}}`) are flattened to dotted names.
 */

export interface TensorMeta {
  dtype: string
  shape: number[]
  /** Absolute byte range of the (contiguous) data in the file, when it is one. */
  range?: { begin: number; end: number }
}

export interface TensorFile {
  readonly file: string
  readonly format: 'safetensors' | 'pickle'
  keys(): string[]
  has(name: string): boolean
  info(name: string): TensorMeta
  readFloat32(name: string): Promise<Float32Array>
  /** F16 as raw bits (Uint16Array), F32 as is, anything else converted to float32. */
  readHalfOrFloat(name: string): Promise<Float32Array | Uint16Array>
  close(): Promise<void>
}

function missing(file: string, name: string): never {
  throw new Error(`${path.basename(file)}: no tensor "${name}" (${file})`)
}

class SafetensorsTensors implements TensorFile {
  readonly format = 'safetensors'
  constructor(private readonly st: SafetensorsFile) {}
  get file(): string {
    return this.st.path
  }
  keys(): string[] {
    return this.st.keys()
  }
  has(name: string): boolean {
    return this.st.has(name)
  }
  info(name: string): TensorMeta {
    if (!this.st.has(name)) missing(this.file, name)
    const t = this.st.info(name)
    return { dtype: t.dtype, shape: [...t.shape], range: { begin: t.begin, end: t.end } }
  }
  readFloat32(name: string): Promise<Float32Array> {
    if (!this.st.has(name)) missing(this.file, name)
    return this.st.readFloat32(name)
  }
  async readHalfOrFloat(name: string): Promise<Float32Array | Uint16Array> {
    const t = this.info(name)
    if (t.dtype === 'F16') {
      const raw = await this.st.readRaw(name)
      return new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2)
    }
    return toFloat32(this.st.info(name).dtype, await this.st.readRaw(name))
  }
  close(): Promise<void> {
    return this.st.close()
  }
}

class PickleTensors implements TensorFile {
  readonly format = 'pickle'
  private readonly map: Map<string, TorchTensor>
  constructor(private readonly t: TorchFile) {
    this.map = t.stateDict()
  }
  get file(): string {
    return this.t.file
  }
  keys(): string[] {
    return [...this.map.keys()]
  }
  has(name: string): boolean {
    return this.map.has(name)
  }
  private get(name: string): TorchTensor {
    return this.map.get(name) ?? missing(this.file, name)
  }
  info(name: string): TensorMeta {
    const x = this.get(name)
    const r = x.fileRange
    return { dtype: x.dtype, shape: [...x.shape], ...(r ? { range: r } : {}) }
  }
  readFloat32(name: string): Promise<Float32Array> {
    return this.t.readFloat32(this.get(name))
  }
  async readHalfOrFloat(name: string): Promise<Float32Array | Uint16Array> {
    const x = this.get(name)
    if (x.dtype !== 'F16') return this.t.readFloat32(x)
    const b = await this.t.readBytes(x)
    const aligned = b.byteOffset % 2 === 0 ? b : b.slice()
    return new Uint16Array(aligned.buffer, aligned.byteOffset, x.numel).slice()
  }
  close(): Promise<void> {
    return this.t.close()
  }
}

export async function openTensorFile(file: string): Promise<TensorFile> {
  if (await detectPickle(file)) return new PickleTensors(await TorchFile.open(file))
  return new SafetensorsTensors(await SafetensorsFile.open(file))
}

/** The tensor names of a file (header / pickle only), or null when it is neither format. */
export async function tensorShapes(file: string): Promise<Map<string, number[]> | null> {
  let f: TensorFile
  try {
    f = await openTensorFile(file)
  } catch {
    return null
  }
  try {
    return new Map(f.keys().map((k) => [k, f.info(k).shape]))
  } finally {
    await f.close()
  }
}
