/**
 * Hostile PNGs for the hardening tests and bench/hostile.ts (issue 18, attack 4). Built in memory in
 * milliseconds: a 1 MB zTXt chunk that inflates to 1 GiB, and infotext lines that made the old regex
 * parser quadratic.
 */
import { constants, deflateRawSync } from 'node:zlib'
import { encodeChunk, PNG_SIGNATURE } from './png-chunks'

const IHDR = (() => {
  const d = Buffer.alloc(13)
  d.writeUInt32BE(1, 0)
  d.writeUInt32BE(1, 4)
  d[8] = 8 // bit depth
  d[9] = 0 // greyscale
  return encodeChunk('IHDR', d)
})()
// one grey pixel: filter byte 0 + value 0, zlib-compressed
const IDAT = encodeChunk(
  'IDAT',
  Uint8Array.from([0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]),
)
const IEND = encodeChunk('IEND', new Uint8Array(0))

/** A 1x1 PNG carrying the given extra chunks after IHDR. */
export function pngWithChunks(chunks: Uint8Array[]): Buffer {
  return Buffer.concat([PNG_SIGNATURE, IHDR, ...chunks, IDAT, IEND])
}

/**
 * A valid zlib stream of `mib` MiB of zeros, about 1 KB per MiB: one sync-flushed deflate block of 1 MiB of
 * zeros repeated (each copy starts with a literal, so it never reaches back before the stream), a final
 * empty block, and the Adler-32 of zeros.
 */
export function zlibZeros(mib: number): Buffer {
  const block = deflateRawSync(Buffer.alloc(1 << 20), { finishFlush: constants.Z_SYNC_FLUSH, level: 9 })
  const adler = Buffer.alloc(4)
  adler.writeUInt32BE(((((mib * (1 << 20)) % 65521) << 16) | 1) >>> 0)
  return Buffer.concat([
    Buffer.from([0x78, 0xda]),
    ...Array<Buffer>(mib).fill(block),
    Buffer.from([0x03, 0x00]),
    adler,
  ])
}

/** `parameters` as a zTXt chunk whose text inflates to `mib` MiB. */
export function zTxtBomb(mib = 1024): Uint8Array {
  return encodeChunk('zTXt', Buffer.concat([Buffer.from('parameters\0\0', 'latin1'), zlibZeros(mib)]))
}

/** The same as a compressed iTXt chunk. */
export function iTxtBomb(mib = 1024): Uint8Array {
  return encodeChunk('iTXt', Buffer.concat([Buffer.from('parameters\0\x01\0\0\0', 'latin1'), zlibZeros(mib)]))
}

/** Infotext lines that backtrack in the old regexes: word runs with no colon, unclosed quotes and braces. */
export function quadraticInfotext(bytes = 32 * 1024): string {
  const unit = 'a b-c/d '
  const words = unit.repeat(Math.ceil(bytes / 3 / unit.length))
  const quotes = 'kk: "x\\'.repeat(Math.ceil(bytes / 3 / 7))
  const braces = ', Hashes: {'.repeat(Math.ceil(bytes / 3 / 11))
  return `prompt\nSteps: 1, Sampler: Euler, Seed: 1, ${words}\n${words}, ${quotes}, ${braces}, Steps: 2, Aa: 1, Bb: 2`
}

/** The PNG the issue describes: a zTXt bomb, an iTXt bomb and a quadratic tEXt line in one small file. */
export function hostilePng(): Buffer {
  const text = quadraticInfotext(256 * 1024)
  return pngWithChunks([
    zTxtBomb(64),
    iTxtBomb(64),
    encodeChunk('tEXt', Buffer.from(`parameters\0${text}`, 'latin1')),
  ])
}

/**
 * A PNG that declares `width x height` RGB pixels, all zero, in about 1 KB per MiB decoded: 16000x16000
 * is ~750 KB on disk and 768 MB of pixels (4.7 GB through a decoder's working buffers).
 */
export function hugePng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 8
  ihdr[9] = 2 // RGB
  const mib = Math.ceil((height * (1 + width * 3)) / (1 << 20))
  return Buffer.concat([PNG_SIGNATURE, encodeChunk('IHDR', ihdr), encodeChunk('IDAT', zlibZeros(mib)), IEND])
}
