import crypto from 'node:crypto'
import { readFileChunks } from '../model-formats/hash'

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

/** SHA-256 of the whole file and, in the same single read, of its data section (AutoV3). */
export const hashFile: HashFileFn = async (file, opts = {}) => {
  const full = crypto.createHash('sha256')
  const dataStart = opts.dataStart ?? null
  let data: crypto.Hash | null = dataStart !== null ? crypto.createHash('sha256') : null
  let size = 0
  await readFileChunks(
    file,
    (chunk, pos) => {
      full.update(chunk)
      size = pos + chunk.length
      if (data && dataStart !== null && pos + chunk.length > dataStart)
        data.update(pos >= dataStart ? chunk : chunk.subarray(dataStart - pos))
    },
    { signal: opts.signal, onProgress: opts.onProgress },
  )
  // A data section that starts past the end of the file has no AutoV3.
  if (dataStart !== null && dataStart > size) data = null
  return {
    sha256: full.digest('hex'),
    autoV3: data ? data.digest('hex').slice(0, 12).toUpperCase() : null,
  }
}
