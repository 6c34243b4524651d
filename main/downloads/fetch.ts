/**
 * One streamed GET for the download manager (http1.ts, no body buffering), following redirects by
 * hand so credentials never leave the origin they were meant for: the Authorization header goes to the
 * first URL's origin only and is dropped for good once a redirect lands anywhere else (Civitai → R2/B2,
 * HF hub → CDN). Range / If-Range and the other headers are kept across hops.
 */
import type { ProxyResolver } from '../platform/proxy'
import { civitaiError } from '../remote/civitai/errors'
import { RemoteError } from '../remote/errors'
import { errorBodyText, type HttpResult } from '../remote/http'
import { hfErrorMapper } from '../remote/huggingface/errors'
import { parseRetryAfter } from '../remote/retry'
import { httpGet, type HttpResponse } from './http1'
import type { DownloadSource } from './types'

export interface OpenOptions {
  url: string
  headers: Record<string, string>
  /** Full header value ("Bearer …"), sent to the origin of `url` only. */
  authorization?: string
  signal: AbortSignal
  maxRedirects?: number
  /** Socket inactivity limit (connect, headers and body). */
  idleTimeoutMs: number
  /** Extra trusted CA certificates for https (tests). */
  ca?: string | Buffer
  /** Proxy choice per URL, asked again on every redirect hop (default: the environment, then the system's). */
  proxy?: ProxyResolver
}

export interface Opened {
  res: HttpResponse
  /** URL that produced `res` (after redirects). */
  url: string
  /** Whether Authorization was sent on the final hop. */
  authorized: boolean
}

export async function openStream(opts: OpenOptions): Promise<Opened> {
  const first = new URL(opts.url)
  let url = first
  let sendAuth = opts.authorization !== undefined
  for (let hop = 0; hop <= (opts.maxRedirects ?? 10); hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RemoteError('bad-response', `Refusing to follow a redirect to ${url.protocol} (${url.href}).`)
    }
    // Once the chain leaves the credential's origin it never gets the credential back.
    if (url.origin !== first.origin) sendAuth = false
    const headers = { ...opts.headers }
    if (sendAuth && opts.authorization) headers.authorization = opts.authorization
    const res = await httpGet(url, {
      headers,
      signal: opts.signal,
      idleTimeoutMs: opts.idleTimeoutMs,
      ca: opts.ca,
      ...(opts.proxy ? { proxy: opts.proxy } : {}),
    })
    const status = res.status
    const location = res.headers.location
    if (status >= 300 && status < 400 && status !== 304 && location) {
      res.destroy()
      url = new URL(location, url)
      continue
    }
    return { res, url: url.href, authorized: sendAuth }
  }
  throw new RemoteError('bad-response', `Too many redirects downloading ${opts.url}.`)
}

function genericError(r: HttpResult): RemoteError {
  const host = new URL(r.url).host
  const { error, message } = errorBodyText(r.body)
  const detail = message ?? error
  const init = { status: r.status, url: r.url, retryAfterMs: parseRetryAfter(r.headers['retry-after']) }
  const suffix = detail ? `: ${detail}` : ''
  if (r.status === 401)
    return new RemoteError('unauthorized', `${host} requires authentication (HTTP 401)${suffix}.`, init)
  if (r.status === 403)
    return new RemoteError('forbidden', `${host} refused the download (HTTP 403)${suffix}.`, init)
  if (r.status === 404) return new RemoteError('not-found', `${host} has no such file (HTTP 404).`, init)
  if (r.status === 410) return new RemoteError('gone', `${host}: the file is gone (HTTP 410).`, init)
  if (r.status === 429)
    return new RemoteError('rate-limited', `${host} is rate-limiting downloads (HTTP 429).`, init)
  if (r.status >= 500)
    return new RemoteError('server-error', `${host} failed (HTTP ${r.status}); will retry.`, init)
  return new RemoteError('bad-request', `${host} answered HTTP ${r.status}${suffix}.`, init)
}

/**
 * Map a failed download response. Errors from the API host get the service's wording; errors from a storage
 * host (after the redirect) are generic but name the host.
 */
export function downloadHttpError(source: DownloadSource, apiOrigin: string, r: HttpResult): RemoteError {
  const fromApi = new URL(r.url).origin === apiOrigin
  if (fromApi && source === 'civitai') return civitaiError(r)
  if (source === 'huggingface' && (fromApi || r.headers['x-error-code'])) return hfErrorMapper(apiOrigin)(r)
  return genericError(r)
}
