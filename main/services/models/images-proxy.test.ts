/** Preview images follow the proxy environment variables like every other request of main. */
import http from 'node:http'
import type net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestProxy, type TestProxy } from '../../platform/test-proxy'
import { fetchImage } from './images'

const NAMES = ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy'].flatMap((n) => [n, n.toUpperCase()])
let proxy: TestProxy
let server: http.Server
let origin = ''
const saved: Record<string, string | undefined> = {}

beforeAll(async () => {
  proxy = await startTestProxy()
  server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'image/webp', connection: 'close' }) // every request a new connection
    res.end('WEBP')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
  for (const n of NAMES) saved[n] = process.env[n]
})
afterAll(async () => {
  for (const n of NAMES) {
    if (saved[n] === undefined) delete process.env[n]
    else process.env[n] = saved[n]
  }
  await proxy.close()
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

describe('fetchImage', () => {
  it('goes through HTTP_PROXY, and direct for a NO_PROXY host', async () => {
    for (const n of NAMES) delete process.env[n]
    process.env.HTTP_PROXY = proxy.url
    const a = await fetchImage(`${origin}/a.webp`)
    expect(Buffer.from(a.bytes).toString()).toBe('WEBP')
    expect(proxy.log).toEqual([`CONNECT ${new URL(origin).host}`])
    process.env.NO_PROXY = '127.0.0.1'
    const b = await fetchImage(`${origin}/b.webp`)
    expect(b.contentType).toBe('image/webp')
    expect(proxy.log).toHaveLength(1)
  })
})
