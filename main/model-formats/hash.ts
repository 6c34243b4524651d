import crypto from 'node:crypto'
import fs from 'node:fs'

/**
 * Model hashes as the community uses them (see shared docs field-notes):
 * - SHA-256 of the whole file (Civitai "SHA256", HF LFS oid); AutoV2 = its first 10 hex digits, uppercase.
 * - A1111's legacy "model hash": SHA-256 of 64 KiB at offset 1 MiB, first 8 hex digits.
 * - AutoV3 (Civitai, safetensors only): SHA-256 of the file after its header, first 12 hex digits, uppercase.
 */

export interface HashOptions {
  signal?: AbortSignal
  onProgress?: (bytes: number, total: number) => void
  /** Hash from this byte offset (AutoV3 skips the safetensors header). */
  start?: number
}

const CHUNK = 4 * 1024 * 1024

/** The error a cancelled hash throws: the signal's reason when it is an Error, else an AbortError. */
export function abortError(signal: AbortSignal): Error {
  if (signal.reason instanceof Error) return signal.reason
  const err = new Error('cancelled')
  err.name = 'AbortError'
  return err
}

/**
 * The one read loop of every file hash: the file from `start` to its end in 4 MiB chunks through one reused
 * buffer, `onChunk(chunk, position)` for each (the chunk is only valid during the call), cancellable between
 * chunks, with `onProgress` at least every `progressEvery` bytes and at the end.
 */
export async function readFileChunks(
  file: string,
  onChunk: (chunk: Buffer, pos: number) => void,
  opts: HashOptions & { progressEvery?: number } = {},
): Promise<void> {
  const handle = await fs.promises.open(file, 'r')
  try {
    const { size } = await handle.stat()
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK, size)))
    const every = opts.progressEvery ?? 16 * CHUNK
    let pos = opts.start ?? 0
    let lastReport = 0
    while (pos < size) {
      if (opts.signal?.aborted) throw abortError(opts.signal)
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - pos), pos)
      if (bytesRead === 0) break
      onChunk(buf.subarray(0, bytesRead), pos)
      pos += bytesRead
      if (opts.onProgress && (pos - lastReport >= every || pos === size)) {
        lastReport = pos
        opts.onProgress(pos, size)
      }
    }
  } finally {
    await handle.close()
  }
}

export async function sha256File(file: string, opts: HashOptions = {}): Promise<string> {
  const hash = crypto.createHash('sha256')
  await readFileChunks(file, (chunk) => hash.update(chunk), { ...opts, progressEvery: 64 * CHUNK })
  return hash.digest('hex')
}

export function autoV2(sha256: string): string {
  return sha256.slice(0, 10).toUpperCase()
}

export async function a1111LegacyHash(file: string): Promise<string> {
  const handle = await fs.promises.open(file, 'r')
  try {
    const buf = Buffer.alloc(0x10000)
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0x100000)
    return crypto.createHash('sha256').update(buf.subarray(0, bytesRead)).digest('hex').slice(0, 8)
  } finally {
    await handle.close()
  }
}

/** Civitai AutoV3: SHA-256 of a safetensors file's data section (after the 8-byte length and the header). */
export async function autoV3(file: string): Promise<string> {
  const handle = await fs.promises.open(file, 'r')
  let start: number
  try {
    const len = Buffer.alloc(8)
    await handle.read(len, 0, 8, 0)
    start = 8 + Number(len.readBigUInt64LE(0))
  } finally {
    await handle.close()
  }
  return (await sha256File(file, { start })).slice(0, 12).toUpperCase()
}
