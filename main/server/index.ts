import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { encodeMessage, isClientMessage } from '../../preload/wire'
import type { Handlers } from '../services/api'
import type { Services } from '../services/container'
import { dispatch } from '../services/dispatch'
import { decodeClientFrame, MAX_FRAME_BYTES } from './limits'
import {
  allowedHosts,
  checkUpgrade,
  contentSecurityPolicy,
  hostAllowed,
  newToken,
  parseRequestUrl,
  TOKEN_COOKIE,
  tokenMatches,
} from './security'
import { serveStatic } from './static'

export interface ServerOptions {
  services: Services
  handlers: Handlers
  /** The built renderer (out/renderer). */
  rendererDir: string
  host?: string
  port?: number
  token?: string
}

export interface RunningServer {
  url: string
  port: number
  token: string
  close(): Promise<void>
}

/** Extra HTTP routes (binary payloads) that other modules add: return true when handled. */
export type HttpRoute = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
) => Promise<boolean> | boolean

/**
 * `atelier serve`: the built renderer over HTTP and the contract over one WebSocket (MessagePack frames),
 * bound to loopback by default. Every request carries the random token; Host and Origin are checked
 * against DNS rebinding.
 */
export async function startServer(opts: ServerOptions, routes: HttpRoute[] = []): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1'
  const token = opts.token ?? newToken()
  let hosts = new Set<string>()
  const sockets = new Set<WebSocket>()

  const server = http.createServer((req, res) => {
    void handleHttp(req, res).catch((err: unknown) => {
      console.error('http error', err)
      if (!res.headersSent) res.writeHead(500).end('Internal error')
    })
  })

  async function handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.setHeader('X-Content-Type-Options', 'nosniff')
    res.setHeader('Referrer-Policy', 'no-referrer')
    res.setHeader('Cache-Control', 'no-store')
    if (!hostAllowed(req, hosts)) {
      res.writeHead(403, { 'Content-Type': 'text/plain' }).end('Forbidden host')
      return
    }
    const url = parseRequestUrl(req)
    if (!url) {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('Bad request URL')
      return
    }
    if (!tokenMatches(req, url, token)) {
      res
        .writeHead(401, { 'Content-Type': 'text/plain' })
        .end('Missing or wrong access token: open the URL that `atelier serve` printed.')
      return
    }
    if (url.searchParams.has('token')) {
      res.setHeader(
        'Set-Cookie',
        `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
      )
    }
    for (const route of routes) if (await route(req, res, url)) return
    if (url.pathname === '/api/health') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ok: true }))
      return
    }
    res.setHeader('Content-Security-Policy', contentSecurityPolicy(req.headers.host))
    await serveStatic(opts.rendererDir, url.pathname, res)
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES })
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    // A socket without an error listener turns a peer's reset into an uncaught exception.
    socket.on('error', () => socket.destroy())
    try {
      const verdict = checkUpgrade(req, hosts, token)
      if (verdict.status !== 101) return refuseUpgrade(socket, verdict.status, verdict.text)
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
    } catch (err) {
      console.error('upgrade error', err)
      refuseUpgrade(socket, 400, 'Bad Request')
    }
  })
  server.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    socket.destroy()
  })
  server.on('connection', (socket) => socket.on('error', () => socket.destroy()))

  wss.on('connection', (ws: WebSocket) => {
    sockets.add(ws)
    // Protocol errors (reserved opcodes, unmasked frames, oversized payloads ...) end this socket only.
    ws.on('error', () => ws.terminate())
    ws.send(encodeMessage({ t: 'hello', version: opts.services.version }))
    ws.on('message', (data, isBinary) => {
      if (!isBinary) return ws.close(1003, 'binary MessagePack frames only')
      let msg: unknown
      try {
        msg = decodeClientFrame(toBuffer(data))
      } catch {
        return ws.close(1007, 'undecodable frame')
      }
      if (!isClientMessage(msg)) return ws.close(1008, 'not a request')
      const { id, channel, payload } = msg
      void dispatch(opts.handlers, channel, payload, { transport: 'ws' }).then((result) => {
        if (ws.readyState === ws.OPEN) ws.send(encodeMessage({ t: 'res', id, result }))
      })
    })
    ws.on('close', () => sockets.delete(ws))
  })

  const unsubscribe = opts.services.bus.subscribe((event) => {
    const frame = encodeMessage({ t: 'evt', name: event.name, payload: event.payload })
    for (const ws of sockets) if (ws.readyState === ws.OPEN) ws.send(frame)
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  hosts = allowedHosts(host, port)
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return {
    url: `http://${shownHost}:${port}/?token=${token}`,
    port,
    token,
    async close() {
      unsubscribe()
      for (const ws of sockets) ws.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  if (socket.writable)
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
  socket.destroy()
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.isBuffer(data) ? data : Buffer.from(data)
}

export function defaultRendererDir(root: string): string {
  return path.join(root, 'out', 'renderer')
}

export function rendererBuilt(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'index.html'))
}
