/**
 * Typed errors for remote services. Every HTTP failure of the Civitai / Hugging Face clients (and the download
 * manager's HTTP layer) becomes a RemoteError whose `message` a user can act on.
 */

export type RemoteErrorCode =
  | 'unauthorized' // 401: missing / invalid key, or login required
  | 'forbidden' // 403 other than the cases below
  | 'early-access' // Civitai 403 Early Access
  | 'gated' // HF gated repo (401 anonymous / 403 not approved)
  | 'not-found' // 404
  | 'gone' // 410 (Civitai archived)
  | 'rate-limited' // 429
  | 'server-error' // 5xx, CF 52x
  | 'bad-request' // 400 / 405 / 416 and other 4xx
  | 'bad-response' // body did not match the documented shape, HTML instead of JSON, ...
  | 'network' // connection refused / reset / timeout
  | 'aborted' // cancelled by the caller

export interface RemoteErrorInit {
  status?: number
  retryAfterMs?: number
  url?: string
  cause?: unknown
}

export class RemoteError extends Error {
  readonly code: RemoteErrorCode
  readonly status: number | undefined
  readonly retryAfterMs: number | undefined
  readonly url: string | undefined

  constructor(code: RemoteErrorCode, message: string, init: RemoteErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause })
    this.name = 'RemoteError'
    this.code = code
    this.status = init.status
    this.retryAfterMs = init.retryAfterMs
    this.url = init.url
  }

  /** Transient failures worth another try (after `retryAfterMs` when given). Auth errors never are. */
  get retryable(): boolean {
    return this.code === 'rate-limited' || this.code === 'server-error' || this.code === 'network'
  }

  toJSON(): { code: RemoteErrorCode; message: string; status?: number; retryAfterMs?: number } {
    return {
      code: this.code,
      message: this.message,
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
    }
  }
}

export function isRemoteError(err: unknown): err is RemoteError {
  return err instanceof RemoteError
}
