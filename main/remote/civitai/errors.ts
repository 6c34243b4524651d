/** Civitai HTTP failures → RemoteError with messages a user can act on (remote-apis.md A.0, A.8). */
import { RemoteError } from '../errors'
import { errorBodyText, headerValue, type HttpResult } from '../http'
import { parseRetryAfter } from '../retry'

export function civitaiError(res: HttpResult): RemoteError {
  const { error, message, extra } = errorBodyText(res.body)
  const init = { status: res.status, url: res.url }
  const retryAfterMs = parseRetryAfter(headerValue(res.headers, 'retry-after'))
  const detail = message ?? error ?? zodDetail(extra.error)
  switch (res.status) {
    case 400:
      return new RemoteError(
        'bad-request',
        `Civitai rejected the request: ${detail ?? 'invalid parameters'}.`,
        init,
      )
    case 401:
      if (/disabled downloads/i.test(detail ?? '')) {
        return new RemoteError(
          'unauthorized',
          'The creator of this model has disabled downloads on Civitai.',
          init,
        )
      }
      if (/logged in/i.test(detail ?? '')) {
        return new RemoteError(
          'unauthorized',
          'Civitai requires you to be logged in to download this model. Add your Civitai API key in Settings.',
          init,
        )
      }
      return new RemoteError(
        'unauthorized',
        'Civitai did not accept the request: add a valid Civitai API key in Settings.',
        init,
      )
    case 403: {
      if (error === 'Early Access') {
        const deadline = typeof extra.deadline === 'string' ? extra.deadline : null
        const until = deadline ? ` until ${deadline.slice(0, 10)}` : ''
        return new RemoteError(
          'early-access',
          `This version is in Civitai Early Access${until}. Buy access on civitai.com with the account of your API key, or wait until it ends.`,
          init,
        )
      }
      return new RemoteError('forbidden', `Civitai refused access: ${detail ?? 'forbidden'}.`, init)
    }
    case 404:
      return new RemoteError('not-found', `Civitai: ${detail ?? 'not found'}.`, init)
    case 410:
      return new RemoteError(
        'gone',
        'This model was archived on Civitai and can no longer be downloaded.',
        init,
      )
    case 429:
      return new RemoteError(
        'rate-limited',
        /pages/i.test(detail ?? '')
          ? 'Civitai: too many pages requested; use cursor paging.'
          : 'Civitai is rate-limiting requests; try again in a minute.',
        { ...init, retryAfterMs },
      )
    default:
      if (res.status >= 500) {
        return new RemoteError(
          'server-error',
          `Civitai is having trouble (HTTP ${res.status}${detail ? `: ${detail}` : ''}); try again later.`,
          { ...init, retryAfterMs },
        )
      }
      return new RemoteError(
        'bad-request',
        `Civitai answered HTTP ${res.status}${detail ? `: ${detail}` : ''}.`,
        init,
      )
  }
}

/** `/models` serializes the raw ZodError: v4 `{message: "<JSON issues>"}` or v3 `{issues: [...]}`. */
function zodDetail(err: unknown): string | undefined {
  if (!err || typeof err !== 'object') return undefined
  const o = err as { message?: unknown; issues?: unknown }
  let issues: unknown = o.issues
  if (!Array.isArray(issues) && typeof o.message === 'string') {
    try {
      issues = JSON.parse(o.message)
    } catch {
      return o.message.slice(0, 200)
    }
  }
  if (!Array.isArray(issues) || issues.length === 0) return undefined
  const first = issues[0] as { path?: unknown; message?: unknown }
  const where = Array.isArray(first.path) ? first.path.join('.') : ''
  return `${where ? `${where}: ` : ''}${typeof first.message === 'string' ? first.message : 'invalid value'}`
}
