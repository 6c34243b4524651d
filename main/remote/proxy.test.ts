/** The API clients (got) and public fetches through a loopback proxy. */
import fs from 'node:fs/promises'
import got from 'got'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { CivitaiFixtureServer } from '../../e2e/fixtures/remote/civitai-server'
import { makeFixtureModels } from '../../e2e/fixtures/remote/fixture-models'
import { HfFixtureServer } from '../../e2e/fixtures/remote/hf-server'
import { agentsFor, type ProxyResolver } from '../platform/proxy'
import { hasOpenssl, makeLocalhostCert, startTestProxy, type TestProxy } from '../platform/test-proxy'
import { CivitaiClient } from './civitai/client'
import { RemoteError } from './errors'
import { HuggingFaceClient } from './huggingface/client'
import { fetchPublic, PublicFetchError } from './public-fetch'

let dir: string
let civitai: CivitaiFixtureServer
let hf: HfFixtureServer
let proxy: TestProxy
let images: http.Server
let imagesPort = 0
const sleeps: number[] = []
const retry = { sleep: async (ms: number) => void sleeps.push(ms), random: () => 0.5, retries: 2 }
const via =
  (url: string): ProxyResolver =>
  () =>
    new URL(url)

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'atelier-proxy-'))
  const models = await makeFixtureModels(dir)
  civitai = new CivitaiFixtureServer({ models })
  hf = new HfFixtureServer({ models })
  await civitai.start()
  await hf.start()
  proxy = await startTestProxy()
  images = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png' })
    res.end('PNGDATA')
  })
  await new Promise<void>((r) => images.listen(0, '127.0.0.1', r))
  imagesPort = (images.address() as net.AddressInfo).port
})
afterAll(async () => {
  await civitai.close()
  await hf.close()
  await proxy.close()
  images.closeAllConnections()
  await new Promise((r) => images.close(r))
  await fs.rm(dir, { recursive: true, force: true })
})
beforeEach(() => {
  proxy.log.length = 0
  sleeps.length = 0
})

const apiHost = (url: string): string => new URL(url).host

describe('API clients through the proxy', () => {
  it('Civitai search and Hugging Face search go through CONNECT tunnels', async () => {
    const c = new CivitaiClient({ baseUrl: civitai.url, retry, proxy: via(proxy.url) })
    const page = await c.search({ limit: 5 })
    expect(page.items.length).toBeGreaterThan(0)
    expect(proxy.log).toContain(`CONNECT ${apiHost(civitai.url)}`)
    expect(civitai.log.some((r) => r.url.startsWith('/api/v1/models'))).toBe(true)
    const h = new HuggingFaceClient({ baseUrl: hf.url, retry, proxy: via(proxy.url) })
    const models = await h.search({ limit: 5 })
    expect(models.items.length).toBeGreaterThan(0)
    expect(proxy.log).toContain(`CONNECT ${apiHost(hf.url)}`)
  })

  it('a proxy that is down: a network error naming the proxy (retried); 407: not retried', async () => {
    const s = net.createServer()
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    const port = (s.address() as net.AddressInfo).port
    await new Promise((r) => s.close(r))
    const down = new CivitaiClient({
      baseUrl: civitai.url,
      retry,
      proxy: via(`http://me:pw1@127.0.0.1:${port}`),
    })
    const e = (await down.search({ limit: 5 }).catch((err: unknown) => err)) as RemoteError
    expect(e).toBeInstanceOf(RemoteError)
    expect(e.code).toBe('network')
    expect(e.message).toBe(
      `Could not reach Civitai: Could not reach the proxy http://127.0.0.1:${port} (connection refused).`,
    )
    expect(e.message).not.toMatch(/pw1/)
    expect(sleeps).toHaveLength(2)

    sleeps.length = 0
    const authed = await startTestProxy({ user: 'me', pass: 'pw2' })
    try {
      const no = new CivitaiClient({ baseUrl: civitai.url, retry, proxy: via(authed.bareUrl) })
      const e407 = (await no.search({ limit: 5 }).catch((err: unknown) => err)) as RemoteError
      expect(e407.code).toBe('forbidden')
      expect(e407.message).toMatch(
        /^Could not reach Civitai: The proxy http:\/\/127\.0\.0\.1:\d+ requires authentication \(HTTP 407\)/,
      )
      expect(sleeps).toEqual([])
      const yes = new CivitaiClient({ baseUrl: civitai.url, retry, proxy: via(authed.url) })
      expect((await yes.search({ limit: 5 })).items.length).toBeGreaterThan(0)
    } finally {
      await authed.close()
    }
  })
})

describe.skipIf(!hasOpenssl())('https targets of got clients', () => {
  it('direct and through CONNECT, the target certificate checked by name inside the tunnel', async () => {
    const { key, cert } = makeLocalhostCert()
    const server = https.createServer({ key, cert }, (_req, res) => res.end('ok'))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `https://localhost:${(server.address() as net.AddressInfo).port}/`
    try {
      const ca = { certificateAuthority: cert }
      const direct = await got(url, { agent: agentsFor(() => null), https: ca, retry: { limit: 0 } }).text()
      expect(direct).toBe('ok')
      expect(proxy.log).toEqual([])
      const tunnelled = await got(url, { agent: agentsFor(via(proxy.url)), https: ca, retry: { limit: 0 } })
      expect(tunnelled.body).toBe('ok')
      expect(proxy.log).toEqual([`CONNECT ${new URL(url).host}`])
      const untrusted = await got(url, { agent: agentsFor(via(proxy.url)), retry: { limit: 0 } }).catch(
        (e: { code?: string }) => e,
      )
      expect(untrusted).toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
    } finally {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  })
})

describe('public fetches (image prompts) through the proxy', () => {
  const base = {
    maxBytes: 1024,
    accept: 'image/',
    // 127.0.0.1 plays a public host here; everything else keeps the default rule.
    allowAddress: (ip: string) => ip === '127.0.0.1',
    resolve: async (host: string) => {
      if (host === 'inside.test') return [{ address: '10.1.2.3', family: 4 }]
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
    },
  }

  it('fetches through the proxy, which resolves; literal private addresses and localhost are refused first', async () => {
    const r = await fetchPublic(`http://127.0.0.1:${imagesPort}/a.png`, { ...base, proxy: via(proxy.url) })
    expect(Buffer.from(r.bytes).toString()).toBe('PNGDATA')
    expect(proxy.log).toEqual([`CONNECT 127.0.0.1:${imagesPort}`])
    proxy.log.length = 0
    const refused = async (url: string): Promise<PublicFetchError> =>
      (await fetchPublic(url, { ...base, proxy: via(proxy.url) }).catch(
        (e: unknown) => e,
      )) as PublicFetchError
    expect((await refused('http://10.0.0.1/x.png')).kind).toBe('refused')
    expect((await refused('http://[::ffff:169.254.169.254]/x.png')).kind).toBe('refused')
    expect((await refused(`http://localhost:${imagesPort}/x.png`)).message).toMatch(/localhost.*not fetched/)
    // A name that resolves here to a private address is refused too.
    expect((await refused('http://inside.test/x.png')).message).toMatch(/10\.1\.2\.3.*not fetched/)
    expect(proxy.log).toEqual([])
    // A name this machine cannot resolve is the proxy's to resolve (here it cannot either).
    const e = await refused(`http://only-the-proxy-knows.test:${imagesPort}/x.png`)
    expect(e).toBeInstanceOf(PublicFetchError)
    expect(e.kind).toBe('network')
    expect(proxy.log).toEqual([`CONNECT only-the-proxy-knows.test:${imagesPort}`])
  })
})
