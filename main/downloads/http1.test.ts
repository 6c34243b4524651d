import crypto from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { hasOpenssl, makeLocalhostCert } from '../platform/test-proxy'
import { bodyDecoder, BodyDecoder, httpGet, parseHead, type BodySink } from './http1'

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function randomBytes(n: number, seed: number): Buffer {
  const r = rng(seed)
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256)
  return b
}

function chunkedEncode(body: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = []
  let off = 0
  for (let i = 0; off < body.length; i++) {
    const n = Math.min(sizes[i % sizes.length] ?? 1, body.length - off)
    // Mixed-case hex, an extension on every other chunk.
    const size = i % 3 === 0 ? n.toString(16).toUpperCase() : n.toString(16)
    parts.push(Buffer.from(`${size}${i % 2 ? ';name=value' : ''}\r\n`, 'latin1'))
    parts.push(body.subarray(off, off + n), Buffer.from('\r\n'))
    off += n
  }
  parts.push(Buffer.from('0\r\nx-trailer: yes\r\n\r\n'))
  return Buffer.concat(parts)
}

/** Collects the body; pauses after every `pauseEvery` commits and resumes on the next macrotask. */
function collector(pauseEvery = 0, room = 64 * 1024): BodySink & { bytes(): Buffer; resume?: () => void } {
  const chunks: Buffer[] = []
  let buf = Buffer.alloc(room)
  let commits = 0
  const sink = {
    resume: undefined as (() => void) | undefined,
    space: () => buf,
    commit(n: number): boolean {
      chunks.push(Buffer.from(buf.subarray(0, n)))
      buf = Buffer.alloc(room)
      commits++
      if (pauseEvery > 0 && commits % pauseEvery === 0) {
        setImmediate(() => sink.resume?.())
        return false
      }
      return true
    },
    bytes: () => Buffer.concat(chunks),
  }
  return sink
}

/** A raw TCP server answering every connection with `answer(socket, requestHead)`. */
async function rawServer(
  answer: (socket: net.Socket, head: string) => void,
): Promise<{ url: string; heads: string[]; close(): Promise<void> }> {
  const heads: string[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    let got = ''
    const onData = (d: Buffer): void => {
      got += d.toString('latin1')
      const end = got.indexOf('\r\n\r\n')
      if (end < 0) return
      socket.off('data', onData)
      heads.push(got.slice(0, end))
      answer(socket, got.slice(0, end))
    }
    socket.on('data', onData)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    heads,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}

const get = (url: string, extra: Partial<Parameters<typeof httpGet>[1]> = {}) =>
  httpGet(new URL(url), { headers: {}, idleTimeoutMs: 5000, ...extra })

describe('parsing', () => {
  it('parses the status line and headers (lower-case names, repeats joined, cookies kept apart)', () => {
    const text =
      'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nX-A: 1\r\nx-a: 2\r\n' +
      'Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Folded: one\r\n  two\r\n\r\nBODY'
    const buf = Buffer.from(text, 'latin1')
    expect(parseHead(buf, buf.length - 5)).toBeNull() // the blank line is not complete yet
    const head = parseHead(buf, buf.length)
    expect(head?.status).toBe(206)
    expect(head?.statusMessage).toBe('Partial Content')
    expect(head?.length).toBe(buf.length - 4)
    expect(head?.headers).toEqual({
      'content-range': 'bytes 5-9/10',
      'x-a': '1, 2',
      'set-cookie': ['a=1', 'b=2'],
      'x-folded': 'one two',
    })
    const lf = Buffer.from('HTTP/1.0 200\nContent-Length: 3\n\nabc', 'latin1')
    expect(parseHead(lf, lf.length)).toMatchObject({
      status: 200,
      headers: { 'content-length': '3' },
      length: lf.length - 3,
    })
    const bad = Buffer.from('SSH-2.0-OpenSSH\r\n\r\n', 'latin1')
    expect(() => parseHead(bad, bad.length)).toThrow(/Not an HTTP\/1\.x response/)
  })

  it('picks the body framing: chunked over Content-Length, none for 204/304, else until close', () => {
    expect(bodyDecoder({ status: 200, headers: { 'content-length': '10' } }).mode).toBe('length')
    expect(bodyDecoder({ status: 200, headers: { 'content-length': '10, 10' } }).mode).toBe('length')
    expect(() => bodyDecoder({ status: 200, headers: { 'content-length': '10, 11' } })).toThrow(
      /Content-Length/,
    )
    expect(() => bodyDecoder({ status: 200, headers: { 'content-length': '-1' } })).toThrow(/Content-Length/)
    const te = { 'transfer-encoding': 'gzip, Chunked', 'content-length': '10' }
    expect(bodyDecoder({ status: 200, headers: te }).mode).toBe('chunked')
    expect(bodyDecoder({ status: 200, headers: { 'transfer-encoding': 'gzip' } }).mode).toBe('close')
    expect(bodyDecoder({ status: 200, headers: {} }).mode).toBe('close')
    expect(bodyDecoder({ status: 304, headers: { 'content-length': '10' } }).done).toBe(true)
    expect(bodyDecoder({ status: 200, headers: { 'content-length': '0' } }).done).toBe(true)
  })

  it('decodes chunked bodies in place, whatever the read boundaries', () => {
    const body = randomBytes(5000, 1)
    const wire = chunkedEncode(body, [1, 700, 13, 2048, 4096])
    const r = rng(2)
    for (const maxRead of [1, 2, 7, 100, 4096, wire.length]) {
      const decoder = new BodyDecoder('chunked')
      const out: Buffer[] = []
      const copy = Buffer.from(wire)
      for (let off = 0; off < copy.length && !decoder.done;) {
        const n = Math.min(copy.length - off, 1 + Math.floor(r() * maxRead))
        const m = decoder.decode(copy, off, n)
        out.push(Buffer.from(copy.subarray(off, off + m)))
        off += n
      }
      expect(decoder.done).toBe(true)
      expect(Buffer.concat(out).equals(body)).toBe(true)
    }
    expect(() => new BodyDecoder('chunked').decode(Buffer.from('zz\r\n'), 0, 4)).toThrow(/bad chunk size/)
    expect(() => new BodyDecoder('chunked').decode(Buffer.from('2\r\nabX'), 0, 6)).toThrow(/no CRLF/)
  })
})

describe('httpGet', () => {
  it('sends a well-formed GET and reads a Content-Length body with pauses, bytes intact', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17, 3)
    const server = await rawServer((socket) => {
      // The head and the first body bytes in one write, then the rest in odd pieces.
      socket.write(
        Buffer.concat([
          Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`),
          body.subarray(0, 1000),
        ]),
      )
      let off = 1000
      const step = (): void => {
        if (off >= body.length) return
        const n = Math.min(body.length - off, 100_000 + (off % 7919))
        const ok = socket.write(body.subarray(off, off + n))
        off += n
        if (ok) setImmediate(step)
        else socket.once('drain', step)
      }
      step()
    })
    try {
      const res = await get(`${server.url}/a/b.safetensors?x=1&y=%20`, {
        headers: {
          'user-agent': 'Atelier/test',
          range: 'bytes=0-',
          Host: 'ignored',
          connection: 'keep-alive',
        },
      })
      expect(res.status).toBe(200)
      const sink = collector(3, 50_000)
      sink.resume = () => res.resume()
      await res.pipe(sink)
      expect(sink.bytes().equals(body)).toBe(true)
      const head = server.heads[0] ?? ''
      const lines = head.split('\r\n')
      expect(lines[0]).toBe('GET /a/b.safetensors?x=1&y=%20 HTTP/1.1')
      expect(lines).toContain(`Host: ${new URL(server.url).host}`)
      expect(lines).toContain('Connection: close')
      expect(lines).toContain('user-agent: Atelier/test')
      expect(lines).toContain('range: bytes=0-')
      expect(lines.filter((l) => /^host:/i.test(l))).toHaveLength(1)
      expect(lines.filter((l) => /^connection:/i.test(l))).toHaveLength(1)
    } finally {
      await server.close()
    }
  })

  it('reads chunked bodies and bodies delimited by the end of the connection; skips 1xx answers', async () => {
    const body = randomBytes(300_000, 4)
    const server = await rawServer((socket, head) => {
      if (head.startsWith('GET /chunked')) {
        socket.write('HTTP/1.1 100 Continue\r\n\r\n')
        socket.end(
          Buffer.concat([
            Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'),
            chunkedEncode(body, [65536, 3, 9000]),
          ]),
        )
      } else {
        socket.end(
          Buffer.concat([
            Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n'),
            body,
          ]),
        )
      }
    })
    try {
      for (const p of ['/chunked', '/close']) {
        const res = await get(`${server.url}${p}`)
        expect(res.status).toBe(200)
        const sink = collector(2, 10_000)
        sink.resume = () => res.resume()
        await res.pipe(sink)
        expect(sink.bytes().equals(body)).toBe(true)
      }
    } finally {
      await server.close()
    }
  })

  it('fails clearly: early close, no answer, huge headers, a stalled server, an abort, a bad header', async () => {
    const server = await rawServer((socket, head) => {
      if (head.startsWith('GET /short'))
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(500))
      else if (head.startsWith('GET /nothing')) socket.end()
      else if (head.startsWith('GET /huge'))
        socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'y'.repeat(70_000)}\r\n\r\n`)
      else if (head.startsWith('GET /stall')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')
      else socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n${'z'.repeat(1000)}`)
    })
    try {
      const short = await get(`${server.url}/short`)
      const sink = collector()
      await expect(short.pipe(sink)).rejects.toMatchObject({
        code: 'ECONNRESET',
        message: /before the end of the body/,
      })
      expect(sink.bytes().length).toBe(500)
      await expect(get(`${server.url}/nothing`)).rejects.toMatchObject({ code: 'ECONNRESET' })
      await expect(get(`${server.url}/huge`)).rejects.toMatchObject({ code: 'HPE_HEADER_OVERFLOW' })
      const stall = await get(`${server.url}/stall`, { idleTimeoutMs: 200 })
      await expect(stall.pipe(collector())).rejects.toMatchObject({
        code: 'ETIMEDOUT',
        message: 'no data for 0 s',
      })
      const controller = new AbortController()
      const slow = await get(`${server.url}/slow`, { signal: controller.signal })
      const pending = slow.pipe(collector())
      controller.abort(new Error('download pause'))
      await expect(pending).rejects.toThrow('download pause')
      await expect(get(`${server.url}/x`, { headers: { 'x-evil': 'a\r\nInjected: 1' } })).rejects.toThrow(
        /Invalid character in the value of the HTTP header "x-evil"/,
      )
      expect(server.heads.some((h) => h.includes('Injected'))).toBe(false)
    } finally {
      await server.close()
    }
  })

  it('the idle limit counts from the last read, not from the start', async () => {
    const server = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n')
      let sent = 0
      const timer = setInterval(() => {
        socket.write('x')
        if (++sent === 20) clearInterval(timer)
      }, 50)
      socket.on('close', () => clearInterval(timer))
    })
    try {
      // 20 bytes, one every 50 ms: ~1 s in all, with a 500 ms idle limit.
      const res = await get(`${server.url}/trickle`, { idleTimeoutMs: 500 })
      const sink = collector()
      await res.pipe(sink)
      expect(sink.bytes().toString()).toBe('x'.repeat(20))
    } finally {
      await server.close()
    }
  })

  it('reads an error body as text and can drop a response unread', async () => {
    const server = await rawServer((socket, head) => {
      if (head.startsWith('GET /err'))
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 27\r\n\r\n{"error":"File not found"}\n')
      else socket.write(`HTTP/1.1 307 Temporary Redirect\r\nLocation: /err\r\nContent-Length: 100000\r\n\r\n`)
    })
    try {
      const err = await get(`${server.url}/err`)
      expect(err.status).toBe(404)
      expect(await err.text()).toBe('{"error":"File not found"}\n')
      const redirect = await get(`${server.url}/redir`)
      expect(redirect.headers.location).toBe('/err')
      redirect.destroy()
      await expect(redirect.pipe(collector())).rejects.toThrow()
    } finally {
      await server.close()
    }
  })
})

if (!hasOpenssl())
  console.warn('http1.test.ts: openssl not found, skipping the https test (it makes its certificate).')

describe.skipIf(!hasOpenssl())('https', () => {
  it('downloads over TLS (certificate checked against the given CA, SNI by name) with pauses', async () => {
    const tlsFiles = makeLocalhostCert()
    const body = randomBytes(2 * 1024 * 1024 + 5, 5)
    const sha = crypto.createHash('sha256').update(body).digest('hex')
    let servername: string | undefined
    const server = https.createServer({ key: tlsFiles.key, cert: tlsFiles.cert }, (req, res) => {
      servername = (req.socket as unknown as { servername?: string }).servername
      if (req.url === '/chunked') {
        res.writeHead(200) // no Content-Length: node sends it chunked
        res.write(body.subarray(0, 1000))
        res.end(body.subarray(1000))
      } else {
        res.writeHead(200, { 'content-length': body.length })
        res.end(body)
      }
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    try {
      const ca = tlsFiles.cert
      for (const p of ['/file', '/chunked']) {
        const res = await get(`https://localhost:${port}${p}`, { ca })
        const sink = collector(5)
        sink.resume = () => res.resume()
        await res.pipe(sink)
        expect(crypto.createHash('sha256').update(sink.bytes()).digest('hex')).toBe(sha)
        expect(servername).toBe('localhost')
      }
      // Without the CA, the self-signed certificate is refused.
      await expect(get(`https://localhost:${port}/file`)).rejects.toMatchObject({
        code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
      })
    } finally {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  })
})

describe('node:http interop', () => {
  it('reads what a node:http server sends chunked', async () => {
    const body = randomBytes(200_000, 6)
    const server = http.createServer((_req, res) => {
      res.write(body.subarray(0, 10))
      res.write(body.subarray(10, 150_000))
      res.end(body.subarray(150_000))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    try {
      const res = await get(`http://127.0.0.1:${port}/`)
      expect(res.headers['transfer-encoding']).toBe('chunked')
      const sink = collector()
      await res.pipe(sink)
      expect(sink.bytes().equals(body)).toBe(true)
    } finally {
      await new Promise((r) => server.close(r))
    }
  })
})
