import { crc32 } from './zip'

/**
 * A minimal writer of `torch.save` zip files (protocol-2 pickle of an OrderedDict of tensors, stored
 * entries, 64-byte aligned data) for tests, fixtures and benches: what PyTorch writes for a state dict,
 * optionally wrapped in `{wrapper: state_dict}` as Real-ESRGAN releases are. Also raw pickle building
 * blocks, so tests can write hostile pickles.
 */

export type WriterDType = 'F32' | 'F16' | 'BF16' | 'I64'

const STORAGE_CLASS: Record<WriterDType, string> = {
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  I64: 'LongStorage',
}
const SIZE: Record<WriterDType, number> = { F32: 4, F16: 2, BF16: 2, I64: 8 }

export interface TensorToSave {
  dtype: WriterDType
  shape: number[]
  /** Raw little-endian element bytes (row-major). */
  bytes: Uint8Array
}

export class PickleBuilder {
  private readonly parts: number[] = []

  op(...bytes: number[]): this {
    for (const b of bytes) this.parts.push(b)
    return this
  }
  raw(b: Uint8Array): this {
    for (const x of b) this.parts.push(x)
    return this
  }
  proto(p = 2): this {
    return this.op(0x80, p)
  }
  mark(): this {
    return this.op(0x28)
  }
  int(v: number): this {
    const b = new Uint8Array(4)
    new DataView(b.buffer).setInt32(0, v, true)
    return this.op(0x4a).raw(b)
  }
  str(s: string): this {
    const u = new TextEncoder().encode(s)
    const n = new Uint8Array(4)
    new DataView(n.buffer).setUint32(0, u.length, true)
    return this.op(0x58).raw(n).raw(u)
  }
  global(module: string, name: string): this {
    return this.op(0x63).raw(new TextEncoder().encode(`${module}\n${name}\n`))
  }
  tuple(): this {
    return this.op(0x74)
  }
  emptyTuple(): this {
    return this.op(0x29)
  }
  reduce(): this {
    return this.op(0x52)
  }
  emptyDict(): this {
    return this.op(0x7d)
  }
  setitem(): this {
    return this.op(0x73)
  }
  setitems(): this {
    return this.op(0x75)
  }
  binpersid(): this {
    return this.op(0x51)
  }
  stop(): this {
    return this.op(0x2e)
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts)
  }
}

function intTuple(p: PickleBuilder, xs: number[]): void {
  p.mark()
  for (const x of xs) p.int(x)
  p.tuple()
}

function contiguousStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length).fill(1)
  for (let i = shape.length - 2; i >= 0; i--) s[i] = (s[i + 1] as number) * (shape[i + 1] as number)
  return s
}

/** The data.pkl of an OrderedDict state dict whose tensor i uses storage key String(i). */
export function stateDictPickle(
  tensors: [string, { dtype: WriterDType; shape: number[] }][],
  wrapper?: string,
): Uint8Array {
  const p = new PickleBuilder().proto(2)
  if (wrapper) p.emptyDict().str(wrapper)
  p.global('collections', 'OrderedDict').emptyTuple().reduce().mark()
  tensors.forEach(([name, t], i) => {
    const numel = t.shape.reduce((a, b) => a * b, 1)
    p.str(name).global('torch._utils', '_rebuild_tensor_v2').mark()
    p.mark()
      .str('storage')
      .global('torch', STORAGE_CLASS[t.dtype])
      .str(String(i))
      .str('cpu')
      .int(numel)
      .tuple()
    p.binpersid().int(0)
    intTuple(p, t.shape)
    intTuple(p, contiguousStrides(t.shape))
    p.op(0x89).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce()
  })
  p.setitems()
  if (wrapper) p.setitem()
  return p.stop().bytes()
}

/** A zip of stored entries, each entry's data 64-byte aligned as PyTorch writes them. */
export function zipStored(entries: [string, Uint8Array][]): Uint8Array {
  const chunks: Uint8Array[] = []
  const central: Uint8Array[] = []
  let offset = 0
  const enc = new TextEncoder()
  for (const [name, data] of entries) {
    const n = enc.encode(name)
    const headerEnd = offset + 30 + n.length
    const pad = (64 - ((headerEnd + 4) % 64)) % 64
    const extra = new Uint8Array(4 + pad)
    new DataView(extra.buffer).setUint16(0, 0x4246, true)
    new DataView(extra.buffer).setUint16(2, pad, true)
    const crc = crc32(data)
    const h = new Uint8Array(30)
    const hv = new DataView(h.buffer)
    hv.setUint32(0, 0x04034b50, true)
    hv.setUint16(4, 20, true)
    hv.setUint32(14, crc, true)
    hv.setUint32(18, data.length, true)
    hv.setUint32(22, data.length, true)
    hv.setUint16(26, n.length, true)
    hv.setUint16(28, extra.length, true)
    const c = new Uint8Array(46)
    const cv = new DataView(c.buffer)
    cv.setUint32(0, 0x02014b50, true)
    cv.setUint16(4, 20, true)
    cv.setUint16(6, 20, true)
    cv.setUint32(16, crc, true)
    cv.setUint32(20, data.length, true)
    cv.setUint32(24, data.length, true)
    cv.setUint16(28, n.length, true)
    cv.setUint32(42, offset, true)
    central.push(c, n)
    chunks.push(h, n, extra, data)
    offset += 30 + n.length + extra.length + data.length
  }
  const cdSize = central.reduce((a, b) => a + b.length, 0)
  const e = new Uint8Array(22)
  const ev = new DataView(e.buffer)
  ev.setUint32(0, 0x06054b50, true)
  ev.setUint16(8, entries.length, true)
  ev.setUint16(10, entries.length, true)
  ev.setUint32(12, cdSize, true)
  ev.setUint32(16, offset, true)
  const all = [...chunks, ...central, e]
  const out = new Uint8Array(all.reduce((a, b) => a + b.length, 0))
  let p = 0
  for (const b of all) {
    out.set(b, p)
    p += b.length
  }
  return out
}

/** A torch.save zip file of a state dict (optionally `{wrapper: state_dict}`). */
export function torchSaveZip(
  tensors: [string, TensorToSave][],
  opts: { archive?: string; wrapper?: string } = {},
): Uint8Array {
  const a = opts.archive ?? 'archive'
  for (const [name, t] of tensors) {
    const numel = t.shape.reduce((x, y) => x * y, 1)
    if (t.bytes.length !== numel * SIZE[t.dtype])
      throw new Error(`${name}: ${t.bytes.length} bytes for ${t.dtype} [${t.shape}]`)
  }
  const pkl = stateDictPickle(
    tensors.map(([n, t]) => [n, { dtype: t.dtype, shape: t.shape }]),
    opts.wrapper,
  )
  return zipStored([
    [`${a}/data.pkl`, pkl],
    ...tensors.map(([, t], i): [string, Uint8Array] => [`${a}/data/${i}`, t.bytes]),
    [`${a}/version`, new TextEncoder().encode('3\n')],
  ])
}

export function f32Bytes(values: ArrayLike<number>): Uint8Array {
  const f = Float32Array.from(values)
  return new Uint8Array(f.buffer)
}
