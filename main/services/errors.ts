import type { ApiError, ErrorCode } from '../../preload/contract-types'

/** An error meant for the user: crosses the contract as `{code, message}`. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly issues?: ApiError['issues'],
  ) {
    super(message)
    this.name = 'AppError'
  }
}

/** Maps anything thrown to an ApiError; internal details stay in main's log. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof AppError)
    return { code: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) }
  if (
    err &&
    typeof err === 'object' &&
    'code' in err &&
    typeof (err as { code: unknown }).code === 'string'
  ) {
    const code = (err as { code: string }).code
    if (code === 'ENOSPC') return { code: 'disk-full', message: 'The disk is full.' }
    if (code === 'ENOENT')
      return { code: 'not-found', message: err instanceof Error ? err.message : 'Not found.' }
    if (code === 'ABORT_ERR') return { code: 'cancelled', message: 'Cancelled.' }
  }
  if (err instanceof Error && err.name === 'AbortError') return { code: 'cancelled', message: 'Cancelled.' }
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) }
}
