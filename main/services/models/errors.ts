/** Remote and library errors → AppError codes, so they cross the contract with their readable message. */
import type { ErrorCode } from '../../../preload/contract-types'
import { LibraryError, type LibraryErrorCode } from '../../library/errors'
import { RemoteError, type RemoteErrorCode } from '../../remote/errors'
import { AppError } from '../errors'

const REMOTE: Record<RemoteErrorCode, ErrorCode> = {
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  'early-access': 'forbidden',
  gated: 'forbidden',
  'not-found': 'not-found',
  gone: 'not-found',
  'rate-limited': 'rate-limited',
  'server-error': 'unavailable',
  'bad-request': 'invalid-input',
  'bad-response': 'unavailable',
  network: 'unavailable',
  aborted: 'cancelled',
}

const LIBRARY: Record<LibraryErrorCode, ErrorCode> = {
  'not-found': 'not-found',
  ambiguous: 'conflict',
  exists: 'conflict',
  'invalid-name': 'invalid-input',
  'not-a-model': 'unsupported',
  corrupt: 'unsupported',
  io: 'internal',
  disposed: 'unavailable',
}

export function toAppError(err: unknown): unknown {
  if (err instanceof RemoteError) return new AppError(REMOTE[err.code], err.message)
  if (err instanceof LibraryError) {
    const msg = err.message.charAt(0).toUpperCase() + err.message.slice(1)
    return new AppError(LIBRARY[err.code], msg.endsWith('.') ? msg : `${msg}.`)
  }
  return err
}

/** Run `fn`, rethrowing remote / library errors as AppErrors. */
export async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw toAppError(err)
  }
}
