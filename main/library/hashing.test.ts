/**
 * The one file-hash loop (model-formats/hash.ts readFileChunks) behind sha256File, AutoV3 and the library's
 * single-pass hashFile: chunk boundaries, offsets, progress, cancellation, empty files.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { autoV3, readFileChunks, sha256File } from '../model-formats/hash'
import { hashFile } from './hashing'

const MiB = 1024 * 1024
let tmp = ''
let big = ''
let bytes = Buffer.alloc(0)
const sha = (b: Uint8Array): string => crypto.createHash('sha256').update(b).digest('hex')

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-hashing-'))
  // 9 MiB + 123 bytes of seeded bytes: three reads of 4 MiB, the last one short.
  bytes = Buffer.alloc(9 * MiB + 123)
  let s = 7
  for (let i = 0; i < bytes.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff
    bytes[i] = s >> 16
  }
  // A safetensors-like length prefix so AutoV3 has a data section that starts mid-chunk.
  bytes.writeBigUInt64LE(BigInt(4 * MiB + 1000), 0)
  big = path.join(tmp, 'big.safetensors')
  fs.writeFileSync(big, bytes)
})
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe('the file-hash loop', () => {
  it('sha256File, AutoV3 and the library hash agree with hashing the bytes in memory', async () => {
    const dataStart = 8 + 4 * MiB + 1000
    expect(await sha256File(big)).toBe(sha(bytes))
    expect(await sha256File(big, { start: 5 })).toBe(sha(bytes.subarray(5)))
    const v3 = sha(bytes.subarray(dataStart)).slice(0, 12).toUpperCase()
    expect(await autoV3(big)).toBe(v3)
    expect(await hashFile(big, { dataStart })).toEqual({ sha256: sha(bytes), autoV3: v3 })
    expect(await hashFile(big)).toEqual({ sha256: sha(bytes), autoV3: null })
    // A data section that starts past the end has no AutoV3; one that starts at the end hashes nothing.
    expect((await hashFile(big, { dataStart: bytes.length + 1 })).autoV3).toBeNull()
    expect((await hashFile(big, { dataStart: bytes.length })).autoV3).toBe(
      sha(new Uint8Array()).slice(0, 12).toUpperCase(),
    )
  })

  it('hands out every byte once, in order, and reports progress up to the size', async () => {
    const seen: number[] = []
    const progress: number[] = []
    let total = 0
    await readFileChunks(
      big,
      (chunk, pos) => {
        expect(pos).toBe(total)
        seen.push(chunk.length)
        total += chunk.length
      },
      {
        onProgress: (b, size) => (expect(size).toBe(bytes.length), progress.push(b)),
        progressEvery: 4 * MiB,
      },
    )
    expect(seen).toEqual([4 * MiB, 4 * MiB, MiB + 123])
    expect(progress).toEqual([4 * MiB, 8 * MiB, bytes.length])
  })

  it('empty files hash to the empty digest; a cancelled hash throws an AbortError and reads nothing more', async () => {
    const empty = path.join(tmp, 'empty.bin')
    fs.writeFileSync(empty, '')
    expect(await sha256File(empty)).toBe(sha(new Uint8Array()))
    const ac = new AbortController()
    let chunks = 0
    const run = readFileChunks(
      big,
      () => {
        chunks++
        ac.abort()
      },
      { signal: ac.signal },
    )
    await expect(run).rejects.toMatchObject({ name: 'AbortError' })
    expect(chunks).toBe(1)
    const reason = new Error('stop now')
    await expect(hashFile(big, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
  })
})
