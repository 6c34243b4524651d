/** Download manager data types. Jobs are plain JSON (persisted in the state file and sent to the renderer). */
import type { RemoteErrorCode } from '../remote/errors'
import type { JsonValue } from '../remote/types'

export type DownloadState =
  'queued' | 'downloading' | 'paused' | 'verifying' | 'done' | 'failed' | 'cancelled'

export const ACTIVE_STATES: readonly DownloadState[] = ['downloading', 'verifying']
export const FINAL_STATES: readonly DownloadState[] = ['done', 'failed', 'cancelled']

/** Which service a URL belongs to: picks error messages and the credential sent (to that origin only). */
export type DownloadSource = 'civitai' | 'huggingface' | 'url'

export type DownloadErrorCode =
  | RemoteErrorCode
  | 'disk-full' // ENOSPC while writing, or not enough free space to start
  | 'hash-mismatch' // SHA-256 differs from the expected one (file quarantined)
  | 'size-mismatch' // byte count differs from the announced / expected size
  | 'not-a-model' // HTML page where a file was expected (Civitai login page)
  | 'io' // other file-system failure

export interface DownloadError {
  code: DownloadErrorCode
  message: string
}

export interface DownloadRequest {
  url: string
  /** Destination folder (created if missing). The file lands directly inside it. */
  destDir: string
  /** Preferred file name (e.g. the API's files[].name); sanitised. Else Content-Disposition, else the URL. */
  fileName?: string
  /** Lowercase or uppercase hex SHA-256 (Civitai SHA256, HF lfs.oid). */
  expectedSha256?: string
  expectedSize?: number
  source?: DownloadSource
  /** Send the credential of `source` (default true when source is civitai / huggingface). */
  useCredentials?: boolean
  /** Extra non-secret request headers (persisted in the state file: never put tokens here). */
  headers?: Record<string, string>
  /** Opaque caller data, returned untouched (e.g. model / version ids for the library). */
  meta?: { [key: string]: JsonValue }
}

export interface DownloadJob {
  id: string
  state: DownloadState
  request: DownloadRequest
  /** Final (sanitised) file name, known after the first response. */
  fileName: string | null
  /** Absolute final path, set when the job is done. */
  destPath: string | null
  /** Absolute path of the `.partial` file. */
  partialPath: string
  bytes: number
  total: number | null
  /** Validators of the final (storage) response, sent as If-Range when resuming. */
  etag: string | null
  lastModified: string | null
  /** Computed SHA-256 (lowercase hex) once verified. */
  sha256: string | null
  /** false when done without an expected hash to compare with. */
  verified: boolean
  error: DownloadError | null
  /** Consecutive failed attempts of the current run (reset when an attempt makes progress). */
  attempts: number
  createdAt: string
  updatedAt: string
  finishedAt: string | null
}

export interface DownloadProgress {
  id: string
  bytes: number
  total: number | null
  /** Bytes per second, smoothed. */
  speedBps: number
  /** Estimated milliseconds left; null when the total or the speed is unknown. */
  etaMs: number | null
}

export interface DownloadEvents {
  progress: DownloadProgress
  /** A snapshot of the job after every state change. */
  state: DownloadJob
}
