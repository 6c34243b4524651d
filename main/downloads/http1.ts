/**
 * A minimal HTTP/1.1 GET client for the download manager's hot path (plain http, and https via tls.connect).
 *
 * Why not node:http / undici: their body path allocates a fresh Buffer for every socket read and runs it through
 * a parser and a JS stream: about 1–1.5 CPU-s per GiB on loopback (undici ~1.0, node:http ~1.4). Reading the
 * socket with `onread` straight into the caller's buffers costs ~0.2 CPU-s/GiB (like curl) and leaves the CPU to
 * SHA-256 and the file writes (numbers: bench/download.ts). Scope: one GET per connection (`Connection: close`),
 * status line and headers parsed here, bodies delimited by Content-Length, `Transfer-Encoding: chunked` (decoded
 * in place) or the connection's end; 1xx answers are skipped. Redirects, Range and credentials are the caller's
 * business (fetch.ts).
 *
 * Proxies (main/platform/proxy.ts decides which, per URL): an http URL goes to the proxy in absolute form
 * (`GET http://host/path`) and keeps the `onread` fast path; an https URL goes through a CONNECT tunnel with
 * TLS inside it. Node ignores `onread` for TLS over an existing socket, so that case reads 'data' chunks and
 * copies them into the sink (one copy more; bench/download.ts measures it). A proxy that cannot be reached,
 * refuses, or asks for credentials (407) fails with a ProxyError naming the proxy without its credentials.
 *
 *   const res = await httpGet(new URL(url), { headers, signal, idleTimeoutMs })
 *   res.status, res.headers                     // lower-case names, like node:http
 *   await res.pipe(sink)                        // sink.space() → where to read, sink.commit(n) → n body bytes
 *   res.resume()                                // after commit() returned false (pause)
 *   await res.text(64 * 1024) / res.destroy()   // error bodies / discard
 */
import type { IncomingHttpHeaders } from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import {
  connectToProxy,
  openTunnel,
  proxyAuthorization,
  proxyConnectError,
  proxyFor,
  proxyStatusError,
  type ProxyResolver,
} from '../platform/proxy'

/** Receives the body in buffers it owns: bytes are read straight into `space()`, no intermediate copy. */
export interface BodySink {
  /** Where the next bytes go; never empty (it must have room even after asking for a pause). */
  space(): Buffer
  /** `n` body bytes were placed at the start of the last `space()`; false pauses reading until resume(). */
  commit(n: number): boolean
}

export interface GetOptions {
  headers: Record<string, string>
  signal?: AbortSignal
  /** Socket inactivity limit (connect, headers and body). */
  idleTimeoutMs: number
  /** Extra trusted CA certificates for https targets and https:// proxies (tests); the default store otherwise. */
  ca?: string | Buffer
  /** Which proxy to use for the URL; default: the environment, then the system's (platform/proxy.ts). */
  proxy?: ProxyResolver
  /** Limit of the status line and headers together; default 64 KiB. */
  maxHeaderBytes?: number
}

function httpError(message: string, code: string): NodeJS.ErrnoException {
  const err = new Error(message) as NodeJS.ErrnoException
  err.code = code
  return err
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const SPILL_BYTES = 64 * 1024
/** Reads nobody needs (after the end of the body, or past the header limit) land here. */
const SCRATCH = Buffer.allocUnsafe(SPILL_BYTES)

type ChunkState = 'size' | 'ext' | 'data' | 'data-end' | 'trailer' | 'trailer-cr' | 'trailer-line'

/** Decodes a body in place: framing bytes are dropped, body bytes moved to the front of the region. */
export class BodyDecoder {
  done = false
  private state: ChunkState = 'size'
  private size = 0
  private digits = 0
  private remaining: number

  constructor(
    readonly mode: 'length' | 'chunked' | 'close',
    length = 0,
  ) {
    this.remaining = length
    if (mode === 'length' && length === 0) this.done = true
  }

  /** Body bytes of buf[start, start + len) end up at buf[start, start + result); the rest was framing. */
  decode(buf: Buffer, start: number, len: number): number {
    if (this.done) return 0
    if (this.mode === 'close') return len
    if (this.mode === 'length') {
      const n = Math.min(len, this.remaining)
      this.remaining -= n
      if (this.remaining === 0) this.done = true
      return n
    }
    return this.chunked(buf, start, start + len)
  }

  private chunked(buf: Buffer, start: number, end: number): number {
    let out = start
    let i = start
    while (i < end && !this.done) {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, end - i)
        if (out !== i) buf.copyWithin(out, i, i + n)
        out += n
        i += n
        this.remaining -= n
        if (this.remaining === 0) this.state = 'data-end'
        continue
      }
      const c = buf[i++] ?? 0
      switch (this.state) {
        case 'size': {
          const v = hexValue(c)
          if (v >= 0) {
            if (++this.digits > 13)
              throw httpError('Malformed chunked body: chunk too large.', 'HPE_CHUNK_SIZE')
            this.size = this.size * 16 + v
          } else if (c === 0x3b || c === 0x20 || c === 0x09 || c === 0x0d) this.state = 'ext'
          else if (c === 0x0a) this.sizeLine()
          else throw httpError('Malformed chunked body: bad chunk size.', 'HPE_CHUNK_SIZE')
          break
        }
        case 'ext': // chunk extensions (ignored), then the line end
          if (c === 0x0a) this.sizeLine()
          break
        case 'data-end':
          if (c === 0x0a) this.state = 'size'
          else if (c !== 0x0d) throw httpError('Malformed chunked body: no CRLF after a chunk.', 'HPE_STRICT')
          break
        case 'trailer': // at the start of a trailer line; an empty line ends the body
          if (c === 0x0a) this.done = true
          else this.state = c === 0x0d ? 'trailer-cr' : 'trailer-line'
          break
        case 'trailer-cr':
          if (c === 0x0a) this.done = true
          else this.state = 'trailer-line'
          break
        case 'trailer-line':
          if (c === 0x0a) this.state = 'trailer'
          break
        default:
          break
      }
    }
    return out - start
  }

  private sizeLine(): void {
    if (this.digits === 0) throw httpError('Malformed chunked body: empty chunk size.', 'HPE_CHUNK_SIZE')
    this.remaining = this.size
    this.state = this.size === 0 ? 'trailer' : 'data'
    this.size = 0
    this.digits = 0
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  return -1
}

export interface ResponseHead {
  status: number
  statusMessage: string
  headers: IncomingHttpHeaders
  /** Bytes of the head, its terminating empty line included. */
  length: number
}

/** Parse a response head from buf[0, end); null while its end is not there yet. */
export function parseHead(buf: Buffer, end: number): ResponseHead | null {
  const view = buf.subarray(0, end)
  const crlf = view.indexOf('\r\n\r\n', 0, 'latin1')
  const lf = view.indexOf('\n\n', 0, 'latin1') // bare LF line ends: tolerated, like node:http
  if (crlf < 0 && lf < 0) return null
  const [stop, length] = crlf >= 0 && (lf < 0 || crlf < lf) ? [crlf, crlf + 4] : [lf, lf + 2]
  const lines = view.toString('latin1', 0, stop).split(/\r?\n/)
  const first = lines[0] ?? ''
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(first)
  if (!m) throw httpError(`Not an HTTP/1.x response: "${first.slice(0, 80)}".`, 'HPE_INVALID_CONSTANT')
  const headers: Record<string, string | string[]> = {}
  let last: string | null = null
  for (const line of lines.slice(1)) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && last !== null) {
      headers[last] = `${String(headers[last])} ${line.trim()}` // obsolete line folding
      continue
    }
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).toLowerCase()
    if (colon <= 0 || !TOKEN.test(name)) {
      throw httpError(`Malformed response header "${line.slice(0, 80)}".`, 'HPE_INVALID_HEADER_TOKEN')
    }
    const value = line.slice(colon + 1).trim()
    const prev = headers[name]
    if (name === 'set-cookie') headers[name] = [...((prev as string[] | undefined) ?? []), value]
    else headers[name] = prev === undefined ? value : `${String(prev)}, ${value}`
    last = name
  }
  return { status: Number(m[1]), statusMessage: m[2] ?? '', headers: headers as IncomingHttpHeaders, length }
}

/** How the body of a response to a GET is delimited (RFC 9112 §6.3). */
export function bodyDecoder(head: Pick<ResponseHead, 'status' | 'headers'>): BodyDecoder {
  const { status, headers } = head
  if (status === 204 || status === 304) return new BodyDecoder('length', 0)
  const te = headers['transfer-encoding']
  if (te !== undefined) {
    const codings = te.toLowerCase().split(',')
    return codings.at(-1)?.trim() === 'chunked' ? new BodyDecoder('chunked') : new BodyDecoder('close')
  }
  const cl = headers['content-length']
  if (cl !== undefined) {
    const values = [...new Set(cl.split(',').map((s) => s.trim()))]
    const first = values[0] ?? ''
    if (values.length !== 1 || !/^\d{1,15}$/.test(first)) {
      throw httpError(`Invalid Content-Length "${cl}".`, 'HPE_INVALID_CONTENT_LENGTH')
    }
    return new BodyDecoder('length', Number(first))
  }
  return new BodyDecoder('close')
}

export class HttpResponse {
  readonly status: number
  readonly statusMessage: string
  readonly headers: IncomingHttpHeaders

  constructor(
    head: ResponseHead,
    private readonly conn: Connection,
  ) {
    this.status = head.status
    this.statusMessage = head.statusMessage
    this.headers = head.headers
  }

  /** Read the body into `sink` to its end; rejects when the connection fails or closes before the end. */
  pipe(sink: BodySink): Promise<void> {
    return this.conn.pipe(sink)
  }

  /** Continue reading after `commit()` returned false. */
  resume(): void {
    this.conn.resume()
  }

  /** The body as text: at most `limit` bytes, and whatever arrived if the connection breaks. */
  async text(limit = 64 * 1024): Promise<string> {
    const chunks: Buffer[] = []
    let size = 0
    const scratch = Buffer.allocUnsafe(16 * 1024)
    try {
      await this.conn.pipe({
        space: () => scratch,
        commit: (n) => {
          if (size < limit) chunks.push(Buffer.from(scratch.subarray(0, Math.min(n, limit - size))))
          size += n
          if (size >= limit) this.conn.destroy()
          return true
        },
      })
    } catch {
      // a broken error body is still an error: keep what arrived
    }
    this.conn.destroy()
    return Buffer.concat(chunks).toString('utf8')
  }

  /** Close the connection without reading (the rest of) the body. */
  destroy(err?: Error): void {
    this.conn.destroy(err)
  }
}

type Phase = 'head' | 'wait' | 'body' | 'done'

interface Settle<T> {
  resolve: (v: T) => void
  reject: (e: Error) => void
}

class Connection {
  private socket: net.Socket | null = null
  private phase: Phase = 'head'
  private readonly head: Buffer
  private headFill = 0
  /** Bytes read after the head, before pipe(). */
  private pending: Buffer[] = []
  private decoder: BodyDecoder | null = null
  private sink: BodySink | null = null
  /** The buffer handed to the next socket read, and whether it is the sink's. */
  private target: Buffer
  private intoSink = false
  private eof = false
  private failure: Error | null = null
  private finished = false
  private onBody: Settle<void> | null = null
  /** An http URL sent to a proxy in absolute form: its 407 and connect failures are the proxy's. */
  private readonly absolute: boolean
  private proxyConnected = false

  constructor(
    url: URL,
    private readonly proxy: URL | null,
    private readonly opts: GetOptions,
    private readonly onHead: Settle<HttpResponse>,
  ) {
    this.head = Buffer.allocUnsafe(opts.maxHeaderBytes ?? 64 * 1024)
    this.target = this.head
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    const https = url.protocol === 'https:'
    const port = Number(url.port) || (https ? 443 : 80)
    this.absolute = proxy !== null && !https
    const onread: net.OnReadOpts = { buffer: () => this.space(), callback: (n) => this.received(n) }
    const tlsOptions = {
      servername: net.isIP(host) ? undefined : host,
      ALPNProtocols: ['http/1.1'],
      ca: opts.ca === undefined ? undefined : [...tls.rootCertificates, opts.ca.toString()],
    }
    opts.signal?.addEventListener('abort', this.onAbort, { once: true })
    if (opts.signal?.aborted) {
      this.onAbort()
      return
    }
    if (proxy && https) {
      // CONNECT, then TLS to the target inside the tunnel ('data' events: onread is ignored there).
      openTunnel(proxy, url, { ca: opts.ca, signal: opts.signal, timeoutMs: opts.idleTimeoutMs }).then(
        (tunnel) => {
          if (this.finished) {
            tunnel.destroy()
            return
          }
          const socket = tls.connect({ ...tlsOptions, host, socket: tunnel })
          socket.on('data', this.onData)
          this.attach(socket, requestHead(url, opts.headers))
        },
        (err: unknown) => this.fail(err as Error),
      )
    } else if (proxy) {
      // Plain http through the proxy: the request in absolute form, the fast path kept.
      const socket = connectToProxy(proxy, { ca: opts.ca, onread })
      socket.once('connect', () => (this.proxyConnected = true))
      this.attach(socket, requestHead(url, opts.headers, { authorization: proxyAuthorization(proxy) }))
    } else if (https) {
      // tls.connect takes `onread` too (documented; missing from @types/node).
      const options: tls.ConnectionOptions & { onread: net.OnReadOpts } = {
        host,
        port,
        ...tlsOptions,
        onread,
      }
      this.attach(tls.connect(options), requestHead(url, opts.headers))
    } else this.attach(net.connect({ host, port, onread }), requestHead(url, opts.headers))
  }

  private attach(socket: net.Socket, head: string): void {
    this.socket = socket
    const opts = this.opts
    socket.setTimeout(opts.idleTimeoutMs, () => {
      const secs = Math.round(opts.idleTimeoutMs / 1000)
      this.destroy(httpError(`no data for ${secs} s`, 'ETIMEDOUT'))
    })
    socket.on('end', () => this.ended())
    socket.on('error', (e) => this.fail(e))
    socket.on('close', () => this.fail(httpError('socket hang up', 'ECONNRESET')))
    socket.write(head, 'latin1')
  }

  /** 'data' chunks (TLS inside a tunnel): the onread steps, with the chunk copied where they read. */
  private readonly onData = (chunk: Buffer): void => {
    let off = 0
    while (off < chunk.length && !this.finished) {
      if (this.phase === 'head') {
        const room = this.space()
        const k = Math.min(room.length, chunk.length - off)
        chunk.copy(room, 0, off, off + k)
        off += k
        this.received(k)
        continue
      }
      const rest = off === 0 ? chunk : chunk.subarray(off)
      if (this.phase === 'wait') {
        this.pending.push(rest)
        this.socket?.pause()
      } else if (this.phase === 'body') {
        try {
          if (!this.feed(rest)) this.socket?.pause()
        } catch (err) {
          this.destroy(err as Error)
        }
      }
      return
    }
  }

  private readonly onAbort = (): void => {
    const reason: unknown = this.opts.signal?.reason
    this.destroy(reason instanceof Error ? reason : new Error('aborted'))
  }

  /**
   * onread buffer: where the socket reads next. Node asks for it right after each read callback (and once at
   * the start), so it is chosen for the phase the connection is in then.
   */
  private space(): Buffer {
    this.intoSink = false
    if (this.phase === 'head') {
      this.target = this.headFill < this.head.length ? this.head.subarray(this.headFill) : SCRATCH
    } else if (this.phase === 'body' && this.sink) {
      this.target = this.sink.space()
      this.intoSink = true
    } else if (this.phase === 'wait')
      this.target = Buffer.allocUnsafe(SPILL_BYTES) // kept for pipe()
    else this.target = SCRATCH
    return this.target
  }

  /** onread callback: `n` bytes landed at the start of `this.target`. False pauses the socket. */
  private received(n: number): boolean {
    try {
      if (this.phase === 'head') return this.receivedHead(n)
      if (this.phase === 'wait') this.pending.push(this.target.subarray(0, n))
      else if (this.phase === 'body' && this.decoder && this.sink) {
        if (!this.intoSink) return this.feed(this.target.subarray(0, n))
        const m = this.decoder.decode(this.target, 0, n)
        const more = m > 0 ? this.sink.commit(m) : true
        if (this.decoder.done) this.complete()
        return more
      }
    } catch (err) {
      this.destroy(err as Error)
    }
    return false
  }

  /** Bytes read elsewhere than into the sink: decode them where they are, then copy them into the sink. */
  private feed(chunk: Buffer): boolean {
    const decoder = this.decoder as BodyDecoder
    const sink = this.sink as BodySink
    const m = decoder.decode(chunk, 0, chunk.length)
    let more = true
    for (let off = 0; off < m;) {
      const room = sink.space()
      const k = Math.min(room.length, m - off)
      chunk.copy(room, 0, off, off + k)
      off += k
      more = sink.commit(k) && more
    }
    if (decoder.done) this.complete()
    return more
  }

  private receivedHead(n: number): boolean {
    if (this.target === SCRATCH) throw httpError('The response headers are too large.', 'HPE_HEADER_OVERFLOW')
    this.headFill += n
    for (;;) {
      const head = parseHead(this.head, this.headFill)
      if (!head) return true
      if (this.proxy && this.absolute && head.status === 407) {
        // The proxy (not the target) wants credentials for an absolute-form request.
        throw proxyStatusError(this.proxy, 407, 'the server')
      }
      if (head.status >= 100 && head.status < 200) {
        // 100 Continue / 103 Early Hints: the real answer follows.
        this.head.copyWithin(0, head.length, this.headFill)
        this.headFill -= head.length
        continue
      }
      this.decoder = bodyDecoder(head)
      if (this.headFill > head.length) this.pending.push(this.head.subarray(head.length, this.headFill))
      this.phase = 'wait'
      this.onHead.resolve(new HttpResponse(head, this))
      return false // paused until the body is asked for
    }
  }

  pipe(sink: BodySink): Promise<void> {
    const decoder = this.decoder
    if (this.phase !== 'wait' || !decoder) {
      return Promise.reject(this.failure ?? new Error('The response body was already read.'))
    }
    return new Promise<void>((resolve, reject) => {
      this.onBody = { resolve, reject }
      this.sink = sink
      this.phase = 'body'
      let more = true
      try {
        // Bytes that came with the head (or before pipe()).
        for (const chunk of this.pending) {
          more = this.feed(chunk) && more
          if (decoder.done) break
        }
      } catch (err) {
        this.destroy(err as Error)
        return
      }
      this.pending = []
      if (this.finished) return
      if (this.eof && decoder.mode === 'close') this.complete()
      else if (this.failure || this.eof) {
        this.failure ??= httpError('The connection closed before the end of the body.', 'ECONNRESET')
        this.settle()
      } else if (more) this.socket?.resume()
    })
  }

  resume(): void {
    if (this.phase === 'body' && !this.finished) this.socket?.resume()
  }

  private ended(): void {
    this.eof = true
    if (this.phase === 'head') {
      this.fail(httpError('The server closed the connection without an answer.', 'ECONNRESET'))
    } else if (this.phase === 'body' && this.decoder?.mode === 'close') this.complete()
    else if (this.phase === 'body') {
      this.fail(httpError('The connection closed before the end of the body.', 'ECONNRESET'))
    }
  }

  private complete(): void {
    if (this.finished) return
    this.finished = true
    this.phase = 'done'
    this.cleanup()
    this.onBody?.resolve()
  }

  private fail(err: Error): void {
    if (this.finished) return
    if (this.proxy && this.absolute && !this.proxyConnected && this.phase === 'head') {
      err = proxyConnectError(this.proxy, err) // never reached the proxy
    }
    this.failure ??= err
    if (this.phase === 'wait') {
      // pipe() reports it; stop reading meanwhile.
      this.cleanup()
      return
    }
    this.settle()
  }

  private settle(): void {
    if (this.finished) return
    this.finished = true
    this.cleanup()
    const err = this.failure ?? httpError('socket hang up', 'ECONNRESET')
    if (this.phase === 'head') this.onHead.reject(err)
    else this.onBody?.reject(err)
    this.phase = 'done'
  }

  destroy(err?: Error): void {
    if (this.finished) return
    this.fail(err ?? httpError('The connection was closed.', 'ECONNRESET'))
  }

  private cleanup(): void {
    this.opts.signal?.removeEventListener('abort', this.onAbort)
    this.socket?.destroy()
  }
}

/** The request head; `proxied`: absolute form for a proxy, with its credentials. */
function requestHead(
  url: URL,
  headers: Record<string, string>,
  proxied?: { authorization: string | undefined },
): string {
  const target = proxied ? `${url.origin}${url.pathname}${url.search}` : `${url.pathname}${url.search}`
  let head = `GET ${target} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n`
  if (proxied?.authorization) head += `Proxy-Authorization: ${proxied.authorization}\r\n`
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    if (lower === 'host' || lower === 'connection' || lower === 'proxy-authorization') continue
    if (!TOKEN.test(name)) throw new TypeError(`Invalid HTTP header name "${name}".`)
    if (/[\r\n\0]/.test(value))
      throw new TypeError(`Invalid character in the value of the HTTP header "${name}".`)
    head += `${name}: ${value}\r\n`
  }
  return `${head}\r\n`
}

/** One GET; resolves once the status line and headers are in (the body waits for pipe() / text()). */
export async function httpGet(url: URL, opts: GetOptions): Promise<HttpResponse> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`Not an http(s) URL: ${url.href}`)
  }
  requestHead(url, opts.headers) // invalid headers fail before connecting
  const proxy = await proxyFor(url, opts.proxy)
  return new Promise((resolve, reject) => {
    new Connection(url, proxy, opts, { resolve, reject })
  })
}
