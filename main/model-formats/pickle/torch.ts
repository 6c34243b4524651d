import type { FileHandle } from 'node:fs/promises'
import { open as openFile } from 'node:fs/promises'
import path from 'node:path'
import type { GlobalImpl, PyValue } from './unpickler'
import {
  ForbiddenGlobalError,
  PickleDataError,
  PyDict,
  PyExtension,
  PyGlobal,
  PyObject,
  PySet,
  PyTuple,
  typeName,
  unpickle,
} from './unpickler'
import type { PickleKind } from './errors'
import { PickleRefusedError } from './errors'
import { isZipMagic, ZipArchive, ZipFormatError } from './zip'

/**
 * PyTorch `.pth` / `.ckpt` / `.pt` / `.bin` files read without running them: the zip format of
 * `torch.save` (`<name>/data.pkl` + `<name>/data/<key>`) and the legacy format (magic number, protocol,
 * system info, the pickle, the storage keys, then each storage's raw data). The pickle is interpreted with
 * an allow-list of the globals a state dict needs; anything else is refused by name. Tensors are
 * descriptions (storage, offset, shape, strides) until read; their bytes are read positionally.
 */

export type TorchDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL'

export const TORCH_DTYPE_SIZE: Readonly<Record<TorchDType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
}

const STORAGE_TYPES: Record<string, TorchDType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
}

/** The globals a state dict (or an LDM training checkpoint around one) may name. */
export const ALLOWED_GLOBALS: readonly string[] = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
  'torch.Tensor',
  'torch.nn.parameter.Parameter',
  'torch.Size',
  ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`),
  'builtins.set',
  'builtins.frozenset',
  'builtins.bytearray',
  '_codecs.encode',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.dtype',
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'numpy.ndarray',
  'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint',
]

export type TorchFormat = 'zip' | 'legacy'

export class TorchFormatError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
    this.name = 'TorchFormatError'
  }
}

/** Raw storage: where its bytes are. */
export class TorchStorage extends PyExtension {
  readonly pyType = 'torch.Storage'
  constructor(
    readonly key: string,
    readonly dtype: TorchDType,
    /** Elements. */
    readonly numel: number,
    /** Absolute file offset of element 0, or null when the bytes must be read through `load`. */
    public fileOffset: number | null,
    readonly load?: () => Promise<Uint8Array>,
  ) {
    super()
  }
  get byteLength(): number {
    return this.numel * TORCH_DTYPE_SIZE[this.dtype]
  }
}

export class TorchTensor extends PyExtension {
  readonly pyType = 'torch.Tensor'
  constructor(
    readonly storage: TorchStorage,
    /** In elements. */
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {
    super()
  }
  get dtype(): TorchDType {
    return this.storage.dtype
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1)
  }
  /** Row-major contiguous (so its bytes are one range of the storage). */
  get contiguous(): boolean {
    let expect = 1
    for (let i = this.shape.length - 1; i >= 0; i--) {
      const d = this.shape[i] as number
      if (d !== 1 && this.stride[i] !== expect) return false
      expect *= d
    }
    return true
  }
  /** Absolute byte range in the file when the tensor is contiguous and its storage lies in the file. */
  get fileRange(): { begin: number; end: number } | null {
    if (!this.contiguous || this.storage.fileOffset === null) return null
    const size = TORCH_DTYPE_SIZE[this.dtype]
    const begin = this.storage.fileOffset + this.storageOffset * size
    return { begin, end: begin + this.numel * size }
  }
}

function isInt(v: PyValue | undefined): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v)
}

function intTuple(v: PyValue | undefined, what: string): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null
  if (!items) throw new Error(`${what} is a ${typeName(v)}, not a tuple`)
  return items.map((x) => {
    if (!isInt(x) || x < 0) throw new Error(`${what} holds ${typeName(x)} ${String(x)}`)
    return x
  })
}

function rebuildTensor(args: PyValue[]): TorchTensor {
  const [storage, offset, size, stride] = args
  if (!(storage instanceof TorchStorage)) throw new Error(`the storage argument is a ${typeName(storage)}`)
  if (!isInt(offset) || offset < 0) throw new Error(`bad storage offset ${String(offset)}`)
  const shape = intTuple(size, 'the size')
  const strides = intTuple(stride, 'the stride')
  if (strides.length !== shape.length)
    throw new Error(`size [${shape}] and stride [${strides}] have different lengths`)
  let numel = 1
  let last = offset
  for (let i = 0; i < shape.length; i++) {
    numel *= shape[i] as number
    last += ((shape[i] as number) - 1) * (strides[i] as number)
  }
  if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(last))
    throw new Error(`size [${shape}] is too large`)
  if (numel > 0 && last >= storage.numel)
    throw new Error(
      `a tensor of size [${shape}] stride [${strides}] at offset ${offset} reaches element ${last} of a storage of ${storage.numel}`,
    )
  return new TorchTensor(storage, offset, shape, strides)
}

/** A numpy dtype placeholder: remembers its type string ('f8', 'i8', ...) and byte order. */
class NumpyDType extends PyExtension {
  readonly pyType = 'numpy.dtype'
  constructor(readonly code: string) {
    super()
  }
}

function numpyScalar(args: PyValue[]): PyValue {
  const [dt, raw] = args
  if (!(dt instanceof NumpyDType) || !(raw instanceof Uint8Array)) return new PyObject('numpy.scalar', args)
  const order = dt.state instanceof PyTuple ? dt.state.items[1] : '<'
  const le = order !== '>'
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  const readers: Record<string, [number, () => number | bigint]> = {
    f8: [8, () => v.getFloat64(0, le)],
    f4: [4, () => v.getFloat32(0, le)],
    i8: [8, () => v.getBigInt64(0, le)],
    u8: [8, () => v.getBigUint64(0, le)],
    i4: [4, () => v.getInt32(0, le)],
    u4: [4, () => v.getUint32(0, le)],
    i2: [2, () => v.getInt16(0, le)],
    u2: [2, () => v.getUint16(0, le)],
    i1: [1, () => v.getInt8(0)],
    u1: [1, () => v.getUint8(0)],
    b1: [1, () => v.getUint8(0)],
  }
  const r = readers[dt.code]
  if (!r || raw.length !== r[0]) return new PyObject('numpy.scalar', args)
  const x = r[1]()
  if (dt.code === 'b1') return x !== 0
  if (typeof x === 'bigint')
    return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x
  return x
}

function ordered(args: PyValue[]): PyDict {
  const d = new PyDict(true)
  const init = args[0]
  if (init === undefined || init === null) return d
  const items = Array.isArray(init) ? init : init instanceof PyTuple ? init.items : null
  if (!items) throw new Error(`OrderedDict from a ${typeName(init)}`)
  for (const it of items) {
    const pair = Array.isArray(it) ? it : it instanceof PyTuple ? it.items : null
    if (!pair || pair.length !== 2) throw new Error('OrderedDict items must be pairs')
    d.set(pair[0] as PyValue, pair[1] as PyValue)
  }
  return d
}

function setFrom(frozen: boolean) {
  return (args: PyValue[]): PySet => {
    const s = new PySet(frozen)
    const init = args[0]
    if (init === undefined) return s
    const items = Array.isArray(init) ? init : init instanceof PyTuple ? init.items : null
    if (!items) throw new Error(`set from a ${typeName(init)}`)
    for (const it of items) s.add(it)
    return s
  }
}

/** The allow-list as implementations; storage classes are handled by persistent_load only. */
function globalTable(): Map<string, GlobalImpl> {
  const t = new Map<string, GlobalImpl>()
  const inert = (type: string): GlobalImpl => ({ call: (args) => new PyObject(type, args) })
  t.set('collections.OrderedDict', { call: ordered })
  t.set('torch._utils._rebuild_tensor', { call: rebuildTensor })
  t.set('torch._utils._rebuild_tensor_v2', { call: rebuildTensor })
  t.set('torch._utils._rebuild_parameter', { call: (args) => args[0] ?? null })
  t.set('torch._utils._rebuild_parameter_with_state', { call: (args) => args[0] ?? null })
  t.set('torch._tensor._rebuild_from_type_v2', {
    call: (args) => {
      const [fn, , inner] = args
      if (!(fn instanceof PyGlobal) || !fn.impl.call || !(inner instanceof PyTuple))
        throw new Error('bad arguments')
      return fn.impl.call([...inner.items])
    },
  })
  t.set('torch.Tensor', {})
  t.set('torch.nn.parameter.Parameter', {})
  t.set('torch.Size', { call: (args) => new PyTuple(intTuple(args[0] ?? new PyTuple([]), 'torch.Size')) })
  for (const s of Object.keys(STORAGE_TYPES)) t.set(`torch.${s}`, {})
  t.set('builtins.set', { call: setFrom(false) })
  t.set('builtins.frozenset', { call: setFrom(true) })
  t.set('builtins.bytearray', {
    call: (args) => {
      const a = args[0]
      if (a === undefined) return new Uint8Array(0)
      if (a instanceof Uint8Array) return a.slice()
      if (typeof a === 'string' && args[1] === 'latin1')
        return Uint8Array.from(a, (c) => c.charCodeAt(0) & 0xff)
      throw new Error(`bytearray from ${typeName(a)}`)
    },
  })
  t.set('_codecs.encode', {
    call: (args) => {
      const [s, enc] = args
      if (typeof s !== 'string') throw new Error(`encode of a ${typeName(s)}`)
      if (enc === 'latin1' || enc === 'latin-1' || enc === 'iso-8859-1')
        return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff)
      if (enc === 'utf-8' || enc === 'utf8' || enc === undefined) return new TextEncoder().encode(s)
      throw new Error(`encoding ${String(enc)} is not supported`)
    },
  })
  t.set('numpy.dtype', { call: (args) => new NumpyDType(typeof args[0] === 'string' ? args[0] : '?') })
  t.set('numpy.core.multiarray.scalar', { call: numpyScalar })
  t.set('numpy._core.multiarray.scalar', { call: numpyScalar })
  t.set('numpy.core.multiarray._reconstruct', inert('numpy.ndarray'))
  t.set('numpy._core.multiarray._reconstruct', inert('numpy.ndarray'))
  t.set('numpy.ndarray', {})
  t.set('pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint', inert('ModelCheckpoint'))
  return t
}

const GLOBALS = globalTable()

function resolveGlobal(module: string, name: string): GlobalImpl | undefined {
  return GLOBALS.get(`${module}.${name}`)
}

interface PersistentStorage {
  key: string
  dtype: TorchDType
  numel: number
  view?: { key: string; offset: number; numel: number }
}

/** Parses torch's ('storage', StorageClass, key, location, numel[, view]) persistent id. */
function parseStoragePid(pid: PyValue): PersistentStorage {
  const items = pid instanceof PyTuple ? pid.items : null
  if (!items || items.length < 5) throw new Error(`unexpected persistent id ${typeName(pid)}`)
  const [kind, cls, key, , numel, view] = items
  if (kind !== 'storage') throw new Error(`persistent id of kind ${String(kind)}, not "storage"`)
  if (!(cls instanceof PyGlobal) || cls.module !== 'torch' || !(cls.name in STORAGE_TYPES))
    throw new Error(`storage of type ${typeName(cls)}`)
  if (typeof key !== 'string' && !isInt(key)) throw new Error(`storage key ${typeName(key)}`)
  if (!isInt(numel) || numel < 0) throw new Error(`storage size ${String(numel)}`)
  const out: PersistentStorage = { key: String(key), dtype: STORAGE_TYPES[cls.name] as TorchDType, numel }
  if (view !== undefined && view !== null) {
    const v = view instanceof PyTuple ? view.items : null
    if (!v || v.length !== 3 || !isInt(v[1]) || !isInt(v[2]))
      throw new Error(`bad storage view ${typeName(view)}`)
    out.view = { key: String(v[0]), offset: v[1] as number, numel: v[2] as number }
  }
  return out
}

export interface TorchFileOptions {
  /** Legacy format: largest pickle section read into memory (default 1 GiB). */
  maxPickleBytes?: number
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn

/** A PyTorch file opened for reading; close() when done. */
export class TorchFile {
  private constructor(
    readonly file: string,
    readonly format: TorchFormat,
    readonly root: PyValue,
    private readonly fh: FileHandle,
    private readonly zip: ZipArchive | null,
  ) {}

  static async open(file: string, opts: TorchFileOptions = {}): Promise<TorchFile> {
    const fh = await openFile(file, 'r')
    let zip: ZipArchive | null = null
    try {
      const size = (await fh.stat()).size
      const head = new Uint8Array(Math.min(size, 8))
      await fh.read(head, 0, head.length, 0)
      if (isZipMagic(head)) {
        zip = await ZipArchive.open(file)
        const root = await loadZip(file, zip)
        return new TorchFile(file, 'zip', root, fh, zip)
      }
      if (head[0] === 0x80) {
        const root = await loadLegacy(file, fh, size, opts.maxPickleBytes ?? 1024 * 1024 * 1024)
        return new TorchFile(file, 'legacy', root, fh, null)
      }
      throw new TorchFormatError(
        `${path.basename(file)}: not a PyTorch file (neither a torch.save zip archive nor a pickle) (${file})`,
        'not-torch',
      )
    } catch (err) {
      await zip?.close()
      await fh.close()
      throw translate(file, zip ? 'torch-zip' : 'pickle', err)
    }
  }

  async close(): Promise<void> {
    await this.zip?.close()
    await this.fh.close()
  }

  /**
   * Every tensor reachable from the root, by dotted path (`state_dict.model.x.weight`), in file order.
   * Cycles and shared values are visited once per path; the walk is iterative and depth-limited.
   */
  tensors(): Map<string, TorchTensor> {
    const out = new Map<string, TorchTensor>()
    const stack: [string, PyValue, number][] = [['', this.root, 0]]
    const onPath = new Set<object>()
    while (stack.length) {
      const [p, v, depth] = stack.pop() as [string, PyValue, number]
      if (v instanceof TorchTensor) {
        out.set(p, v)
        continue
      }
      if (depth > 64 || v === null || typeof v !== 'object' || onPath.has(v)) continue
      const kids: [string, PyValue][] = []
      if (v instanceof PyDict) {
        for (const [k, x] of v.entries())
          if (typeof k === 'string' || typeof k === 'number') kids.push([String(k), x])
      } else if (Array.isArray(v)) v.forEach((x, i) => kids.push([String(i), x]))
      else if (v instanceof PyTuple) v.items.forEach((x, i) => kids.push([String(i), x]))
      else continue
      onPath.add(v)
      for (let i = kids.length - 1; i >= 0; i--) {
        const [k, x] = kids[i] as [string, PyValue]
        stack.push([p ? `${p}.${k}` : k, x, depth + 1])
      }
    }
    return out
  }

  /**
   * The state dict: the root when it maps names to tensors, else the first of `prefer` (default
   * params_ema, params, state_dict, model, module, net, generator) that does; else every tensor by path.
   */
  stateDict(prefer: readonly string[] = DEFAULT_STATE_KEYS): Map<string, TorchTensor> {
    const asDict = (v: PyValue | undefined): Map<string, TorchTensor> | null => {
      if (!(v instanceof PyDict) || v.size === 0) return null
      const m = new Map<string, TorchTensor>()
      for (const [k, x] of v.entries()) {
        if (typeof k !== 'string') return null
        if (x instanceof TorchTensor) m.set(k, x)
      }
      return m.size > 0 && m.size >= v.size / 2 ? m : null
    }
    const direct = asDict(this.root)
    if (direct) return direct
    if (this.root instanceof PyDict) {
      for (const key of prefer) {
        const d = asDict(this.root.get(key))
        if (d) return d
      }
    }
    return this.tensors()
  }

  /** The raw bytes of a tensor's elements, made contiguous (row-major), little-endian. */
  async readBytes(t: TorchTensor): Promise<Uint8Array> {
    const size = TORCH_DTYPE_SIZE[t.dtype]
    const n = t.numel
    if (n === 0) return new Uint8Array(0)
    let last = t.storageOffset
    for (let i = 0; i < t.shape.length; i++) last += ((t.shape[i] as number) - 1) * (t.stride[i] as number)
    const spanBytes = (last - t.storageOffset + 1) * size
    let span: Uint8Array
    if (t.storage.fileOffset !== null) {
      const begin = t.storage.fileOffset + t.storageOffset * size
      span = this.zip ? await this.zip.readRange(begin, spanBytes) : await this.readFile(begin, spanBytes)
    } else {
      const all = await (t.storage.load as () => Promise<Uint8Array>)()
      span = all.subarray(t.storageOffset * size, t.storageOffset * size + spanBytes)
    }
    if (t.contiguous)
      return span.byteOffset === 0 && span.length === n * size ? span : span.slice(0, n * size)
    const out = new Uint8Array(n * size)
    const rank = t.shape.length
    const idx = new Array<number>(rank).fill(0)
    for (let i = 0; i < n; i++) {
      let src = 0
      for (let d = 0; d < rank; d++) src += (idx[d] as number) * (t.stride[d] as number)
      out.set(span.subarray(src * size, src * size + size), i * size)
      for (let d = rank - 1; d >= 0; d--) {
        idx[d] = (idx[d] as number) + 1
        if ((idx[d] as number) < (t.shape[d] as number)) break
        idx[d] = 0
      }
    }
    return out
  }

  /** A floating tensor's values as float32 (fp16/bf16/fp64 converted). */
  async readFloat32(t: TorchTensor): Promise<Float32Array> {
    const b = await this.readBytes(t)
    const aligned = b.byteOffset % 8 === 0 ? b : b.slice()
    switch (t.dtype) {
      case 'F32':
        return new Float32Array(aligned.buffer, aligned.byteOffset, t.numel).slice()
      case 'F16':
        return halfToFloat(new Uint16Array(aligned.buffer, aligned.byteOffset, t.numel))
      case 'BF16': {
        const src = new Uint16Array(aligned.buffer, aligned.byteOffset, t.numel)
        const u = new Uint32Array(t.numel)
        for (let i = 0; i < u.length; i++) u[i] = (src[i] as number) << 16
        return new Float32Array(u.buffer)
      }
      case 'F64':
        return Float32Array.from(new Float64Array(aligned.buffer, aligned.byteOffset, t.numel))
      default:
        throw new TorchFormatError(
          `${path.basename(this.file)}: a ${t.dtype} tensor is not floating point (${this.file})`,
          'not-float',
        )
    }
  }

  private async readFile(begin: number, length: number): Promise<Uint8Array> {
    const b = new Uint8Array(length)
    let done = 0
    while (done < length) {
      const { bytesRead } = await this.fh.read(b, done, Math.min(length - done, 1 << 30), begin + done)
      if (bytesRead === 0)
        throw new TorchFormatError(
          `${path.basename(this.file)}: the file ends inside a tensor (truncated?) (${this.file})`,
          'truncated',
        )
      done += bytesRead
    }
    return b
  }
}

export const DEFAULT_STATE_KEYS = [
  'params_ema',
  'params',
  'state_dict',
  'model',
  'module',
  'net',
  'generator',
]

export function halfToFloat(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length)
  for (let i = 0; i < h.length; i++) {
    const x = h[i] as number
    const s = x & 0x8000 ? -1 : 1
    const e = (x >> 10) & 0x1f
    const m = x & 0x3ff
    out[i] =
      e === 0
        ? s * m * 2 ** -24
        : e === 31
          ? m
            ? Number.NaN
            : s * Infinity
          : s * (1 + m / 1024) * 2 ** (e - 15)
  }
  return out
}

function translate(file: string, kind: PickleKind, err: unknown): unknown {
  const name = path.basename(file)
  if (err instanceof ForbiddenGlobalError) return new PickleRefusedError(file, kind, err.qualified)
  if (err instanceof PickleDataError)
    return new TorchFormatError(`${name}: damaged pickle: ${err.message} (${file})`, err.code)
  if (err instanceof ZipFormatError) return new TorchFormatError(err.message, err.code)
  return err
}

async function loadZip(file: string, zip: ZipArchive): Promise<PyValue> {
  const name = path.basename(file)
  const pkls = [...zip.entries.keys()].filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'))
  if (pkls.length === 0)
    throw new TorchFormatError(
      `${name}: a zip archive without data.pkl: not a torch.save file (${file})`,
      'not-torch',
    )
  const pkl = pkls.sort((a, b) => a.length - b.length)[0] as string
  const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length)
  const order = zip.has(`${prefix}byteorder`) ? await zip.read(zip.get(`${prefix}byteorder`), 64) : null
  if (order && new TextDecoder().decode(order).trim() === 'big')
    throw new TorchFormatError(`${name}: a big-endian archive is not supported (${file})`, 'big-endian')
  const data = await zip.read(zip.get(pkl), 512 * 1024 * 1024)
  const storages = new Map<string, TorchStorage>()
  const pending: { key: string; entry: string; dtype: TorchDType; numel: number }[] = []
  const { value } = unpickle(data, {
    resolveGlobal,
    persistentLoad: (pid) => {
      const s = parseStoragePid(pid)
      const known = storages.get(s.key)
      if (known) {
        if (known.dtype !== s.dtype || known.numel !== s.numel)
          throw new Error(`storage ${s.key} is described twice differently`)
        return known
      }
      const entryName = `${prefix}data/${s.key}`
      if (!zip.has(entryName)) throw new Error(`storage ${s.key} has no entry ${entryName} in the archive`)
      const entry = zip.get(entryName)
      const bytes = s.numel * TORCH_DTYPE_SIZE[s.dtype]
      if (entry.size < bytes)
        throw new Error(`storage ${s.key} needs ${bytes} bytes but its entry holds ${entry.size}`)
      // The file offset is filled in below (after the pickle), once per storage.
      const st = new TorchStorage(s.key, s.dtype, s.numel, null, () => zip.read(entry))
      storages.set(s.key, st)
      pending.push({ key: s.key, entry: entryName, dtype: s.dtype, numel: s.numel })
      return st
    },
  })
  // Stored entries: point the storages at their byte ranges (replacing the in-memory loader).
  for (const p of pending) {
    const st = storages.get(p.key) as TorchStorage
    const range = await zip.storedRange(zip.get(p.entry))
    if (range) st.fileOffset = range.begin
  }
  return value
}

async function loadLegacy(file: string, fh: FileHandle, size: number, maxPickle: number): Promise<PyValue> {
  const name = path.basename(file)
  let window = Math.min(size, 1 << 20)
  for (;;) {
    const buf = new Uint8Array(window)
    const { bytesRead } = await fh.read(buf, 0, window, 0)
    try {
      return await parseLegacy(file, fh, size, buf.subarray(0, bytesRead))
    } catch (err) {
      const short = err instanceof PickleDataError && err.code === 'truncated'
      if (!short || window >= size) throw err
      if (window >= maxPickle)
        throw new TorchFormatError(
          `${name}: the pickle is larger than ${maxPickle} bytes; not a state dict? (${file})`,
          'too-large',
        )
      window = Math.min(size, maxPickle, window * 8)
    }
  }
}

async function parseLegacy(file: string, fh: FileHandle, size: number, buf: Uint8Array): Promise<PyValue> {
  const name = path.basename(file)
  const bad = (problem: string, code = 'bad-legacy'): TorchFormatError =>
    new TorchFormatError(`${name}: ${problem} (${file})`, code)
  const plain = { resolveGlobal: (): undefined => undefined }
  let magic
  try {
    magic = unpickle(buf, plain, 0)
  } catch (err) {
    // Cut short with more file to read: let the caller retry with a larger window.
    if (err instanceof PickleDataError && err.code === 'truncated' && buf.length < size) throw err
    if (err instanceof PickleDataError) throw new PickleRefusedError(file, 'pickle')
    throw err
  }
  // A bare pickle (a pickled dict, a plain object) is not a torch.save file.
  if (magic.value !== LEGACY_MAGIC) throw new PickleRefusedError(file, 'pickle')
  const proto = unpickle(buf, plain, magic.end)
  if (proto.value !== 1001) throw bad(`unsupported legacy protocol version ${String(proto.value)}`)
  const sys = unpickle(buf, plain, proto.end)
  if (sys.value instanceof PyDict && sys.value.get('little_endian') === false)
    throw bad('written on a big-endian machine; not supported', 'big-endian')
  const roots = new Map<string, { dtype: TorchDType; numel: number }>()
  const views: { st: TorchStorage; root: string; offset: number }[] = []
  const storages = new Map<string, TorchStorage>()
  const main = unpickle(
    buf,
    {
      resolveGlobal,
      persistentLoad: (pid) => {
        const s = parseStoragePid(pid)
        const root = roots.get(s.key)
        if (root && (root.dtype !== s.dtype || root.numel !== s.numel))
          throw new Error(`storage ${s.key} is described twice differently`)
        roots.set(s.key, { dtype: s.dtype, numel: s.numel })
        const id = s.view ? `${s.key}/${s.view.key}` : s.key
        const known = storages.get(id)
        if (known) return known
        if (s.view && s.view.offset + s.view.numel > s.numel)
          throw new Error(`storage view ${s.view.key} lies outside storage ${s.key}`)
        const st = new TorchStorage(id, s.dtype, s.view ? s.view.numel : s.numel, null)
        storages.set(id, st)
        views.push({ st, root: s.key, offset: s.view ? s.view.offset : 0 })
        return st
      },
    },
    sys.end,
  )
  const keys = unpickle(buf, plain, main.end)
  const keyList = Array.isArray(keys.value) ? keys.value : null
  if (!keyList || !keyList.every((k) => typeof k === 'string'))
    throw bad('the storage key list after the pickle is damaged')
  // Storages follow in key order: int64 element count, then the raw elements.
  const offsets = new Map<string, number>()
  let pos = keys.end
  const lenBuf = new Uint8Array(8)
  for (const k of keyList as string[]) {
    const root = roots.get(k)
    if (!root) throw bad(`storage ${k} is listed but no tensor uses it`)
    if (pos + 8 > size) throw bad(`the file ends before storage ${k} (truncated?)`, 'truncated')
    await fh.read(lenBuf, 0, 8, pos)
    const n = new DataView(lenBuf.buffer).getBigInt64(0, true)
    if (n !== BigInt(root.numel))
      throw bad(`storage ${k} holds ${n} elements on disk but the pickle says ${root.numel}`)
    const bytes = root.numel * TORCH_DTYPE_SIZE[root.dtype]
    if (pos + 8 + bytes > size) throw bad(`the file ends inside storage ${k} (truncated?)`, 'truncated')
    offsets.set(k, pos + 8)
    pos += 8 + bytes
  }
  for (const v of views) {
    const at = offsets.get(v.root)
    if (at === undefined) throw bad(`storage ${v.root} is used but its data is not in the file`)
    v.st.fileOffset = at + v.offset * TORCH_DTYPE_SIZE[v.st.dtype]
  }
  return main.value
}
