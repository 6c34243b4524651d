import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkImageUrl } from './prepare'
import {
  fetchPublic,
  isPublicAddress,
  type PublicFetchOptions,
  type Resolver,
} from '../../remote/public-fetch'

describe('isPublicAddress', () => {
  it.each([
    '127.0.0.1',
    '127.1.2.3',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '0:0:0:0:0:ffff:7f00:0001',
    '0000:0000:0000:0000:0000:ffff:127.0.0.1',
    '[::ffff:127.0.0.1]',
    '::ffff:10.0.0.1',
    '::127.0.0.1',
    '::ffff:0:127.0.0.1',
    '64:ff9b::127.0.0.1',
    '64:ff9b::7f00:1',
    '64:ff9b::a9fe:a9fe',
    '64:ff9b:1::8.8.8.8',
    '2002:7f00:1::1',
    '2001::1',
    '2001:db8::1',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'fe80::1%eth0',
    'ff02::1',
    'not-an-ip',
  ])('%s is not public', (ip) => expect(isPublicAddress(ip)).toBe(false))

  it.each([
    '8.8.8.8',
    '93.184.216.34',
    '::ffff:8.8.8.8',
    '64:ff9b::8.8.8.8',
    '2606:4700::1111',
    '2002:0808:0808::1',
  ])('%s is public', (ip) => expect(isPublicAddress(ip)).toBe(true))

  it('checkImageUrl refuses the IPv4-mapped spellings of loopback (attack 6)', () => {
    for (const u of [
      'http://[::ffff:127.0.0.1]:8/',
      'http://[::ffff:7f00:1]:8/',
      'http://[0:0:0:0:0:ffff:127.0.0.1]:8/',
      'http://[64:ff9b::127.0.0.1]/',
      'http://[::127.0.0.1]/',
    ])
      expect(() => checkImageUrl(u), u).toThrow(/local and private/)
  })
})

// "Public" test servers listen on 127.0.0.2 (the policy below treats that one loopback alias as public);
// the private target listens on 127.0.0.1 and must never be reached.
const PUBLIC = '127.0.0.2'
const hits: string[] = []
let publicServer: http.Server
let privateServer: http.Server
let pub = ''
let priv = ''

function listen(server: http.Server, host: string): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, host, () => resolve(`http://${host}:${(server.address() as AddressInfo).port}`)),
  )
}

beforeAll(async () => {
  privateServer = http.createServer((req, res) => {
    hits.push(req.url ?? '')
    res.writeHead(200, { 'content-type': 'image/png' }).end('secret')
  })
  publicServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/ok.png') res.writeHead(200, { 'content-type': 'image/png' }).end('PNGDATA')
    else if (url.pathname === '/to-private') res.writeHead(302, { location: `${priv}/secret.png` }).end()
    else if (url.pathname === '/to-name')
      res.writeHead(301, { location: `http://evil.test:${new URL(priv).port}/secret.png` }).end()
    else if (url.pathname === '/loop') res.writeHead(302, { location: '/loop' }).end()
    else if (url.pathname === '/huge') {
      // 2 GB of "PNG", streamed without a length
      res.writeHead(200, { 'content-type': 'image/png' })
      const chunk = Buffer.alloc(1 << 20, 7)
      let sent = 0
      const pump = (): void => {
        while (sent < 2048) {
          sent++
          if (!res.write(chunk)) return void res.once('drain', pump)
        }
        res.end()
      }
      res.on('close', () => (sent = 1e9))
      pump()
    } else if (url.pathname === '/huge-declared')
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(2 ** 31) }).end()
    else if (url.pathname === '/html') res.writeHead(200, { 'content-type': 'text/html' }).end('<p>')
    else res.writeHead(404).end()
  })
  priv = await listen(privateServer, '127.0.0.1')
  pub = await listen(publicServer, PUBLIC)
})
afterAll(() => {
  publicServer.closeAllConnections()
  publicServer.close()
  privateServer.close()
})

let lookups = 0
const resolver: Resolver = async (host) => {
  lookups++
  if (host === 'good.test') return [{ address: PUBLIC, family: 4 }]
  if (host === 'evil.test') return [{ address: '127.0.0.1', family: 4 }] // like an /etc/hosts entry
  if (host === 'mixed.test')
    return [
      { address: PUBLIC, family: 4 },
      { address: '::ffff:127.0.0.1', family: 6 },
    ]
  // DNS rebinding: public on the first answer, loopback afterwards
  if (host === 'rebind.test') return [{ address: lookups % 2 === 1 ? PUBLIC : '127.0.0.1', family: 4 }]
  throw new Error(`ENOTFOUND ${host}`)
}
const opts: PublicFetchOptions = {
  maxBytes: 15 * 1024 * 1024,
  accept: 'image/',
  resolve: resolver,
  allowAddress: (ip) => ip === PUBLIC || isPublicAddress(ip),
}

describe('fetchPublic (attack 6)', () => {
  it('fetches from a public host, by address and by name', async () => {
    const port = new URL(pub).port
    expect(Buffer.from((await fetchPublic(`${pub}/ok.png`, opts)).bytes).toString()).toBe('PNGDATA')
    const r = await fetchPublic(`http://good.test:${port}/ok.png`, opts)
    expect(Buffer.from(r.bytes).toString()).toBe('PNGDATA')
    expect(r.contentType).toBe('image/png')
  })

  it('refuses names that resolve to loopback, even one address of several', async () => {
    const port = new URL(priv).port
    await expect(fetchPublic(`http://evil.test:${port}/secret.png`, opts)).rejects.toThrow(/127\.0\.0\.1/)
    await expect(fetchPublic(`http://mixed.test:${port}/secret.png`, opts)).rejects.toThrow(
      /::ffff:127\.0\.0\.1/,
    )
    await expect(fetchPublic(`http://[::ffff:127.0.0.1]:${port}/x.png`, opts)).rejects.toThrow(/private/)
    expect(hits).toEqual([])
  })

  it('pins the connection to the checked address (DNS rebinding)', async () => {
    const port = new URL(pub).port
    lookups = 0
    const r = await fetchPublic(`http://rebind.test:${port}/ok.png`, opts)
    expect(Buffer.from(r.bytes).toString()).toBe('PNGDATA')
    expect(lookups).toBe(1)
    expect(hits).toEqual([])
  })

  it('checks every redirect again', async () => {
    await expect(fetchPublic(`${pub}/to-private`, opts)).rejects.toThrow(/127\.0\.0\.1.*not fetched/)
    await expect(fetchPublic(`${pub}/to-name`, opts)).rejects.toThrow(/evil\.test.*not fetched/)
    await expect(fetchPublic(`${pub}/loop`, opts)).rejects.toThrow(/more than 3 redirects/)
    expect(hits).toEqual([])
  })

  it('stops a 2 GB body at the cap while it streams', async () => {
    const before = process.memoryUsage().rss
    const t0 = performance.now()
    await expect(fetchPublic(`${pub}/huge`, opts)).rejects.toThrow(/larger than 15 MB/)
    await expect(fetchPublic(`${pub}/huge-declared`, opts)).rejects.toThrow(/larger than 15 MB/)
    expect(performance.now() - t0).toBeLessThan(5000)
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024)
  })

  it('refuses other content types and schemes', async () => {
    await expect(fetchPublic(`${pub}/html`, opts)).rejects.toThrow(/not an image/)
    await expect(fetchPublic('file:///etc/passwd', opts)).rejects.toThrow(/not fetched/)
    await expect(fetchPublic(`http://u:p@good.test/`, opts)).rejects.toThrow(/credentials/)
  })
})
