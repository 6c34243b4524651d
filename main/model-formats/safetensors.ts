import { open as openFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'

/**
 * safetensors: 8-byte little-endian header length N, N bytes of JSON header, then the tensor data.
 * The header is validated completely before any offset in it is trusted; tensor data is read with
 * positional reads only (a checkpoint can be several GB).
 */

export type DType = 'F16' | 'BF16' | 'F32' | 'F64' | 'I64' | 'I32' | 'U8' | 'BOOL'

/** begin/end are ABSOLUTE byte offsets in the file (dataStart + data_offsets). */
export interface TensorInfo {
  name: string
  dtype: DType
  shape: number[]
  begin: number
  end: number
}

export interface SafetensorsHeader {
  dataStart: number
  size: number
  metadata: Record<string, string>
  tensors: Map<string, TensorInfo>
}

export class SafetensorsError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
    this.name = 'SafetensorsError'
  }
}

export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F16: 2,
  BF16: 2,
  F32: 4,
  F64: 8,
  I64: 8,
  I32: 4,
  U8: 1,
  BOOL: 1,
}

/** dtypes of the safetensors spec that this reader recognises by name but cannot convert. */
const UNSUPPORTED_DTYPES = new Set(['F8_E4M3', 'F8_E5M2', 'I8', 'I16', 'U16', 'U32', 'U64', 'C64'])

export const MAX_HEADER_BYTES = 100 * 1024 * 1024

/** Largest single read; Node caps one read at 2 GiB. */
const READ_CHUNK = 1 << 30

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s)
}

function fail(file: string, code: string, problem: string): never {
  throw new SafetensorsError(`${path.basename(file)}: ${problem} (${file})`, code)
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

/** Parse and validate a header (the JSON bytes) against a file of `size` bytes. Exported for tests/tools. */
export function parseHeader(file: string, headerBytes: Uint8Array, size: number): SafetensorsHeader {
  const dataStart = 8 + headerBytes.byteLength
  const dataLen = size - dataStart
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes))
  } catch {
    // JSON.parse's message quotes the text: never echo bytes of a file that may not be a model at all.
    fail(file, 'bad-json', 'not a safetensors file: the header is not valid JSON')
  }
  if (!isPlainObject(json)) fail(file, 'bad-json', 'not a safetensors file: the header is not a JSON object')

  const metaEntries: [string, string][] = []
  const tensors: TensorInfo[] = []
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) fail(file, 'bad-metadata', '__metadata__ is not an object of strings')
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') fail(file, 'bad-metadata', `__metadata__ entry "${k}" is not a string`)
        metaEntries.push([k, v])
      }
      continue
    }
    if (!isPlainObject(entry))
      fail(file, 'bad-entry', `tensor "${name}" has no dtype/shape/data_offsets object`)
    const { dtype, shape, data_offsets: offsets } = entry
    if (!isDType(dtype)) {
      const what = typeof dtype === 'string' ? dtype : JSON.stringify(dtype)
      const why =
        typeof dtype === 'string' && UNSUPPORTED_DTYPES.has(dtype) ? 'is not supported' : 'is unknown'
      fail(file, 'unknown-dtype', `tensor "${name}" has dtype ${what}, which ${why}`)
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      fail(
        file,
        'bad-shape',
        `tensor "${name}" has shape ${JSON.stringify(shape)}; expected non-negative integers`,
      )
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
      fail(file, 'offset-out-of-range', `tensor "${name}" has data_offsets ${JSON.stringify(offsets)}`)
    }
    const [a, b] = offsets as [number, number]
    if (b < a) fail(file, 'offset-out-of-range', `tensor "${name}" ends (${b}) before it begins (${a})`)
    let numel = 1
    for (const d of shape as number[]) numel *= d
    const expected = numel * DTYPE_SIZE[dtype]
    if (!Number.isSafeInteger(expected) || expected !== b - a) {
      fail(
        file,
        'size-mismatch',
        `tensor "${name}" (${dtype} ${JSON.stringify(shape)}) needs ${expected} bytes but its data_offsets span ${b - a}`,
      )
    }
    tensors.push({ name, dtype, shape: shape as number[], begin: a, end: b })
  }

  // Overlap check on the sorted intervals (empty tensors occupy no bytes and cannot overlap).
  const sorted = tensors.filter((t) => t.end > t.begin).sort((x, y) => x.begin - y.begin || x.end - y.end)
  let contiguous = true
  let prev: TensorInfo | undefined
  for (const t of sorted) {
    if (prev && t.begin < prev.end) {
      fail(file, 'overlap', `tensors "${prev.name}" and "${t.name}" overlap (bytes ${t.begin}..${prev.end})`)
    }
    if ((prev ? prev.end : 0) !== t.begin) contiguous = false
    prev = t
  }
  const last = sorted[sorted.length - 1]
  if (last && last.end > dataLen) {
    if (contiguous) {
      fail(
        file,
        'truncated',
        `the file is incomplete: its header describes ${dataStart + last.end} bytes but the file has ${size} ` +
          '(an interrupted download?)',
      )
    }
    const bad = sorted.find((t) => t.end > dataLen) ?? last
    fail(
      file,
      'offset-out-of-range',
      `tensor "${bad.name}" lies at data bytes ${bad.begin}..${bad.end} but the data section has ${dataLen} bytes`,
    )
  }

  const map = new Map<string, TensorInfo>()
  for (const t of tensors) map.set(t.name, { ...t, begin: t.begin + dataStart, end: t.end + dataStart })
  return { dataStart, size, metadata: Object.fromEntries(metaEntries), tensors: map }
}

async function readFully(fh: FileHandle, into: Uint8Array, position: number): Promise<number> {
  let done = 0
  while (done < into.byteLength) {
    const len = Math.min(READ_CHUNK, into.byteLength - done)
    const { bytesRead } = await fh.read(into, done, len, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}

async function readHeaderFrom(file: string, fh: FileHandle): Promise<SafetensorsHeader> {
  const size = (await fh.stat()).size
  if (size < 8)
    fail(file, 'truncated', `the file has ${size} bytes; a safetensors file starts with an 8-byte length`)
  const lenBytes = new Uint8Array(8)
  await readFully(fh, lenBytes, 0)
  const n = new DataView(lenBytes.buffer).getBigUint64(0, true)
  // The length is the file's first 8 bytes: when it is implausible the file is probably not a safetensors
  // file at all (`<lora:/etc/shadow:1>`), so the message never repeats it.
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail(
      file,
      'header-too-large',
      `not a safetensors file: its first 8 bytes are not a header length of at most ${MAX_HEADER_BYTES} bytes`,
    )
  }
  const headerLen = Number(n)
  if (headerLen > size - 8) {
    fail(
      file,
      'truncated',
      `the header length runs past the end of the file (${size} bytes): truncated, or not a safetensors file`,
    )
  }
  const headerBytes = new Uint8Array(headerLen)
  if ((await readFully(fh, headerBytes, 8)) !== headerLen)
    fail(file, 'truncated', 'the file ended inside the header')
  return parseHeader(file, headerBytes, size)
}

/** Read and validate the header of a safetensors file without reading any tensor data. */
export async function readHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await openFile(file, 'r')
  try {
    return await readHeaderFrom(file, fh)
  } finally {
    await fh.close()
  }
}

export class SafetensorsFile {
  readonly path: string
  readonly size: number
  readonly dataStart: number
  readonly metadata: Record<string, string>
  readonly tensors: Map<string, TensorInfo>
  private fh: FileHandle | undefined

  private constructor(file: string, header: SafetensorsHeader, fh: FileHandle) {
    this.path = file
    this.size = header.size
    this.dataStart = header.dataStart
    this.metadata = header.metadata
    this.tensors = header.tensors
    this.fh = fh
  }

  static async open(file: string): Promise<SafetensorsFile> {
    const fh = await openFile(file, 'r')
    try {
      return new SafetensorsFile(file, await readHeaderFrom(file, fh), fh)
    } catch (err) {
      await fh.close()
      throw err
    }
  }

  keys(): string[] {
    return [...this.tensors.keys()]
  }

  has(name: string): boolean {
    return this.tensors.has(name)
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name)
    if (!t) fail(this.path, 'missing-tensor', `no tensor named "${name}"`)
    return t
  }

  /** Exact bytes of one tensor, in a fresh (8-byte aligned) buffer. */
  async readRaw(name: string): Promise<Uint8Array> {
    const t = this.info(name)
    if (!this.fh) fail(this.path, 'closed', `cannot read "${name}": the file was closed`)
    const out = new Uint8Array(t.end - t.begin)
    const got = await readFully(this.fh, out, t.begin)
    if (got !== out.byteLength) {
      fail(
        this.path,
        'truncated',
        `the file ended while reading "${name}" (${got} of ${out.byteLength} bytes)`,
      )
    }
    return out
  }

  /** The tensor as its native typed array (F16/BF16 as raw Uint16 bits, BOOL as Uint8). */
  async readTyped(name: string): Promise<TypedTensor> {
    const t = this.info(name)
    return viewAs(t.dtype, await this.readRaw(name))
  }

  /** The tensor converted to float32 (F16/BF16/F64 and integer dtypes). */
  async readFloat32(name: string): Promise<Float32Array> {
    const t = this.info(name)
    return toFloat32(t.dtype, await this.readRaw(name))
  }

  async close(): Promise<void> {
    const fh = this.fh
    this.fh = undefined
    if (fh) await fh.close()
  }
}

export type TypedTensor = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array

/** View little-endian tensor bytes (8-byte aligned buffer) as the dtype's typed array. */
export function viewAs(dtype: DType, raw: Uint8Array): TypedTensor {
  const n = raw.byteLength / DTYPE_SIZE[dtype]
  const aligned = raw.byteOffset % 8 === 0 ? raw : raw.slice()
  const { buffer, byteOffset } = aligned
  switch (dtype) {
    case 'F16':
    case 'BF16':
      return new Uint16Array(buffer, byteOffset, n)
    case 'F32':
      return new Float32Array(buffer, byteOffset, n)
    case 'F64':
      return new Float64Array(buffer, byteOffset, n)
    case 'I64':
      return new BigInt64Array(buffer, byteOffset, n)
    case 'I32':
      return new Int32Array(buffer, byteOffset, n)
    case 'U8':
    case 'BOOL':
      return aligned
  }
}

export function toFloat32(dtype: DType, raw: Uint8Array): Float32Array {
  const v = viewAs(dtype, raw)
  switch (dtype) {
    case 'F16':
      return f16ToF32(v as Uint16Array)
    case 'BF16':
      return bf16ToF32(v as Uint16Array)
    case 'F32':
      return v as Float32Array
    case 'I64': {
      const src = v as BigInt64Array
      const out = new Float32Array(src.length)
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i])
      return out
    }
    default:
      return Float32Array.from(v as Float64Array | Int32Array | Uint8Array)
  }
}

let halfTable: Uint32Array | undefined

function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16
  const exp = (h >> 10) & 0x1f
  let mant = h & 0x3ff
  if (exp === 0) {
    if (mant === 0) return sign >>> 0
    let e = 113 // subnormal: renormalise
    while ((mant & 0x400) === 0) {
      mant <<= 1
      e--
    }
    return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0
  }
  if (exp === 31) return (sign | 0x7f800000 | (mant << 13)) >>> 0
  return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0
}

/** IEEE half bits -> float32, through a 65,536-entry table (256 KB, built once). */
export function f16ToF32(bits: Uint16Array): Float32Array {
  if (!halfTable) {
    halfTable = new Uint32Array(65536)
    for (let h = 0; h < 65536; h++) halfTable[h] = halfBitsToFloatBits(h)
  }
  const table = halfTable
  const out = new Uint32Array(bits.length)
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!
  return new Float32Array(out.buffer)
}

export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length)
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16
  return new Float32Array(out.buffer)
}

/** float32 -> IEEE half bits, round to nearest even; overflow -> Inf, NaN -> quiet NaN. */
export function f32ToF16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length)
  const out = new Uint16Array(x.length)
  const tmp = new Float32Array(1)
  const tmpU = new Uint32Array(tmp.buffer)
  for (let i = 0; i < u.length; i++) {
    const b = u[i]!
    const sign = (b >>> 16) & 0x8000
    let a = b & 0x7fffffff
    let o: number
    if (a >= 0x47800000) {
      o = a > 0x7f800000 ? 0x7e00 : 0x7c00
    } else if (a < 0x38800000) {
      // Subnormal or zero: adding 0.5 makes float32 rounding place the half mantissa in the low bits.
      tmpU[0] = a
      tmp[0] = tmp[0]! + 0.5
      o = tmpU[0]! - 0x3f000000
    } else {
      const odd = (a >>> 13) & 1
      a += -0x38000000 + 0xfff + odd
      o = a >>> 13
    }
    out[i] = o | sign
  }
  return out
}

export interface TensorToWrite {
  dtype: DType
  shape: number[]
  data: ArrayBufferView
}

/** Write a safetensors file: tensors in the given order, header padded with spaces to 8 bytes. */
export async function writeSafetensors(
  file: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const header: Record<string, unknown> = {}
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata
  const chunks: Uint8Array[] = []
  let offset = 0
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') fail(file, 'bad-entry', 'a tensor cannot be named __metadata__')
    if (!isDType(t.dtype))
      fail(file, 'unknown-dtype', `tensor "${name}" has unknown dtype ${String(t.dtype)}`)
    if (!t.shape.every(isNonNegInt))
      fail(file, 'bad-shape', `tensor "${name}" has shape ${JSON.stringify(t.shape)}`)
    const numel = t.shape.reduce((p, d) => p * d, 1)
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
    if (bytes.byteLength !== numel * DTYPE_SIZE[t.dtype]) {
      fail(
        file,
        'size-mismatch',
        `tensor "${name}" (${t.dtype} ${JSON.stringify(t.shape)}) needs ${numel * DTYPE_SIZE[t.dtype]} bytes, got ${bytes.byteLength}`,
      )
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] }
    offset += bytes.byteLength
    chunks.push(bytes)
  }
  let json = JSON.stringify(header)
  const jsonLen = Buffer.byteLength(json, 'utf8')
  json += ' '.repeat((8 - (jsonLen % 8)) % 8)
  const headerBytes = Buffer.from(json, 'utf8')
  const prefix = Buffer.alloc(8)
  prefix.writeBigUInt64LE(BigInt(headerBytes.byteLength))
  const fh = await openFile(file, 'w')
  try {
    await fh.writev([prefix, headerBytes])
    for (const c of chunks) {
      let done = 0
      while (done < c.byteLength) {
        const { bytesWritten } = await fh.write(c, done, Math.min(READ_CHUNK, c.byteLength - done))
        done += bytesWritten
      }
    }
  } finally {
    await fh.close()
  }
}
