/**
 * Fetching a URL that a user or a prompt handed us (image prompts), without letting it reach this machine or
 * its network (SSRF): the host name is resolved and every address it resolves to is checked; the connection
 * is pinned to the checked address (no second lookup an attacker's DNS could answer differently); every
 * redirect is followed by hand and checked again; the body is capped while it streams.
 *
 * Through a proxy (HTTPS_PROXY / HTTP_PROXY / the system's, see platform/proxy.ts) the proxy resolves and
 * connects, so nothing can be pinned. What is checked then: a literal address in the URL (every spelling) must
 * pass `allowAddress`; `localhost` and `*.localhost` are refused; a name that resolves here must resolve to
 * allowed addresses only (a name this machine cannot resolve is left to the proxy, which is where a corporate
 * network decides what its users may reach). NO_PROXY hosts are fetched directly, with every check above.
 */
import dns from 'node:dns'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { agentsFor, proxyFor, type ProxyResolver } from '../platform/proxy'
import { USER_AGENT } from './http'

export class PublicFetchError extends Error {
  constructor(
    message: string,
    readonly kind: 'refused' | 'http' | 'too-large' | 'type' | 'network' = 'network',
  ) {
    super(message)
    this.name = 'PublicFetchError'
  }
}

/** IPv4 address to a 32-bit number, or undefined. */
function v4(ip: string): number | undefined {
  if (!net.isIPv4(ip)) return undefined
  return ip.split('.').reduce((a, p) => a * 256 + Number(p), 0)
}

/** IPv6 address (any spelling, with or without an embedded dotted IPv4 part) to 8 groups, or undefined. */
function v6groups(ip: string): number[] | undefined {
  let s = ip.replace(/^\[|\]$/g, '').toLowerCase()
  const zone = s.indexOf('%')
  if (zone >= 0) s = s.slice(0, zone)
  if (!net.isIPv6(s)) return undefined
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (dotted) {
    const n = v4(dotted[1] as string)
    if (n === undefined) return undefined
    s = `${s.slice(0, -(dotted[1] as string).length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`
  }
  const [head = '', tail] = s.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const fill = tail === undefined ? 0 : 8 - h.length - t.length
  const groups = [...h, ...Array<string>(fill).fill('0'), ...t].map((g) => parseInt(g, 16))
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined
}

const V4_BLOCKED: [number, number][] = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local (cloud metadata)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24],
  ['192.88.99.0', 24], // 6to4 relay
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
].map(([a, bits]) => [v4(a as string) as number, bits as number])

function publicV4(n: number): boolean {
  return !V4_BLOCKED.some(
    ([base, bits]) => Math.floor(n / 2 ** (32 - bits)) === Math.floor(base / 2 ** (32 - bits)),
  )
}

/**
 * True for an address on the public internet. IPv6 is allowed only in global unicast (2000::/3) outside
 * Teredo and documentation ranges; IPv4 embedded in IPv6 (mapped ::ffff:0:0/96 in every spelling,
 * compatible ::/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16) is judged as that IPv4 address.
 */
export function isPublicAddress(ip: string): boolean {
  const a = v4(ip)
  if (a !== undefined) return publicV4(a)
  const g = v6groups(ip)
  if (!g) return false
  const embedded = (hi: number, lo: number): boolean => publicV4(hi * 65536 + lo)
  const zeros = (from: number, to: number): boolean => g.slice(from, to).every((x) => x === 0)
  if (zeros(0, 5) && g[5] === 0xffff) return embedded(g[6] as number, g[7] as number) // ::ffff:a.b.c.d
  if (zeros(0, 6)) return false // ::, ::1, IPv4-compatible (deprecated)
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return false // SIIT ::ffff:0:a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b) {
    if (zeros(2, 6)) return embedded(g[6] as number, g[7] as number) // NAT64 well-known prefix
    return false // 64:ff9b:1::/48 local-use NAT64 and the rest
  }
  if (g[0] === 0x2002) return embedded(g[1] as number, g[2] as number) // 6to4
  const first = g[0] as number
  if (first >>> 13 !== 0b001) return false // not global unicast: ULA fc00::/7, link-local fe80::/10, multicast ff00::/8, ...
  if (first === 0x2001 && (g[1] === 0 || g[1] === 0x0db8)) return false // Teredo, documentation
  if (first === 0x2001 && (g[1] as number) < 0x200) return false // IETF protocol assignments 2001::/23
  return true
}

export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>

const systemResolver: Resolver = (host) => dns.promises.lookup(host, { all: true, verbatim: true })

export interface PublicFetchOptions {
  /** Most body bytes; the download stops as soon as more arrive. */
  maxBytes: number
  /** Content-Type prefix the answer must have, e.g. 'image/'. */
  accept?: string
  acceptHeader?: string
  maxRedirects?: number
  timeoutMs?: number
  signal?: AbortSignal
  /** Name resolution (tests inject one; default: the system resolver, all addresses). */
  resolve?: Resolver
  /** Which addresses may be contacted (tests widen it to one loopback alias); default isPublicAddress. */
  allowAddress?: (ip: string) => boolean
  /** Proxy choice per URL; default: the environment, then the system's (platform/proxy.ts). */
  proxy?: ProxyResolver
}

/** The one address a request to `u` will use, after checking every address its host resolves to. */
async function pickAddress(u: URL, o: PublicFetchOptions): Promise<{ address: string; family: number }> {
  const allow = o.allowAddress ?? isPublicAddress
  const host = u.hostname.replace(/^\[|\]$/g, '')
  const literal = net.isIP(host)
  const addrs = literal ? [{ address: host, family: literal }] : await (o.resolve ?? systemResolver)(host)
  if (addrs.length === 0) throw new PublicFetchError(`${u.host} does not resolve`, 'network')
  const bad = addrs.find((a) => !allow(a.address))
  if (bad)
    throw new PublicFetchError(
      `${u.host} is a local or private network address (${bad.address}); it is not fetched`,
      'refused',
    )
  return addrs[0] as { address: string; family: number }
}

/** The checks left when a proxy connects for us (see the module comment). */
async function checkProxied(u: URL, o: PublicFetchOptions): Promise<void> {
  const allow = o.allowAddress ?? isPublicAddress
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  const refused = (why: string): PublicFetchError =>
    new PublicFetchError(
      `${u.host} is a local or private network address (${why}); it is not fetched`,
      'refused',
    )
  if (net.isIP(host)) {
    if (!allow(host)) throw refused(host)
    return
  }
  if (host === 'localhost' || host.endsWith('.localhost')) throw refused('localhost')
  let addrs: { address: string }[] = []
  try {
    addrs = await (o.resolve ?? systemResolver)(host)
  } catch {
    return // not resolvable here: the proxy resolves it
  }
  const bad = addrs.find((a) => !allow(a.address))
  if (bad) throw refused(bad.address)
}

function checkUrl(raw: string): URL {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new PublicFetchError(`"${raw}" is not a URL`, 'refused')
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new PublicFetchError(`${u.protocol} URLs are not fetched`, 'refused')
  if (u.username || u.password) throw new PublicFetchError('URLs with credentials are not fetched', 'refused')
  return u
}

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  res: http.IncomingMessage
}

function request(
  u: URL,
  route: { pinned: { address: string; family: number } } | { proxy: URL },
  o: PublicFetchOptions,
): Promise<Answer> {
  const secure = u.protocol === 'https:'
  const mod = secure ? https : http
  const proxy = 'proxy' in route ? route.proxy : null
  // Pinned: the socket goes to the address that was checked, whatever DNS says now.
  const pinned = (p: { address: string; family: number }): http.RequestOptions['lookup'] =>
    ((_host, opts, cb) => {
      if ((opts as { all?: boolean }).all)
        (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [p])
      else cb(null, p.address, p.family)
    }) as http.RequestOptions['lookup']
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: 'GET',
        headers: { 'user-agent': USER_AGENT, accept: o.acceptHeader ?? '*/*' },
        // Through the proxy: a one-off agent that tunnels to it; otherwise a fresh direct agent.
        agent: proxy ? agentsFor(() => proxy)[secure ? 'https' : 'http'] : false,
        timeout: o.timeoutMs ?? 30_000,
        signal: o.signal,
        ...('pinned' in route ? { lookup: pinned(route.pinned) } : {}),
      },
      (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, res }),
    )
    req.on('timeout', () => req.destroy(new PublicFetchError(`${u.host} timed out`, 'network')))
    req.on('error', (e) =>
      reject(e instanceof PublicFetchError ? e : new PublicFetchError(e.message, 'network')),
    )
    req.end()
  })
}

/** GET a public http(s) URL into memory, at most `maxBytes`; see the module comment for the checks. */
export async function fetchPublic(
  raw: string,
  o: PublicFetchOptions,
): Promise<{ bytes: Uint8Array; contentType: string; url: string }> {
  let u = checkUrl(raw)
  const maxRedirects = o.maxRedirects ?? 3
  for (let hop = 0; ; hop++) {
    const proxy = await proxyFor(u, o.proxy)
    let route: { pinned: { address: string; family: number } } | { proxy: URL }
    if (proxy) {
      await checkProxied(u, o)
      route = { proxy }
    } else route = { pinned: await pickAddress(u, o) }
    const { status, headers, res } = await request(u, route, o)
    if (status >= 300 && status < 400 && headers.location) {
      res.resume()
      if (hop >= maxRedirects) throw new PublicFetchError(`more than ${maxRedirects} redirects`, 'http')
      u = checkUrl(new URL(headers.location, u).href)
      continue
    }
    if (status !== 200) {
      res.resume()
      throw new PublicFetchError(`the server answered HTTP ${status}`, 'http')
    }
    const contentType = String(headers['content-type'] ?? '')
    if (o.accept && !contentType.startsWith(o.accept)) {
      res.destroy()
      throw new PublicFetchError(
        `not an ${o.accept.replace(/\/$/, '')} (${contentType || 'no type'})`,
        'type',
      )
    }
    const tooLarge = (): PublicFetchError =>
      new PublicFetchError(`larger than ${Math.round(o.maxBytes / 1024 / 1024)} MB`, 'too-large')
    const declared = Number(headers['content-length'])
    if (Number.isFinite(declared) && declared > o.maxBytes) {
      res.destroy()
      throw tooLarge()
    }
    const chunks: Buffer[] = []
    let size = 0
    await new Promise<void>((resolve, reject) => {
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size > o.maxBytes) {
          res.destroy()
          reject(tooLarge())
          return
        }
        chunks.push(c)
      })
      res.on('end', () => resolve())
      res.on('error', (e) => reject(new PublicFetchError(e.message, 'network')))
      res.on('close', () => {
        if (!res.complete) reject(new PublicFetchError('the connection closed early', 'network'))
      })
    })
    return { bytes: new Uint8Array(Buffer.concat(chunks, size)), contentType, url: u.href }
  }
}
