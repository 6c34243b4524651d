import crypto from 'node:crypto'
import type http from 'node:http'

export const TOKEN_COOKIE = 'atelier_token'

export function newToken(): string {
  return crypto.randomBytes(24).toString('base64url')
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && crypto.timingSafeEqual(x, y)
}

/** The token from `?token=`, an `Authorization: Bearer` header, or the session cookie the page got. */
export function presentedToken(req: http.IncomingMessage, url: URL): string | undefined {
  const q = url.searchParams.get('token')
  if (q) return q
  const auth = req.headers.authorization
  if (auth?.startsWith('Bearer ')) return auth.slice(7)
  const cookie = req.headers.cookie
  if (cookie) {
    for (const part of cookie.split(';')) {
      const [k, ...v] = part.trim().split('=')
      if (k === TOKEN_COOKIE) return decodeURIComponent(v.join('='))
    }
  }
  return undefined
}

export function tokenMatches(req: http.IncomingMessage, url: URL, token: string): boolean {
  const given = presentedToken(req, url)
  return given !== undefined && safeEqual(given, token)
}

/** Host names the server answers to: against DNS rebinding, any other Host header is refused. */
export function allowedHosts(host: string, port: number): Set<string> {
  const names = new Set([host, '127.0.0.1', 'localhost', '[::1]'])
  if (host === '0.0.0.0' || host === '::') names.delete(host)
  return new Set([...names].map((h) => `${h}:${port}`))
}

export function hostAllowed(req: http.IncomingMessage, hosts: Set<string>): boolean {
  const h = req.headers.host?.toLowerCase()
  return h !== undefined && hosts.has(h)
}

/** A WebSocket must come from a page this server served (same origin); browsers always send Origin. */
export function originAllowed(req: http.IncomingMessage, hosts: Set<string>): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true // non-browser clients (CLI tools, tests) carry the token instead
  try {
    const u = new URL(origin)
    return u.protocol === 'http:' && hosts.has(u.host.toLowerCase())
  } catch {
    return false
  }
}

/** The request URL against the (already checked) Host, or undefined when it does not parse (`//[`). */
export function parseRequestUrl(req: http.IncomingMessage): URL | undefined {
  const raw = req.url ?? '/'
  if (!raw.startsWith('/') || raw.startsWith('//')) return undefined
  try {
    return new URL(raw, 'http://localhost')
  } catch {
    return undefined
  }
}

/**
 * Decides a WebSocket upgrade: Host and Origin first (DNS rebinding, cross-site pages), then the token,
 * then the path. Never throws on malformed input: anything unparsable is a 400.
 */
export function checkUpgrade(
  req: http.IncomingMessage,
  hosts: Set<string>,
  token: string,
): { status: 101 | 400 | 401 | 403 | 404; text: string } {
  if (!hostAllowed(req, hosts) || !originAllowed(req, hosts)) return { status: 403, text: 'Forbidden' }
  const url = parseRequestUrl(req)
  if (!url) return { status: 400, text: 'Bad Request' }
  if (!tokenMatches(req, url, token)) return { status: 401, text: 'Unauthorized' }
  if (url.pathname !== '/ws') return { status: 404, text: 'Not Found' }
  return { status: 101, text: 'Switching Protocols' }
}

/** The one CSP the server sends (a single connect-src: 'self' plus the page's own WebSocket origin). */
export function contentSecurityPolicy(host?: string): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' blob: data:",
    host ? `connect-src 'self' ws://${host}` : "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'none'",
  ].join('; ')
}
