import { crc32 as zlibCrc32 } from 'node:zlib'

/** CRC-32 (ISO 3309: zip entries, PNG chunks), continuing from `seed`; node:zlib's (Node >= 20.15). */
export function crc32(data: Uint8Array, seed = 0): number {
  return zlibCrc32(data, seed) >>> 0
}
