/** Hugging Face HTTP failures → RemoteError (remote-apis.md B.0 table: X-Error-Code / X-Error-Message). */
import { RemoteError } from '../errors'
import { errorBodyText, headerValue, type HttpResult } from '../http'
import { parseRateLimitReset, parseRetryAfter } from '../retry'

/** "owner/name" from an API, tree, resolve or resolve-cache URL. */
export function repoFromUrl(url: string): string | undefined {
  let p: string
  try {
    p = new URL(url).pathname
  } catch {
    return undefined
  }
  const m =
    /^\/api\/resolve-cache\/models\/([^/]+)\/([^/]+)\//.exec(p) ??
    /^\/api\/models\/([^/]+)\/([^/]+)/.exec(p) ??
    /^\/([^/]+)\/([^/]+)\/(?:resolve|raw)\//.exec(p)
  return m ? `${decodeURIComponent(m[1] ?? '')}/${decodeURIComponent(m[2] ?? '')}` : undefined
}

export function gatedMessage(repo: string, siteUrl: string, status: number): string {
  const page = `${siteUrl.replace(/^https?:\/\//, '')}/${repo}`
  return status === 401
    ? `${repo} is a gated model: request access on ${page}, then add a Hugging Face access token in Settings.`
    : `Your Hugging Face token has no access to ${repo} yet: request access on ${page} (approval can take a while).`
}

export function hfErrorMapper(siteUrl: string): (res: HttpResult) => RemoteError {
  return (res) => {
    const code = headerValue(res.headers, 'x-error-code')
    const headerMsg = headerValue(res.headers, 'x-error-message')
    const { error, message } = errorBodyText(res.body)
    const detail = headerMsg ?? error ?? message
    const repo = repoFromUrl(res.url) ?? 'this repository'
    const init = { status: res.status, url: res.url }
    if (code === 'GatedRepo') return new RemoteError('gated', gatedMessage(repo, siteUrl, res.status), init)
    if (res.status === 401) {
      if (/invalid credentials/i.test(detail ?? '')) {
        return new RemoteError(
          'unauthorized',
          'Hugging Face rejected your access token; check it in Settings.',
          init,
        )
      }
      return new RemoteError(
        'not-found',
        `Hugging Face repository ${repo} was not found, or it is private (a token with access is needed).`,
        init,
      )
    }
    if (res.status === 403) {
      return new RemoteError(
        'forbidden',
        `Hugging Face refused access to ${repo}${detail ? `: ${detail}` : ''}.`,
        init,
      )
    }
    if (res.status === 404) {
      if (code === 'RevisionNotFound')
        return new RemoteError('not-found', `${repo}: revision not found.`, init)
      if (code === 'EntryNotFound')
        return new RemoteError('not-found', `${repo}: file or folder not found.`, init)
      return new RemoteError('not-found', `Hugging Face repository ${repo} was not found.`, init)
    }
    if (res.status === 429) {
      const retryAfterMs =
        parseRateLimitReset(headerValue(res.headers, 'ratelimit')) ??
        parseRetryAfter(headerValue(res.headers, 'retry-after'))
      return new RemoteError(
        'rate-limited',
        'Hugging Face is rate-limiting requests; try again in a few minutes.',
        {
          ...init,
          retryAfterMs,
        },
      )
    }
    if (res.status >= 500) {
      return new RemoteError(
        'server-error',
        `Hugging Face is having trouble (HTTP ${res.status}); try again later.`,
        {
          ...init,
          retryAfterMs: parseRetryAfter(headerValue(res.headers, 'retry-after')),
        },
      )
    }
    return new RemoteError(
      'bad-request',
      `Hugging Face answered HTTP ${res.status}${detail ? `: ${detail}` : ''}.`,
      init,
    )
  }
}
