import crypto from 'node:crypto'
import fs from 'node:fs'

export interface FileHashes {
  sha256: string
  /** Uppercase 12 hex of the SHA-256 from `dataStart` on (Civitai AutoV3), when asked for. */
  autoV3: string | null
}

export interface HashFileOptions {
  signal?: AbortSignal
  onProgress?: (bytes: number, total: number) => void
  /** When set, also hash the bytes from this offset (AutoV3) in the same pass. */
  dataStart?: number | null
}

/** Hashing entry point used by the library (a seam: tests count its calls to prove rescans read nothing). */
export type HashFileFn = (file: string, opts?: HashFileOptions) => Promise<FileHashes>

const CHUNK = 4 * 1024 * 1024

/** SHA-256 of the whole file and, in the same single read, of its data section (AutoV3). */
export const hashFile: HashFileFn = async (file, opts = {}) => {
  const handle = await fs.promises.open(file, 'r')
  try {
    const { size } = await handle.stat()
    const full = crypto.createHash('sha256')
    const dataStart = opts.dataStart ?? null
    const data = dataStart !== null && dataStart <= size ? crypto.createHash('sha256') : null
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK, size)))
    let pos = 0
    let lastReport = 0
    while (pos < size) {
      if (opts.signal?.aborted) throw abortError(opts.signal)
      const { bytesRead } = await handle.read(buf, 0, Math.min(CHUNK, size - pos), pos)
      if (bytesRead === 0) break
      const chunk = buf.subarray(0, bytesRead)
      full.update(chunk)
      if (data && dataStart !== null && pos + bytesRead > dataStart) {
        data.update(pos >= dataStart ? chunk : chunk.subarray(dataStart - pos))
      }
      pos += bytesRead
      if (opts.onProgress && (pos - lastReport >= 16 * CHUNK || pos === size)) {
        lastReport = pos
        opts.onProgress(pos, size)
      }
    }
    return {
      sha256: full.digest('hex'),
      autoV3: data ? data.digest('hex').slice(0, 12).toUpperCase() : null,
    }
  } finally {
    await handle.close()
  }
}

export function abortError(signal: AbortSignal): Error {
  if (signal.reason instanceof Error) return signal.reason
  const err = new Error('cancelled')
  err.name = 'AbortError'
  return err
}
