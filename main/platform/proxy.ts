/**
 * Outgoing proxies, for every client main runs (downloads/http1.ts, the got API clients, preview images,
 * image-prompt fetches). Plain Node; the desktop app's Electron glue (main/app/proxy.ts) only installs a
 * resolver built from `session.resolveProxy`.
 *
 * Which proxy a request uses (`proxyFor(url)`):
 *   1. the environment, as curl and npm read it: `https_proxy` / `HTTPS_PROXY` for https URLs, `http_proxy` /
 *      `HTTP_PROXY` for http URLs (lower case first; https falls back to the http proxy like npm and undici,
 *      then `all_proxy` / `ALL_PROXY` like curl), minus the hosts of `no_proxy` / `NO_PROXY`;
 *   2. otherwise the installed system resolver (the desktop app: Electron's proxy settings / PAC);
 *   3. otherwise none.
 * NO_PROXY (curl's rules): comma- or space-separated entries; `*` bypasses every host; a name matches itself and
 * its subdomains (`example.com`, `.example.com` and `*.example.com` all match `a.example.com`); an IP address
 * or a CIDR range (`10.0.0.0/8`, `fd00::/8`) matches literal addresses of the URL; `host:port` only that port.
 * Loopback is not bypassed implicitly (curl does not either): list `localhost,127.0.0.1,::1` if needed.
 *
 * Going through one: http URLs are sent to the proxy in absolute form (`GET http://host/path`), https URLs
 * through a `CONNECT host:443` tunnel, then TLS to the target inside it (certificates checked against the
 * target's name). Proxies are `http://` or `https://` (TLS to the proxy); credentials in the proxy URL
 * (`http://user:pass@proxy:3128`, percent-encoded) are sent as `Proxy-Authorization: Basic` and never appear in
 * a message or a log: `describeProxy` prints scheme, host and port only.
 */
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import tls from 'node:tls'

/** The proxy for a target URL, or null for a direct connection. */
export type ProxyResolver = (target: URL) => URL | null | Promise<URL | null>

export type ProxyEnv = Record<string, string | undefined>

export type ProxyErrorKind = 'unreachable' | 'auth' | 'refused' | 'config'

/** A failure of the proxy itself (not of the target); the message names the proxy without credentials. */
export class ProxyError extends Error {
  readonly code: string
  constructor(
    readonly kind: ProxyErrorKind,
    message: string,
    code?: string,
  ) {
    super(message)
    this.name = 'ProxyError'
    this.code =
      code ?? (kind === 'auth' ? 'EPROXYAUTH' : kind === 'config' ? 'EPROXYCONFIG' : 'EPROXYREFUSED')
  }

  /** Worth another try: the proxy was down or failed; never for missing credentials or a bad setting. */
  get retryable(): boolean {
    return this.kind === 'unreachable' || this.kind === 'refused'
  }
}

/** `http://proxy.corp:3128` — scheme, host and port only (never the user name or password). */
export function describeProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`
}

/** Parse a proxy setting (`host:port`, `http://host:port`, `https://user:pass@host`); null when empty. */
export function parseProxyUrl(value: string | undefined): URL | null {
  const v = value?.trim()
  if (!v) return null
  let u: URL
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`)
  } catch {
    // the value may hold a password: never repeat it
    throw new ProxyError('config', 'The proxy setting is not a valid URL (expected http://host:port).')
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ProxyError(
      'config',
      `${u.protocol.slice(0, -1)} proxies are not supported (${u.protocol}//${u.host}); use an http:// or https:// proxy.`,
    )
  }
  if (!u.hostname) throw new ProxyError('config', 'The proxy setting has no host name.')
  return u
}

// --- NO_PROXY -------------------------------------------------------------------------------------------------

type Rule =
  | { kind: 'all' }
  | { kind: 'name'; name: string; port?: number }
  | { kind: 'cidr'; bytes: Uint8Array; bits: number; port?: number }

/** Bytes of an IPv4 or IPv6 literal (IPv4-mapped IPv6 as IPv4), or null. */
function ipBytes(ip: string): Uint8Array | null {
  const s = ip.replace(/^\[|\]$/g, '')
  if (net.isIPv4(s)) return Uint8Array.from(s.split('.').map(Number))
  let v6 = s.toLowerCase()
  const zone = v6.indexOf('%')
  if (zone >= 0) v6 = v6.slice(0, zone)
  if (!net.isIPv6(v6)) return null
  const groups = (p: string | undefined): string[] =>
    (p ? p.split(':') : []).flatMap((g) => {
      if (!g.includes('.')) return [g]
      const b = g.split('.').map(Number) // embedded dotted IPv4 (::ffff:1.2.3.4)
      return [
        (((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16),
        (((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16),
      ]
    })
  const [headText, tailText] = v6.split('::')
  const head = groups(headText)
  const tail = groups(tailText)
  const all = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail]
  const out = new Uint8Array(16)
  all.forEach((g, i) => {
    const n = parseInt(g, 16)
    out[2 * i] = n >> 8
    out[2 * i + 1] = n & 0xff
  })
  const mapped = out.subarray(0, 10).every((b) => b === 0) && out[10] === 0xff && out[11] === 0xff
  return mapped ? out.slice(12) : out
}

function parseRule(entry: string): Rule | null {
  let e = entry.trim().toLowerCase()
  if (!e) return null
  if (e === '*') return { kind: 'all' }
  let port: number | undefined
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(e)
  if (bracket) {
    e = bracket[1] as string
    if (bracket[2]) port = Number(bracket[2])
  } else if (!net.isIPv6(e.split('/')[0] ?? '')) {
    const m = /^(.*):(\d+)$/.exec(e)
    if (m) {
      e = m[1] as string
      port = Number(m[2])
    }
  }
  const [addr = '', bitsText] = e.split('/')
  const bytes = ipBytes(addr)
  if (bytes) {
    const max = bytes.length * 8
    const bits = bitsText === undefined ? max : Number(bitsText)
    if (!Number.isInteger(bits) || bits < 0 || bits > max) return null
    return { kind: 'cidr', bytes, bits, ...(port === undefined ? {} : { port }) }
  }
  const name = e.replace(/^\*?\.+/, '').replace(/\.$/, '')
  return name ? { kind: 'name', name, ...(port === undefined ? {} : { port }) } : null
}

function inCidr(addr: Uint8Array, rule: { bytes: Uint8Array; bits: number }): boolean {
  if (addr.length !== rule.bytes.length) return false
  for (let bit = 0; bit < rule.bits; bit += 8) {
    const left = Math.min(8, rule.bits - bit)
    const mask = (0xff << (8 - left)) & 0xff
    if (((addr[bit / 8] ?? 0) & mask) !== ((rule.bytes[bit / 8] ?? 0) & mask)) return false
  }
  return true
}

/** A NO_PROXY value as a predicate: true when `url` goes direct. */
export function noProxyMatcher(value: string | undefined): (url: URL) => boolean {
  const rules = (value ?? '')
    .split(/[\s,]+/)
    .map(parseRule)
    .filter((r): r is Rule => r !== null)
  return (url) => {
    const host = url.hostname
      .replace(/^\[|\]$/g, '')
      .toLowerCase()
      .replace(/\.$/, '')
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80)
    const addr = ipBytes(host)
    return rules.some((r) => {
      if (r.kind === 'all') return true
      if (r.port !== undefined && r.port !== port) return false
      if (r.kind === 'cidr') return addr !== null && inCidr(addr, r)
      return host === r.name || host.endsWith(`.${r.name}`)
    })
  }
}

// --- resolvers ------------------------------------------------------------------------------------------------

const pick = (env: ProxyEnv, name: string): string | undefined => {
  const lower = env[name.toLowerCase()]
  if (lower !== undefined && lower.trim() !== '') return lower
  const upper = env[name.toUpperCase()]
  return upper !== undefined && upper.trim() !== '' ? upper : undefined
}

/** The environment's proxy settings, or null when it names none (then the system resolver decides). */
export function envProxyResolver(env: ProxyEnv = process.env): ProxyResolver | null {
  const all = pick(env, 'all_proxy')
  const httpValue = pick(env, 'http_proxy') ?? all
  const httpsValue = pick(env, 'https_proxy') ?? pick(env, 'http_proxy') ?? all
  if (httpValue === undefined && httpsValue === undefined) return null
  const httpProxy = parseProxyUrl(httpValue)
  const httpsProxy = parseProxyUrl(httpsValue)
  const bypass = noProxyMatcher(pick(env, 'no_proxy'))
  return (target) => {
    const proxy = target.protocol === 'https:' ? httpsProxy : target.protocol === 'http:' ? httpProxy : null
    return proxy && !bypass(target) ? proxy : null
  }
}

/**
 * The first usable entry of a PAC-style answer (Electron's `session.resolveProxy`, Chromium's format):
 * `"PROXY host:port; HTTPS host:port; DIRECT"`. SOCKS entries are skipped (not supported); DIRECT or nothing
 * usable means a direct connection.
 */
export function parsePacResult(result: string): URL | null {
  for (const entry of result.split(';')) {
    const [kind = '', hostPort] = entry.trim().split(/\s+/)
    const k = kind.toUpperCase()
    if (k === 'DIRECT') return null
    if ((k === 'PROXY' || k === 'HTTP' || k === 'HTTPS') && hostPort) {
      try {
        return new URL(`${k === 'HTTPS' ? 'https' : 'http'}://${hostPort}`)
      } catch {
        continue
      }
    }
  }
  return null
}

/** A resolver asking the system (PAC, OS settings) per URL through `resolve` (Electron's session.resolveProxy). */
export function pacProxyResolver(resolve: (url: string) => Promise<string>): ProxyResolver {
  return async (target) => parsePacResult(await resolve(target.href))
}

let systemResolver: ProxyResolver | null = null

/** Install the system proxy resolver (the desktop app); null removes it. Environment variables still win. */
export function setSystemProxyResolver(resolver: ProxyResolver | null): void {
  systemResolver = resolver
}

let envCache: { key: string; resolver: ProxyResolver | null } | null = null
const ENV_NAMES = ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy'].flatMap((n) => [n, n.toUpperCase()])

/** Environment first (read on every call, parsed once per value), then the system resolver, else direct. */
export function defaultProxyResolver(): ProxyResolver {
  const key = ENV_NAMES.map((n) => process.env[n] ?? '').join('\n')
  if (envCache?.key !== key) envCache = { key, resolver: envProxyResolver(process.env) }
  return envCache.resolver ?? systemResolver ?? (() => null)
}

/** The proxy for `target` with `resolver` (default: defaultProxyResolver()). */
export async function proxyFor(target: URL, resolver?: ProxyResolver): Promise<URL | null> {
  return (await (resolver ?? defaultProxyResolver())(target)) ?? null
}

/** `Proxy-Authorization` value for a proxy URL with credentials. */
export function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined
  const user = decodeURIComponent(proxy.username)
  const pass = decodeURIComponent(proxy.password)
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
}

/** The error for a proxy's non-success answer (a 407 to CONNECT or to an absolute-form request, a 502, ...). */
export function proxyStatusError(proxy: URL, status: number, target: string): ProxyError {
  const who = `The proxy ${describeProxy(proxy)}`
  if (status === 407) {
    const hint = proxy.username
      ? 'the user name or password in the proxy setting was refused'
      : 'put them in the proxy URL: http://user:password@host:port'
    return new ProxyError('auth', `${who} requires authentication (HTTP 407): ${hint}.`)
  }
  return new ProxyError('refused', `${who} refused the connection to ${target} (HTTP ${status}).`)
}

function unreachable(proxy: URL, err: NodeJS.ErrnoException): ProxyError {
  const code = err.code ?? 'ECONNRESET'
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'host not found'
        : code === 'ETIMEDOUT'
          ? 'timed out'
          : code === 'ECONNRESET' || code === 'EPIPE'
            ? 'the connection was reset'
            : err.message
  return new ProxyError('unreachable', `Could not reach the proxy ${describeProxy(proxy)} (${why}).`, code)
}

/** Wrap a socket-level failure on the way to the proxy (before any answer) as a ProxyError. */
export function proxyConnectError(proxy: URL, err: unknown): Error {
  if (err instanceof ProxyError) return err
  const e = err as NodeJS.ErrnoException
  // Certificate problems of an https:// proxy keep their own code and message (they name no credentials).
  if (e.code && /CERT|SELF_SIGNED|ERR_TLS/.test(e.code)) return e
  return unreachable(proxy, e)
}

export interface ProxySocketOptions {
  /** Extra CA certificates trusted for an https:// proxy (tests). */
  ca?: string | Buffer
  /** `onread` for the proxy connection (http1.ts reads straight into its buffers). */
  onread?: net.OnReadOpts
}

/** A TCP (or, for an https:// proxy, TLS) connection to the proxy itself. */
export function connectToProxy(proxy: URL, o: ProxySocketOptions = {}): net.Socket {
  const host = proxy.hostname.replace(/^\[|\]$/g, '')
  const secure = proxy.protocol === 'https:'
  const port = Number(proxy.port) || (secure ? 443 : 80)
  if (!secure) return net.connect({ host, port, ...(o.onread ? { onread: o.onread } : {}) })
  const options: tls.ConnectionOptions & { onread?: net.OnReadOpts } = {
    host,
    port,
    servername: net.isIP(host) ? undefined : host,
    ...(o.ca === undefined ? {} : { ca: [...tls.rootCertificates, o.ca.toString()] }),
    ...(o.onread ? { onread: o.onread } : {}),
  }
  return tls.connect(options)
}

/** `host:port` of a URL as CONNECT wants it (IPv6 in brackets). */
export function authority(target: URL): string {
  const port = Number(target.port) || (target.protocol === 'https:' ? 443 : 80)
  return `${target.hostname}:${port}`
}

export interface TunnelOptions extends ProxySocketOptions {
  signal?: AbortSignal
  /** Limit for connecting and the proxy's answer; default 30 s. */
  timeoutMs?: number
}

const MAX_CONNECT_HEAD = 16 * 1024

/** A socket tunnelled to `target`'s host and port through `proxy` (CONNECT); the caller speaks TLS over it. */
export function openTunnel(proxy: URL, target: URL, o: TunnelOptions = {}): Promise<net.Socket> {
  const hostPort = authority(target)
  return new Promise((resolve, reject) => {
    const socket = connectToProxy(proxy, { ca: o.ca })
    let head = Buffer.alloc(0)
    let done = false
    const finish = (err: Error | null): void => {
      if (done) return
      done = true
      socket.off('readable', onReadable)
      socket.off('error', onError)
      socket.off('end', onEnd)
      o.signal?.removeEventListener('abort', onAbort)
      socket.setTimeout(0)
      if (err) {
        socket.destroy()
        reject(err)
      } else resolve(socket)
    }
    const onError = (e: Error): void => finish(proxyConnectError(proxy, e))
    const onEnd = (): void =>
      finish(
        new ProxyError(
          'refused',
          `The proxy ${describeProxy(proxy)} closed the connection to ${hostPort}.`,
          'ECONNRESET',
        ),
      )
    const onAbort = (): void => {
      const reason: unknown = o.signal?.reason
      finish(reason instanceof Error ? reason : new Error('aborted'))
    }
    const onReadable = (): void => {
      for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null;) {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) {
          if (head.length > MAX_CONNECT_HEAD) {
            finish(new ProxyError('refused', `The proxy ${describeProxy(proxy)} sent an oversized answer.`))
          }
          continue
        }
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1', 0, Math.min(end, 200)))
        if (!status) {
          finish(new ProxyError('refused', `The proxy ${describeProxy(proxy)} did not answer in HTTP.`))
          return
        }
        const code = Number(status[1])
        if (code < 200 || code >= 300) {
          finish(proxyStatusError(proxy, code, hostPort))
          return
        }
        const rest = head.subarray(end + 4)
        if (rest.length > 0) socket.unshift(rest)
        finish(null)
        return
      }
    }
    socket.on('readable', onReadable)
    socket.on('error', onError)
    socket.on('end', onEnd)
    socket.setTimeout(o.timeoutMs ?? 30_000, () =>
      finish(unreachable(proxy, Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }))),
    )
    o.signal?.addEventListener('abort', onAbort, { once: true })
    if (o.signal?.aborted) {
      onAbort()
      return
    }
    const auth = proxyAuthorization(proxy)
    socket.write(
      `CONNECT ${hostPort} HTTP/1.1\r\nHost: ${hostPort}\r\n` +
        (auth ? `Proxy-Authorization: ${auth}\r\n` : '') +
        '\r\n',
      'latin1',
    )
  })
}

// --- node:http agents (got, node:http / node:https requests) -------------------------------------------------

type Callback = (err: Error | null, socket?: net.Socket) => void
type ConnectOptions = (net.NetConnectOpts & tls.ConnectionOptions) & { host?: string; port?: number }

/**
 * `createConnection(options, callback)` for node:http requests: a direct connection (the options as given,
 * their `lookup` included) when `resolver` picks none, else a CONNECT tunnel through the proxy (TLS to the
 * target inside it when `secure`). http URLs go through CONNECT too here (the API clients' targets are https;
 * http1.ts sends plain http in absolute form).
 */
export function proxiedConnector(
  secure: boolean,
  resolver: ProxyResolver | undefined,
  direct: (options: ConnectOptions) => net.Socket,
): (options: ConnectOptions, cb: Callback) => undefined {
  return (options, cb) => {
    const host = (options.host ?? 'localhost').replace(/^\[|\]$/g, '')
    const port = options.port ?? (secure ? 443 : 80)
    const target = new URL(`${secure ? 'https' : 'http'}://${net.isIPv6(host) ? `[${host}]` : host}:${port}/`)
    let called = false
    const once: Callback = (err, socket) => {
      if (called) return
      called = true
      cb(err, socket)
    }
    proxyFor(target, resolver)
      .then((proxy) => {
        if (!proxy) return once(null, direct(options))
        return openTunnel(proxy, target, {
          ...(options.timeout ? { timeoutMs: options.timeout } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        }).then((tunnel) => {
          if (!secure) return once(null, tunnel)
          const servername = options.servername ?? (net.isIP(host) ? undefined : host)
          const { lookup: _lookup, path: _path, ...rest } = options as ConnectOptions & { path?: string }
          return once(null, tls.connect({ ...rest, host, socket: tunnel, servername }))
        })
      })
      .catch((err: unknown) => once(err instanceof Error ? err : new Error(String(err))))
    return undefined
  }
}

/** An http.Agent and an https.Agent that honour `resolver` per connection (default: defaultProxyResolver()). */
export function proxyAgents(
  resolver?: ProxyResolver,
  options: http.AgentOptions = { keepAlive: true },
): { http: http.Agent; https: https.Agent } {
  class HttpAgent extends http.Agent {
    override createConnection = proxiedConnector(false, resolver, (o) => net.createConnection(o)) as never
  }
  class HttpsAgent extends https.Agent {
    // Direct: https.Agent's own connect (it reuses TLS sessions per host).
    override createConnection = proxiedConnector(
      true,
      resolver,
      (o) => https.Agent.prototype.createConnection.call(this, o as never) as net.Socket,
    ) as never
  }
  return { http: new HttpAgent(options), https: new HttpsAgent(options) }
}

export type ProxyAgents = ReturnType<typeof proxyAgents>

let sharedAgents: ProxyAgents | null = null
const agentsByResolver = new WeakMap<ProxyResolver, ProxyAgents>()

/**
 * Agents for node:http clients (got's `agent` option). Without a resolver: one shared keep-alive pair that asks
 * defaultProxyResolver() per connection (so a changed environment or system setting applies to new
 * connections). With one (tests, a client given its own): a pair per resolver, without keep-alive.
 */
export function agentsFor(resolver?: ProxyResolver): ProxyAgents {
  if (!resolver) return (sharedAgents ??= proxyAgents())
  let agents = agentsByResolver.get(resolver)
  if (!agents) {
    agents = proxyAgents(resolver, { keepAlive: false })
    agentsByResolver.set(resolver, agents)
  }
  return agents
}
