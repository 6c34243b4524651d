/**
 * Hostile pickles and torch archives for the hardening tests and bench/hostile.ts (issue 18, attack 7),
 * built in memory: tiny pickles whose shared references expand exponentially, and a small .pth whose
 * storages are deflated entries claiming 1 GiB each.
 */
import { constants, deflateRawSync } from 'node:zlib'
import { stateDictPickle } from './torch-writer'
import { crc32 } from './zip'

/** PROTO 2, `pad` MARKs (one-byte no-ops at the bottom of the stack), then `body`, padded to exactly `bytes`. */
function sized(bytes: number, body: number[]): Uint8Array {
  const pad = bytes - 2 - body.length
  if (pad < 0) throw new RangeError(`pickle body of ${body.length} bytes does not fit in ${bytes}`)
  return Uint8Array.from([0x80, 0x02, ...Array<number>(pad).fill(0x28), ...body])
}

/**
 * `{t: None}` where t = (t', t') nested through the memo (BINPUT / BINGET) as deep as `bytes` allows: 512
 * bytes whose one dict key stands for 2^63 values.
 */
export function tupleDagKeyPickle(bytes = 512): Uint8Array {
  // per level: BINPUT 1, POP, BINGET 1, BINGET 1, TUPLE2
  const level = [0x71, 0x01, 0x30, 0x68, 0x01, 0x68, 0x01, 0x86]
  const levels = Math.floor((bytes - 2 - 5) / level.length)
  const body = [0x7d, 0x4e, ...Array.from({ length: levels }, () => level).flat(), 0x4e, 0x73, 0x2e]
  return sized(bytes, body) // EMPTY_DICT, NONE (leaf) ... NONE (value), SETITEM, STOP
}

/**
 * The 325-byte variant: the leaf is a 200-character string, doubled by DUP / TUPLE2 per level, so key
 * strings grew to 2^levels x 200 characters (1-1.9 GB before the old reader failed).
 */
export function stringDagKeyPickle(bytes = 325): Uint8Array {
  const leaf = [...Buffer.from('a'.repeat(200))]
  const head = [0x7d, 0x58, leaf.length, 0, 0, 0, ...leaf] // EMPTY_DICT, BINUNICODE
  const levels = Math.floor((bytes - 2 - head.length - 3) / 2)
  return sized(bytes, [
    ...head,
    ...Array.from({ length: levels }, () => [0x32, 0x86]).flat(),
    0x4e,
    0x73,
    0x2e,
  ])
}

/** A list DAG as a plain value (no dict key): l = [l', l'] through the memo, 60 levels in 603 bytes. */
export function listDagPickle(levels = 60): Uint8Array {
  // per level: BINPUT 0, POP, EMPTY_LIST, MARK, BINGET 0, BINGET 0, APPENDS
  const level = [0x71, 0x00, 0x30, 0x5d, 0x28, 0x68, 0x00, 0x68, 0x00, 0x65]
  return Uint8Array.from([0x80, 0x02, 0x4e, ...Array.from({ length: levels }, () => level).flat(), 0x2e])
}

/** A legacy (pre-zip) torch.save file whose main pickle is `body`: magic number, protocol 1001, sys info. */
export function legacyTorchFile(body: Uint8Array): Buffer {
  const magic = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19] // 0x1950a86a20f9469cfc6c LE
  return Buffer.concat([
    Uint8Array.from([0x80, 0x02, 0x8a, magic.length, ...magic, 0x2e]),
    Uint8Array.from([0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]),
    Uint8Array.from([0x80, 0x02, 0x7d, 0x2e]),
    body,
  ])
}

/** A zip with deflated entries: [name, raw deflate bytes, declared size, crc]. */
function zipDeflated(entries: [string, Uint8Array, number, number][]): Buffer {
  const chunks: Buffer[] = []
  const central: Buffer[] = []
  let offset = 0
  for (const [name, data, size, crc] of entries) {
    const n = Buffer.from(name)
    const h = Buffer.alloc(30)
    h.writeUInt32LE(0x04034b50, 0)
    h.writeUInt16LE(20, 4)
    h.writeUInt16LE(8, 8)
    h.writeUInt32LE(crc, 14)
    h.writeUInt32LE(data.length, 18)
    h.writeUInt32LE(size, 22)
    h.writeUInt16LE(n.length, 26)
    const c = Buffer.alloc(46)
    c.writeUInt32LE(0x02014b50, 0)
    c.writeUInt16LE(20, 4)
    c.writeUInt16LE(20, 6)
    c.writeUInt16LE(8, 10)
    c.writeUInt32LE(crc, 16)
    c.writeUInt32LE(data.length, 20)
    c.writeUInt32LE(size, 24)
    c.writeUInt16LE(n.length, 28)
    c.writeUInt32LE(offset, 42)
    central.push(c, n)
    chunks.push(h, n, Buffer.from(data))
    offset += 30 + n.length + data.length
  }
  const cd = Buffer.concat(central)
  const e = Buffer.alloc(22)
  e.writeUInt32LE(0x06054b50, 0)
  e.writeUInt16LE(entries.length, 8)
  e.writeUInt16LE(entries.length, 10)
  e.writeUInt32LE(cd.length, 12)
  e.writeUInt32LE(offset, 16)
  return Buffer.concat([...chunks, cd, e])
}

/** Raw deflate of `mib` MiB of zeros, about 1 KB per MiB (sync-flushed blocks repeated, then a final block). */
export function deflateZeros(mib: number): Buffer {
  const block = deflateRawSync(Buffer.alloc(1 << 20), { finishFlush: constants.Z_SYNC_FLUSH, level: 9 })
  return Buffer.concat([...Array<Buffer>(mib).fill(block), Buffer.from([0x03, 0x00])])
}

/**
 * A torch.save archive of `count` F32 tensors whose storages are deflated entries of `mib` MiB of zeros each
 * (6 x 1 GiB in about 6.6 MB). An unguarded reader inflates each before its CRC check fails.
 */
export function deflatedStoragePth(count = 6, mib = 1024): Buffer {
  const numel = (mib * (1 << 20)) / 4
  const pkl = stateDictPickle(
    Array.from({ length: count }, (_, i) => [`w${i}`, { dtype: 'F32', shape: [numel] }]),
  )
  const zeros = deflateZeros(mib)
  const crc = 0 // checked only after inflating, which is the attack
  return zipDeflated([
    ['archive/data.pkl', deflateRawSync(pkl), pkl.length, crc32(pkl)],
    ...Array.from({ length: count }, (_, i): [string, Uint8Array, number, number] => [
      `archive/data/${i}`,
      zeros,
      mib * (1 << 20),
      crc,
    ]),
  ])
}
