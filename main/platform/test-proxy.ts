/**
 * Test helpers for proxy tests: a loopback HTTP proxy (the `proxy` package: absolute-form requests and
 * CONNECT), optionally asking for Basic credentials, that logs what it was asked; and a throwaway TLS
 * certificate for `localhost` / 127.0.0.1 made with openssl (its own CA: pass `cert` as `ca`).
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import type http from 'node:http'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createProxy } from 'proxy'

export interface TestProxy {
  /** `http://127.0.0.1:PORT` (with `user:pass@` when the proxy asks for credentials). */
  url: string
  /** The same without credentials. */
  bareUrl: string
  /** Request lines the proxy received: `CONNECT host:port`, `GET http://host/path`. */
  log: string[]
  /** Proxy-Authorization values received (to check what was sent). */
  auth: string[]
  close(): Promise<void>
}

export async function startTestProxy(o: { user?: string; pass?: string } = {}): Promise<TestProxy> {
  const server = createProxy()
  const log: string[] = []
  const auth: string[] = []
  const sockets = new Set<net.Socket>()
  const record = (req: http.IncomingMessage): void => {
    log.push(`${req.method} ${req.url}`)
    const a = req.headers['proxy-authorization']
    if (a) auth.push(a)
  }
  server.prependListener('request', record)
  server.prependListener('connect', record)
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  if (o.user !== undefined) {
    const expected = `Basic ${Buffer.from(`${o.user}:${o.pass ?? ''}`).toString('base64')}`
    server.authenticate = (req) => req.headers['proxy-authorization'] === expected
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  const bareUrl = `http://127.0.0.1:${port}`
  const creds =
    o.user === undefined ? '' : `${encodeURIComponent(o.user)}:${encodeURIComponent(o.pass ?? '')}@`
  return {
    url: `http://${creds}127.0.0.1:${port}`,
    bareUrl,
    log,
    auth,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** A self-signed EC certificate for localhost and 127.0.0.1, valid 2 days; files in a temp folder removed after. */
export function makeLocalhostCert(): { key: Buffer; cert: Buffer } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-tls-'))
  try {
    const key = path.join(dir, 'key.pem')
    const cert = path.join(dir, 'cert.pem')
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    )
    return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
