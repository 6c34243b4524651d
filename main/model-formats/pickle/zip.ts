import type { FileHandle } from 'node:fs/promises'
import { open as openFile } from 'node:fs/promises'
import path from 'node:path'
import { inflateRawSync } from 'node:zlib'
import { crc32 } from '../crc32'

export { crc32 }

/**
 * A small read-only zip reader for PyTorch archives: the end-of-central-directory record (zip64 included),
 * the central directory, and entry data by positional reads. `torch.save` writes every entry stored
 * (uncompressed, 64-byte aligned), so tensor storages are plain byte ranges of the file; deflated entries
 * (an archive re-zipped by another tool) are inflated in memory, up to a limit. Every size and offset is
 * checked against the file before it is used.
 */

export class ZipFormatError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
    this.name = 'ZipFormatError'
  }
}

export interface ZipEntry {
  name: string
  /** 0 stored, 8 deflate. */
  method: number
  compressedSize: number
  size: number
  crc32: number
  /** Offset of the local file header. */
  localOffset: number
}

const SIG_EOCD = 0x06054b50
const SIG_EOCD64 = 0x06064b50
const SIG_LOCATOR64 = 0x07064b50
const SIG_CENTRAL = 0x02014b50
const SIG_LOCAL = 0x04034b50

/** Largest central directory read into memory. */
const MAX_CENTRAL_BYTES = 256 * 1024 * 1024
/** Largest entry inflated (or read whole) into memory. */
export const MAX_INMEMORY_ENTRY = 1024 * 1024 * 1024
/**
 * Deflated entries above this size must not claim more than MAX_DEFLATE_RATIO times their compressed size:
 * tensor data compresses about 1.1:1, while a zip bomb of zeros claims 1000:1 (6.6 MB holding 1 GiB
 * entries). Checked on the central directory's sizes, before anything is allocated.
 */
const RATIO_FREE_BYTES = 16 * 1024 * 1024
export const MAX_DEFLATE_RATIO = 64
/** All inflation from one archive together: this much plus INFLATE_BUDGET_PER_BYTE per byte of the file. */
const INFLATE_BUDGET_BASE = 256 * 1024 * 1024
const INFLATE_BUDGET_PER_BYTE = 4

function u64(view: DataView, at: number): number {
  const v = view.getBigUint64(at, true)
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(v)
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length)
  let done = 0
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, Math.min(length - done, 1 << 30), position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done === length ? buf : buf.subarray(0, done)
}

export class ZipArchive {
  /** Bytes inflated so far (see INFLATE_BUDGET_BASE). */
  private inflated = 0

  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    readonly size: number,
    readonly entries: Map<string, ZipEntry>,
    /** Where the central directory starts: no entry data may reach past it. */
    private readonly dataLimit: number,
  ) {}

  private fail(code: string, problem: string): never {
    throw new ZipFormatError(`${path.basename(this.file)}: ${problem} (${this.file})`, code)
  }

  static async open(file: string): Promise<ZipArchive> {
    const fh = await openFile(file, 'r')
    try {
      const size = (await fh.stat()).size
      const { entries, dataLimit } = await readDirectory(file, fh, size)
      return new ZipArchive(file, fh, size, entries, dataLimit)
    } catch (err) {
      await fh.close()
      throw err
    }
  }

  async close(): Promise<void> {
    await this.fh.close()
  }

  has(name: string): boolean {
    return this.entries.has(name)
  }

  get(name: string): ZipEntry {
    const e = this.entries.get(name)
    if (!e) this.fail('missing-entry', `the archive has no entry "${name}"`)
    return e
  }

  /** Absolute file offset of an entry's data (after its local header). */
  async dataOffset(e: ZipEntry): Promise<number> {
    const head = await readAt(this.fh, e.localOffset, 30)
    if (head.length < 30) this.fail('truncated', `entry "${e.name}": its local header is cut off`)
    const v = new DataView(head.buffer, head.byteOffset, head.byteLength)
    if (v.getUint32(0, true) !== SIG_LOCAL)
      this.fail('bad-local-header', `entry "${e.name}": no local file header at byte ${e.localOffset}`)
    const start = e.localOffset + 30 + v.getUint16(26, true) + v.getUint16(28, true)
    if (start + e.compressedSize > this.dataLimit)
      this.fail(
        'truncated',
        `entry "${e.name}" (${e.compressedSize} bytes at ${start}) runs past the end of the data (${this.dataLimit})`,
      )
    return start
  }

  /** The byte range of a stored (uncompressed) entry; null when the entry is compressed. */
  async storedRange(e: ZipEntry): Promise<{ begin: number; end: number } | null> {
    if (e.method !== 0) return null
    const begin = await this.dataOffset(e)
    return { begin, end: begin + e.size }
  }

  /** The whole entry in memory (inflated when deflated), size-limited, CRC-checked. */
  async read(e: ZipEntry, limit = MAX_INMEMORY_ENTRY): Promise<Uint8Array> {
    if (e.size > limit || e.compressedSize > limit)
      this.fail(
        'too-large',
        `entry "${e.name}" is ${e.size} bytes; the limit for reading it whole is ${limit}`,
      )
    if (e.method === 8) {
      if (e.size > RATIO_FREE_BYTES && e.size > e.compressedSize * MAX_DEFLATE_RATIO)
        this.fail(
          'too-large',
          `entry "${e.name}" claims to inflate ${e.compressedSize} bytes to ${e.size} ` +
            `(more than ${MAX_DEFLATE_RATIO}:1, a zip bomb); it is not inflated`,
        )
      const budget = INFLATE_BUDGET_BASE + INFLATE_BUDGET_PER_BYTE * this.size
      if (this.inflated + e.size > budget)
        this.fail(
          'too-large',
          `inflating entry "${e.name}" would bring this archive past ${budget} decompressed bytes`,
        )
      this.inflated += e.size
    }
    const start = await this.dataOffset(e)
    const raw = await readAt(this.fh, start, e.compressedSize)
    if (raw.length !== e.compressedSize) this.fail('truncated', `entry "${e.name}" is cut off`)
    let data: Uint8Array
    if (e.method === 0) data = raw
    else if (e.method === 8) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) })
      } catch (err) {
        this.fail('bad-deflate', `entry "${e.name}" does not inflate (${(err as Error).message})`)
      }
      if (data.length !== e.size)
        this.fail('bad-deflate', `entry "${e.name}" inflates to ${data.length} bytes, not ${e.size}`)
    } else this.fail('unsupported-method', `entry "${e.name}" uses compression method ${e.method}`)
    if (crc32(data) !== e.crc32) this.fail('bad-crc', `entry "${e.name}" fails its CRC check (corrupt file?)`)
    return data
  }

  /** Bytes [begin, end) of a stored entry's data, read positionally (no CRC over partial reads). */
  async readRange(absBegin: number, length: number): Promise<Uint8Array> {
    if (absBegin < 0 || length < 0 || absBegin + length > this.dataLimit)
      this.fail('out-of-range', `a read of ${length} bytes at ${absBegin} lies outside the archive data`)
    const b = await readAt(this.fh, absBegin, length)
    if (b.length !== length) this.fail('truncated', `the file ends inside a read at ${absBegin}`)
    return b
  }
}

/** Whether bytes look like the start of a zip file. */
export function isZipMagic(head: Uint8Array): boolean {
  return (
    head[0] === 0x50 &&
    head[1] === 0x4b &&
    (head[2] === 3 || head[2] === 5) &&
    (head[3] === 4 || head[3] === 6)
  )
}

async function readDirectory(
  file: string,
  fh: FileHandle,
  size: number,
): Promise<{ entries: Map<string, ZipEntry>; dataLimit: number }> {
  const fail = (code: string, problem: string): never => {
    throw new ZipFormatError(`${path.basename(file)}: ${problem} (${file})`, code)
  }
  if (size < 22) fail('truncated', `the file has ${size} bytes, too few for a zip archive`)
  const tailLen = Math.min(size, 22 + 0xffff)
  const tailStart = size - tailLen
  const tail = await readAt(fh, tailStart, tailLen)
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength)
  let eocd = -1
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) !== SIG_EOCD) continue
    // The comment must reach exactly to the end of the file (rejects a stray signature inside data).
    if (i + 22 + tv.getUint16(i + 20, true) === tail.length) {
      eocd = i
      break
    }
  }
  if (eocd < 0)
    fail(
      'no-directory',
      'no zip end-of-central-directory record: the archive is truncated (an interrupted download?) or not a zip file',
    )
  let entryCount = tv.getUint16(eocd + 10, true)
  let cdSize = tv.getUint32(eocd + 12, true)
  let cdOffset = tv.getUint32(eocd + 16, true)
  let directoryEnd = tailStart + eocd
  if (tv.getUint16(eocd + 4, true) !== 0 || tv.getUint16(eocd + 6, true) !== 0)
    fail('multi-disk', 'the archive spans several disks')
  if (entryCount === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20
    if (loc < 0 || tv.getUint32(loc, true) !== SIG_LOCATOR64)
      fail('bad-zip64', 'the archive needs zip64 records but has no zip64 locator')
    const recAt = u64(tv, loc + 8)
    if (!(recAt + 56 <= tailStart + loc))
      fail('bad-zip64', `the zip64 record offset ${recAt} is out of range`)
    const rec = await readAt(fh, recAt, 56)
    const rv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength)
    if (rec.length < 56 || rv.getUint32(0, true) !== SIG_EOCD64)
      fail('bad-zip64', `no zip64 end-of-central-directory record at byte ${recAt}`)
    entryCount = u64(rv, 32)
    cdSize = u64(rv, 40)
    cdOffset = u64(rv, 48)
    directoryEnd = recAt
  }
  if (!(cdOffset + cdSize <= directoryEnd))
    fail(
      'truncated',
      `the central directory (${cdSize} bytes at ${cdOffset}) does not fit before byte ${directoryEnd}: truncated or corrupt archive`,
    )
  if (cdSize > MAX_CENTRAL_BYTES) fail('too-large', `the central directory claims ${cdSize} bytes`)
  if (entryCount > cdSize / 46) fail('bad-directory', `${entryCount} entries cannot fit in ${cdSize} bytes`)
  const cd = await readAt(fh, cdOffset, cdSize)
  if (cd.length !== cdSize) fail('truncated', 'the central directory is cut off')
  const v = new DataView(cd.buffer, cd.byteOffset, cd.byteLength)
  const entries = new Map<string, ZipEntry>()
  const dec = new TextDecoder('utf-8')
  let p = 0
  for (let i = 0; i < entryCount; i++) {
    if (p + 46 > cd.length || v.getUint32(p, true) !== SIG_CENTRAL)
      fail('bad-directory', `central directory entry ${i} is damaged (at byte ${cdOffset + p})`)
    const flags = v.getUint16(p + 8, true)
    const method = v.getUint16(p + 10, true)
    const crc = v.getUint32(p + 16, true)
    let compressedSize = v.getUint32(p + 20, true)
    let usize = v.getUint32(p + 24, true)
    const nameLen = v.getUint16(p + 28, true)
    const extraLen = v.getUint16(p + 30, true)
    const commentLen = v.getUint16(p + 32, true)
    let localOffset = v.getUint32(p + 42, true)
    const next = p + 46 + nameLen + extraLen + commentLen
    if (next > cd.length) fail('bad-directory', `central directory entry ${i} runs past the directory`)
    const name = dec.decode(cd.subarray(p + 46, p + 46 + nameLen))
    // zip64 extended information: the 0xffffffff fields, in order.
    let x = p + 46 + nameLen
    const xEnd = x + extraLen
    while (x + 4 <= xEnd) {
      const id = v.getUint16(x, true)
      const len = v.getUint16(x + 2, true)
      if (x + 4 + len > xEnd) fail('bad-directory', `entry "${name}" has a damaged extra field`)
      if (id === 0x0001) {
        let q = x + 4
        const take = (): number => {
          if (q + 8 > x + 4 + len) fail('bad-zip64', `entry "${name}" has a short zip64 extra field`)
          const r = u64(v, q)
          q += 8
          return r
        }
        if (usize === 0xffffffff) usize = take()
        if (compressedSize === 0xffffffff) compressedSize = take()
        if (localOffset === 0xffffffff) localOffset = take()
      }
      x += 4 + len
    }
    if (flags & 1) fail('encrypted', `entry "${name}" is encrypted`)
    if (!(localOffset + 30 + compressedSize <= cdOffset))
      fail(
        'truncated',
        `entry "${name}" (${compressedSize} bytes at ${localOffset}) does not fit before the central directory`,
      )
    if (method === 0 && compressedSize !== usize)
      fail('bad-directory', `stored entry "${name}" has sizes ${compressedSize} and ${usize}`)
    if (entries.has(name)) fail('duplicate-entry', `the archive has two entries named "${name}"`)
    entries.set(name, { name, method, compressedSize, size: usize, crc32: crc, localOffset })
    p = next
  }
  return { entries, dataLimit: cdOffset }
}
