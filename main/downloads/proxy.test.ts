/** Downloads through a loopback proxy: absolute-form http, CONNECT + TLS, resume, NO_PROXY, proxy failures. */
import crypto from 'node:crypto'
import fs from 'node:fs'
import type { IncomingMessage } from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { createProxy } from 'proxy'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { defaultFaults, serveBytes, type FaultSwitches } from '../../e2e/fixtures/remote/fixture-http'
import { envProxyResolver, ProxyError, type ProxyResolver } from '../platform/proxy'
import { hasOpenssl, makeLocalhostCert, startTestProxy, type TestProxy } from '../platform/test-proxy'
import { httpGet } from './http1'
import { setupDownloadEnv, type DownloadTestEnv } from './test-setup'

let env: DownloadTestEnv
let proxy: TestProxy
beforeAll(async () => {
  env = await setupDownloadEnv()
  proxy = await startTestProxy()
})
afterAll(async () => {
  await env.close()
  await proxy.close()
})
beforeEach(() => {
  env.reset()
  proxy.log.length = 0
})

const via =
  (url: string): ProxyResolver =>
  () =>
    new URL(url)
const dl = (versionId: number): string => `${env.civitai.url}/api/download/models/${versionId}`
const sha256 = (file: string): string =>
  crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as net.AddressInfo
  await new Promise((r) => s.close(r))
  return port
}

describe('http through a proxy (absolute form)', () => {
  it('downloads from Civitai (key to the API host only) and resumes after a drop, every hop through the proxy', async () => {
    env.civitai.setFaults({ dropAfterBytes: 200_000, dropTimes: 1 })
    // The test proxy does not close our side when the server drops its side: the idle limit notices.
    const m = await env.open(await env.tempDir('state'), { proxy: via(proxy.url), idleTimeoutMs: 1500 })
    const done = await m.whenSettled(
      (
        await m.enqueue({
          url: dl(2001),
          destDir: await env.tempDir('lib'),
          expectedSha256: env.models.checkpoint.sha256,
          source: 'civitai',
        })
      ).id,
    )
    expect(done.state).toBe('done')
    expect(done.verified).toBe(true)
    expect(sha256(done.destPath ?? '')).toBe(env.models.checkpoint.sha256)
    const storage = env.civitai.storageRequests()
    expect(storage).toHaveLength(2)
    expect(storage[1]?.status).toBe(206)
    expect(storage[1]?.headers.range).toMatch(/^bytes=[1-9]\d*-$/)
    expect(storage.every((r) => r.headers.authorization === undefined)).toBe(true)
    const api = env.civitai.log.filter((r) => r.role === 'download')
    expect(api[0]?.headers.authorization).toBe('Bearer civitai-test-key')
    // API hop and both storage hops of both attempts went through the proxy, in absolute form.
    expect(proxy.log.filter((l) => l === `GET ${dl(2001)}`)).toHaveLength(2)
    expect(proxy.log.filter((l) => l.startsWith(`GET ${env.civitai.storageUrl}/`))).toHaveLength(2)
    expect(proxy.log.every((l) => l.startsWith('GET http://'))).toBe(true)
  })

  it('NO_PROXY hosts go direct; others through the proxy (environment variables)', async () => {
    const lib = await env.tempDir('lib')
    const bypass = await env.open(await env.tempDir('state'), {
      proxy: envProxyResolver({ HTTP_PROXY: proxy.url, NO_PROXY: 'example.com, 127.0.0.1' }) ?? undefined,
    })
    const a = await bypass.whenSettled(
      (await bypass.enqueue({ url: dl(2002), destDir: lib, source: 'civitai' })).id,
    )
    expect(a.state).toBe('done')
    expect(proxy.log).toEqual([])
    const through = await env.open(await env.tempDir('state'), {
      proxy: envProxyResolver({ http_proxy: proxy.url, no_proxy: 'example.com' }) ?? undefined,
    })
    const b = await through.whenSettled(
      (await through.enqueue({ url: dl(2002), destDir: await env.tempDir('lib'), source: 'civitai' })).id,
    )
    expect(b.state).toBe('done')
    expect(proxy.log[0]).toBe(`GET ${dl(2002)}`)
  })

  it('a proxy that is down fails with a message naming it (never its password), after the retries', async () => {
    const port = await closedPort()
    const m = await env.open(await env.tempDir('state'), {
      proxy: via(`http://alice:hunter2@127.0.0.1:${port}`),
    })
    const done = await m.whenSettled(
      (await m.enqueue({ url: dl(2001), destDir: await env.tempDir('lib'), source: 'civitai' })).id,
    )
    expect(done.state).toBe('failed')
    expect(done.error?.code).toBe('network')
    expect(done.error?.message).toBe(
      `Could not reach the proxy http://127.0.0.1:${port} (connection refused).`,
    )
    expect(JSON.stringify(done)).not.toMatch(/hunter2|alice/)
    expect(env.sleeps.length).toBeGreaterThan(0) // retried like any network failure
    expect(env.civitai.log).toEqual([])
  })
})

describe('proxy authentication', () => {
  let authed: TestProxy
  beforeAll(async () => {
    authed = await startTestProxy({ user: 'alice', pass: 'p@ss word' })
  })
  afterAll(async () => authed.close())

  it('407 without credentials is a clear, final error; credentials from the proxy URL work', async () => {
    const m = await env.open(await env.tempDir('state'), { proxy: via(authed.bareUrl) })
    const failed = await m.whenSettled(
      (await m.enqueue({ url: dl(2002), destDir: await env.tempDir('lib'), source: 'civitai' })).id,
    )
    expect(failed.state).toBe('failed')
    expect(failed.error?.code).toBe('forbidden')
    expect(failed.error?.message).toBe(
      `The proxy ${authed.bareUrl} requires authentication (HTTP 407): put them in the proxy URL: http://user:password@host:port.`,
    )
    expect(env.sleeps).toEqual([]) // not retried
    expect(env.civitai.log).toEqual([])

    const wrong = await env.open(await env.tempDir('state'), {
      proxy: via(authed.url.replace('p%40ss', 'nope')),
    })
    const w = await wrong.whenSettled(
      (await wrong.enqueue({ url: dl(2002), destDir: await env.tempDir('lib'), source: 'civitai' })).id,
    )
    expect(w.error?.message).toMatch(
      /requires authentication \(HTTP 407\): the user name or password .* was refused/,
    )
    expect(JSON.stringify(w)).not.toMatch(/alice|nope|p%40ss|p@ss/)

    const ok = await env.open(await env.tempDir('state'), { proxy: via(authed.url) })
    const done = await ok.whenSettled(
      (await ok.enqueue({ url: dl(2002), destDir: await env.tempDir('lib'), source: 'civitai' })).id,
    )
    expect(done.state).toBe('done')
    expect(authed.auth.at(-1)).toBe(`Basic ${Buffer.from('alice:p@ss word').toString('base64')}`)
  })
})

describe.skipIf(!hasOpenssl())('https through a CONNECT tunnel', () => {
  let tls: { key: Buffer; cert: Buffer }
  let server: https.Server
  let origin = ''
  const faults: FaultSwitches = defaultFaults()
  const requests: { range?: string; servername?: string }[] = []
  beforeAll(async () => {
    tls = makeLocalhostCert()
    const file = env.models.checkpoint
    const hosted = { size: file.size, etag: '"tls-fixture"', lastModified: new Date(0), diskPath: file.path }
    server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      requests.push({
        range: req.headers.range,
        servername: (req.socket as unknown as { servername?: string }).servername,
      })
      void serveBytes(req, res, hosted, faults)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    origin = `https://localhost:${(server.address() as net.AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })

  it('downloads over TLS inside the tunnel (certificate of the target checked), resumed after a drop', async () => {
    Object.assign(faults, { dropAfterBytes: 150_000, dropTimes: 1 })
    const m = await env.open(await env.tempDir('state'), {
      proxy: via(proxy.url),
      ca: tls.cert,
      hashInWorker: 'always',
    })
    const done = await m.whenSettled(
      (
        await m.enqueue({
          url: `${origin}/tiny.safetensors`,
          destDir: await env.tempDir('lib'),
          expectedSha256: env.models.checkpoint.sha256,
        })
      ).id,
    )
    expect(done.state).toBe('done')
    expect(done.verified).toBe(true)
    const host = new URL(origin).host
    expect(proxy.log).toEqual([`CONNECT ${host}`, `CONNECT ${host}`])
    expect(requests.map((r) => r.servername)).toEqual(['localhost', 'localhost'])
    expect(requests[0]?.range).toBeUndefined()
    expect(requests[1]?.range).toMatch(/^bytes=[1-9]\d*-$/)
    // Without the fixture's CA the target's certificate is refused, tunnel or not.
    await expect(
      httpGet(new URL(`${origin}/tiny.safetensors`), {
        headers: {},
        idleTimeoutMs: 5000,
        proxy: via(proxy.url),
      }),
    ).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
  })

  it('reads a chunked body inside the tunnel with the sink pausing every few commits', async () => {
    Object.assign(faults, { chunked: true, dropAfterBytes: null })
    try {
      const res = await httpGet(new URL(`${origin}/tiny.safetensors`), {
        headers: {},
        idleTimeoutMs: 5000,
        ca: tls.cert,
        proxy: via(proxy.url),
      })
      expect(res.headers['transfer-encoding']).toBe('chunked')
      const hash = crypto.createHash('sha256')
      let buf = Buffer.alloc(7000) // odd size: TLS records straddle the sink's buffers
      let commits = 0
      await res.pipe({
        space: () => buf,
        commit(n) {
          hash.update(buf.subarray(0, n))
          buf = Buffer.alloc(7000)
          if (++commits % 5 !== 0) return true
          setImmediate(() => res.resume())
          return false
        },
      })
      expect(hash.digest('hex')).toBe(env.models.checkpoint.sha256)
      expect(commits).toBeGreaterThan(10)
    } finally {
      faults.chunked = false
    }
  })

  it('an https:// proxy (TLS to the proxy): http in absolute form and https as TLS inside TLS', async () => {
    const tlsProxy = createProxy(https.createServer({ key: tls.key, cert: tls.cert }))
    const seen: string[] = []
    tlsProxy.prependListener('request', (req: IncomingMessage) => seen.push(`${req.method} ${req.url}`))
    tlsProxy.prependListener('connect', (req: IncomingMessage) => seen.push(`${req.method} ${req.url}`))
    await new Promise<void>((r) => tlsProxy.listen(0, '127.0.0.1', r))
    const proxyUrl = `https://localhost:${(tlsProxy.address() as net.AddressInfo).port}`
    try {
      for (const url of [dl(2002), `${origin}/tiny.safetensors`]) {
        const res = await httpGet(new URL(url), {
          headers: {},
          idleTimeoutMs: 5000,
          ca: tls.cert,
          proxy: via(proxyUrl),
        })
        const hash = crypto.createHash('sha256')
        let buf = Buffer.alloc(64 * 1024)
        await res.pipe({
          space: () => buf,
          commit(n) {
            hash.update(buf.subarray(0, n))
            buf = Buffer.alloc(64 * 1024)
            return true
          },
        })
        expect(res.status).toBe(url === dl(2002) ? 307 : 200) // the API answers with a redirect to storage
        if (res.status === 200) expect(hash.digest('hex')).toBe(env.models.checkpoint.sha256)
      }
      expect(seen).toEqual([`GET ${dl(2002)}`, `CONNECT ${new URL(origin).host}`])
    } finally {
      tlsProxy.closeAllConnections()
      await new Promise((r) => tlsProxy.close(r))
    }
  })

  it('CONNECT refused with 407, or to a proxy that is down: ProxyError with a clear message', async () => {
    const authed = await startTestProxy({ user: 'u', pass: 'secret' })
    try {
      const get = (p: string) =>
        httpGet(new URL(`${origin}/tiny.safetensors`), {
          headers: {},
          idleTimeoutMs: 5000,
          ca: tls.cert,
          proxy: via(p),
        })
      const e407 = await get(authed.bareUrl).catch((e: unknown) => e)
      expect(e407).toBeInstanceOf(ProxyError)
      expect((e407 as ProxyError).kind).toBe('auth')
      expect((e407 as Error).message).toMatch(
        /^The proxy http:\/\/127\.0\.0\.1:\d+ requires authentication \(HTTP 407\)/,
      )
      const res = await get(authed.url)
      expect(res.status).toBe(200)
      res.destroy()
      const port = await closedPort()
      const down = await get(`http://u:secret@127.0.0.1:${port}`).catch((e: unknown) => e)
      expect(down).toBeInstanceOf(ProxyError)
      expect((down as Error).message).toBe(
        `Could not reach the proxy http://127.0.0.1:${port} (connection refused).`,
      )
    } finally {
      await authed.close()
    }
  })
})
