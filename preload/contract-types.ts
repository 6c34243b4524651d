/** DTOs that cross the contract. Plain JSON-able data plus Uint8Array for binary payloads. */

export type ErrorCode =
  | 'invalid-input'
  | 'unknown-channel'
  | 'not-found'
  | 'unauthorized'
  | 'forbidden'
  | 'conflict'
  | 'cancelled'
  | 'unavailable'
  | 'rate-limited'
  | 'disk-full'
  | 'unsupported'
  | 'internal'

export interface ApiError {
  code: ErrorCode
  message: string
  /** Field-level details for invalid-input. */
  issues?: { path: string; message: string }[]
}

export type Result<V> = { ok: true; value: V } | { ok: false; error: ApiError }

export interface ExecutionProviderInfo {
  /** The provider sessions are created with, e.g. 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'. */
  name: string
  /** Providers this build of onnxruntime-node offers. */
  available: string[]
  /** Why a preferred provider was not used (shown in the status bar), if any. */
  fallbackReason?: string
}

export interface AppInfo {
  version: string
  mode: 'desktop' | 'server'
  platform: string
  executionProvider: ExecutionProviderInfo
  home: string
}

export type NsfwPreference = 'hide' | 'blur' | 'show'

export interface Settings {
  civitaiBaseUrl: string
  hfBaseUrl: string
  libraryRoot: string
  extraLibraryRoots: string[]
  concurrentDownloads: number
  nsfw: NsfwPreference
  executionProvider: 'auto' | 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu'
}

export type SecretName = 'civitaiApiKey' | 'hfToken'

export interface SecretStatus {
  name: SecretName
  isSet: boolean
  /** Where the value comes from: the encrypted store or an environment variable. */
  source: 'store' | 'env' | 'none'
  /** Last four characters, for recognition only. */
  hint?: string
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled'

export interface JobInfo {
  id: string
  kind: string
  label: string
  state: JobState
  progress: number
  message?: string
  startedAt: number
}

export interface JobRef {
  jobId: string
}
