/**
 * Shared HTTP plumbing for the remote API clients (got 14): base URL + bearer token + non-browser User-Agent,
 * retries on 429 / 5xx / network errors with the shared backoff policy, zod validation of JSON bodies, and
 * a per-service mapper that turns a failed response into a RemoteError.
 */
import got, { RequestError } from 'got'
import type { IncomingHttpHeaders } from 'node:http'
import type { z } from 'zod'
import pkg from '../../package.json'
import { agentsFor, ProxyError, type ProxyAgents, type ProxyResolver } from '../platform/proxy'
import { RemoteError } from './errors'
import { backoffDelay, retryPolicy, type RetryPolicy } from './retry'

/** Civitai treats any User-Agent containing "Mozilla"/"Chrome"/... as a browser (HTML errors); never send one. */
export const USER_AGENT = `Atelier/${pkg.version}`

export interface RemoteClientConfig {
  /** Service origin, e.g. https://civitai.com or http://127.0.0.1:PORT for a fixture. */
  baseUrl: string
  /** API key / access token, sent as `Authorization: Bearer` to the base URL's origin only. */
  token?: string
  userAgent?: string
  retry?: Partial<RetryPolicy>
  /** Per-request timeout (ms); default 30 s. */
  timeoutMs?: number
  /** Proxy choice per URL; default: HTTPS_PROXY / HTTP_PROXY / NO_PROXY, then the system's (platform/proxy.ts). */
  proxy?: ProxyResolver
}

export interface HttpResult {
  status: number
  headers: IncomingHttpHeaders
  body: string
  url: string
}

export type ErrorMapper = (res: HttpResult) => RemoteError

export interface RequestInit {
  method?: 'GET' | 'POST' | 'HEAD'
  searchParams?: URLSearchParams
  json?: unknown
  signal?: AbortSignal
  /** false: a 3xx answer is returned as is (to read the hub's X-Linked-* headers before the CDN hop). */
  followRedirect?: boolean
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()]
  return Array.isArray(v) ? v[0] : v
}

/** The `{error, message}` members of a JSON error body, tolerant of anything else. */
export function errorBodyText(body: string): {
  error?: string
  message?: string
  extra: Record<string, unknown>
} {
  try {
    const parsed: unknown = JSON.parse(body)
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const o = parsed as Record<string, unknown>
      const error = typeof o.error === 'string' ? o.error : undefined
      const message = typeof o.message === 'string' ? o.message : undefined
      return { error, message, extra: o }
    }
  } catch {
    // not JSON
  }
  const text = body.trim()
  return { error: text && text.length < 300 && !text.startsWith('<') ? text : undefined, extra: {} }
}

/** The ProxyError behind a failure (got wraps what the agent reports), if any. */
function proxyCause(err: unknown): ProxyError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof ProxyError) return e
  }
  return undefined
}

export function networkError(service: string, url: string, err: unknown): RemoteError {
  const proxy = proxyCause(err)
  if (proxy) {
    // 407 / a bad proxy setting: another try cannot help; an unreachable or failing proxy may come back.
    const code = proxy.retryable ? 'network' : 'forbidden'
    return new RemoteError(code, `Could not reach ${service}: ${proxy.message}`, { url, cause: err })
  }
  const code = err instanceof RequestError ? err.code : ((err as { code?: string } | null)?.code ?? '')
  const detail =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'host not found (are you offline?)'
        : code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT'
          ? 'the request timed out'
          : code === 'ECONNRESET' || code === 'EPIPE'
            ? 'the connection was reset'
            : err instanceof Error
              ? err.message
              : String(err)
  return new RemoteError('network', `Could not reach ${service} (${detail}).`, { url, cause: err })
}

export class JsonHttp {
  readonly baseUrl: string
  readonly origin: string
  private readonly policy: RetryPolicy
  private readonly headers: Record<string, string>
  private readonly timeoutMs: number
  private readonly agents: ProxyAgents

  constructor(
    private readonly service: string,
    config: RemoteClientConfig,
    private readonly mapError: ErrorMapper,
  ) {
    this.baseUrl = config.baseUrl.replace(/\/+$/, '')
    this.origin = new URL(this.baseUrl).origin
    this.policy = retryPolicy(config.retry)
    this.headers = { 'user-agent': config.userAgent ?? USER_AGENT, accept: 'application/json' }
    if (config.token) this.headers.authorization = `Bearer ${config.token}`
    this.timeoutMs = config.timeoutMs ?? 30_000
    this.agents = agentsFor(config.proxy)
  }

  /** A path ("/api/...") is appended to the base URL (which may itself carry a path prefix). */
  resolve(pathOrUrl: string): URL {
    return new URL(pathOrUrl.startsWith('/') ? this.baseUrl + pathOrUrl : pathOrUrl)
  }

  /** One request with retries for transient failures. Non-2xx answers come back mapped to RemoteError. */
  async request(pathOrUrl: string, init: RequestInit = {}): Promise<HttpResult> {
    const url = this.resolve(pathOrUrl)
    if (init.searchParams) url.search = init.searchParams.toString()
    // Credentials only ever go to the configured origin (a `next` URL from a server could point elsewhere).
    const headers = { ...this.headers }
    if (url.origin !== this.origin) delete headers.authorization
    for (let attempt = 0; ; attempt++) {
      let result: HttpResult | undefined
      let error: RemoteError
      try {
        const res = await got(url, {
          method: init.method ?? 'GET',
          headers,
          ...(init.json === undefined ? {} : { json: init.json }),
          throwHttpErrors: false,
          retry: { limit: 0 },
          timeout: { request: this.timeoutMs },
          signal: init.signal,
          followRedirect: init.followRedirect ?? true,
          agent: this.agents,
        })
        result = { status: res.statusCode, headers: res.headers, body: res.body, url: res.url }
        if (res.statusCode >= 200 && res.statusCode < 300) return result
        if (init.followRedirect === false && res.statusCode >= 300 && res.statusCode < 400) return result
        error = this.mapError(result)
      } catch (err) {
        if (init.signal?.aborted)
          throw new RemoteError('aborted', `${this.service} request cancelled.`, { url: url.href })
        error = networkError(this.service, url.href, err)
      }
      if (!error.retryable || attempt >= this.policy.retries) throw error
      if (error.retryAfterMs !== undefined && error.retryAfterMs > this.policy.maxRetryAfterMs) throw error
      await this.policy.sleep(backoffDelay(attempt + 1, this.policy, error.retryAfterMs), init.signal)
    }
  }

  async json<S extends z.ZodType>(
    pathOrUrl: string,
    schema: S,
    init: RequestInit = {},
  ): Promise<{ data: z.infer<S>; res: HttpResult }> {
    const res = await this.request(pathOrUrl, init)
    const ctype = headerValue(res.headers, 'content-type') ?? ''
    if (ctype.includes('text/html')) {
      throw new RemoteError(
        'bad-response',
        `${this.service} returned a web page instead of data (${res.url}).`,
        {
          status: res.status,
          url: res.url,
        },
      )
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(res.body)
    } catch {
      throw new RemoteError('bad-response', `${this.service} returned invalid JSON from ${res.url}.`, {
        status: res.status,
        url: res.url,
      })
    }
    const result = schema.safeParse(parsed)
    if (!result.success) {
      const issue = result.error.issues[0]
      const where = issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'unknown problem'
      throw new RemoteError(
        'bad-response',
        `${this.service} returned an unexpected response from ${res.url} (${where}).`,
        {
          status: res.status,
          url: res.url,
        },
      )
    }
    return { data: result.data, res }
  }
}

/** `Link: <https://...&cursor=x>; rel="next"` → the absolute next URL, if any. */
export function parseLinkNext(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value.join(', ') : value
  if (!v) return undefined
  for (const m of v.matchAll(/<([^>]+)>\s*;\s*rel="?([^";,]+)"?/g)) {
    if (m[2] === 'next') return m[1]
  }
  return undefined
}
