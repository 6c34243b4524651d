import { afterEach, describe, expect, it } from 'vitest'
import {
  defaultProxyResolver,
  describeProxy,
  envProxyResolver,
  noProxyMatcher,
  pacProxyResolver,
  parsePacResult,
  parseProxyUrl,
  proxyAuthorization,
  proxyFor,
  ProxyError,
  proxyStatusError,
  setSystemProxyResolver,
} from './proxy'

const u = (s: string): URL => new URL(s)
const href = async (env: Record<string, string>, target: string): Promise<string | null> => {
  const r = envProxyResolver(env)
  return r ? ((await r(u(target)))?.href ?? null) : null
}

describe('environment variables', () => {
  it('picks https_proxy for https and http_proxy for http, lower case first, like curl and npm', async () => {
    const env = {
      https_proxy: 'http://lower-s:1',
      HTTPS_PROXY: 'http://upper-s:2',
      http_proxy: 'http://lower:3',
      HTTP_PROXY: 'http://upper:4',
    }
    expect(await href(env, 'https://civitai.com/api')).toBe('http://lower-s:1/')
    expect(await href(env, 'http://example.com/')).toBe('http://lower:3/')
    expect(await href({ HTTPS_PROXY: 'http://upper-s:2' }, 'https://a.b/')).toBe('http://upper-s:2/')
    expect(await href({ HTTP_PROXY: 'http://upper:4' }, 'http://a.b/')).toBe('http://upper:4/')
    // An empty lower-case value does not hide the upper-case one.
    expect(await href({ https_proxy: '', HTTPS_PROXY: 'http://u:5' }, 'https://a.b/')).toBe('http://u:5/')
  })

  it('https falls back to the http proxy (npm, undici), then ALL_PROXY (curl); a bare host:port is http', async () => {
    expect(await href({ HTTP_PROXY: 'proxy.corp:3128' }, 'https://huggingface.co/')).toBe(
      'http://proxy.corp:3128/',
    )
    expect(await href({ ALL_PROXY: 'http://all:9' }, 'https://a.b/')).toBe('http://all:9/')
    expect(await href({ all_proxy: 'http://all:9' }, 'http://a.b/')).toBe('http://all:9/')
    expect(await href({ HTTPS_PROXY: 'https://tls-proxy:443' }, 'http://a.b/')).toBeNull()
    expect(envProxyResolver({})).toBeNull()
    expect(envProxyResolver({ NO_PROXY: '*', HTTP_PROXY: '' })).toBeNull()
  })

  it('NO_PROXY entries bypass the proxy (names with subdomains, ports, addresses, CIDR, *)', async () => {
    const env = {
      HTTPS_PROXY: 'http://p:1',
      HTTP_PROXY: 'http://p:1',
      no_proxy: 'internal.corp, .lan  10.0.0.0/8,[::1]:8080,example.org:8443',
    }
    expect(await href(env, 'https://internal.corp/')).toBeNull()
    expect(await href(env, 'https://a.b.internal.corp/')).toBeNull()
    expect(await href(env, 'https://notinternal.corp/')).toBe('http://p:1/')
    expect(await href(env, 'http://nas.lan/')).toBeNull()
    expect(await href(env, 'http://10.1.2.3/')).toBeNull()
    expect(await href(env, 'http://11.1.2.3/')).toBe('http://p:1/')
    expect(await href(env, 'http://[::1]:8080/')).toBeNull()
    expect(await href(env, 'http://[::1]:8081/')).toBe('http://p:1/')
    expect(await href(env, 'https://example.org:8443/')).toBeNull()
    expect(await href(env, 'https://example.org/')).toBe('http://p:1/')
    expect(await href({ ...env, NO_PROXY: '*' }, 'https://civitai.com/')).toBe('http://p:1/') // no_proxy wins
    expect(await href({ HTTP_PROXY: 'http://p:1', NO_PROXY: '*' }, 'https://civitai.com/')).toBeNull()
  })
})

describe('noProxyMatcher', () => {
  it("follows curl's rules", () => {
    const m = noProxyMatcher('example.com,*.wild.test,.dot.test,127.0.0.1,fd00::/8,192.168.0.0/16,localhost')
    expect(m(u('http://example.com/'))).toBe(true)
    expect(m(u('http://www.example.com/'))).toBe(true)
    expect(m(u('http://EXAMPLE.COM./'))).toBe(true)
    expect(m(u('http://badexample.com/'))).toBe(false)
    expect(m(u('http://example.com.org/'))).toBe(false)
    expect(m(u('http://a.wild.test/'))).toBe(true)
    expect(m(u('http://wild.test/'))).toBe(true)
    expect(m(u('http://x.dot.test/'))).toBe(true)
    expect(m(u('http://127.0.0.1:5000/'))).toBe(true)
    expect(m(u('http://127.0.0.2/'))).toBe(false)
    expect(m(u('http://[fd12::1]/'))).toBe(true)
    expect(m(u('http://[fe80::1]/'))).toBe(false)
    expect(m(u('http://192.168.44.1/'))).toBe(true)
    expect(m(u('http://[::ffff:192.168.1.1]/'))).toBe(true) // IPv4-mapped IPv6
    expect(m(u('http://localhost:3000/'))).toBe(true)
    expect(noProxyMatcher('')(u('http://localhost/'))).toBe(false) // loopback is not implicit
    expect(noProxyMatcher(undefined)(u('http://a/'))).toBe(false)
    expect(noProxyMatcher('bad/99, ,')(u('http://a/'))).toBe(false)
  })
})

describe('system proxy (Electron resolveProxy answers)', () => {
  it('parses PAC results: the first PROXY / HTTPS entry, DIRECT, SOCKS skipped', () => {
    expect(parsePacResult('PROXY proxy.corp:8080; DIRECT')?.href).toBe('http://proxy.corp:8080/')
    expect(parsePacResult('SOCKS5 s:1080; HTTPS secure.corp:443')?.href).toBe('https://secure.corp/')
    expect(parsePacResult('DIRECT')).toBeNull()
    expect(parsePacResult('DIRECT; PROXY p:1')).toBeNull()
    expect(parsePacResult('')).toBeNull()
    expect(parsePacResult('SOCKS s:1')).toBeNull()
    expect(parsePacResult(' proxy [::1]:3128 ')?.href).toBe('http://[::1]:3128/')
  })

  it('asks the system per URL; environment variables win over it', async () => {
    const asked: string[] = []
    const system = pacProxyResolver(async (url) => {
      asked.push(url)
      return url.includes('intranet') ? 'DIRECT' : 'PROXY sys:3128'
    })
    expect((await system(u('https://civitai.com/api/v1/models')))?.href).toBe('http://sys:3128/')
    expect(await system(u('http://intranet/'))).toBeNull()
    expect(asked).toEqual(['https://civitai.com/api/v1/models', 'http://intranet/'])

    const saved = { ...process.env }
    try {
      for (const k of ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy']) {
        delete process.env[k]
        delete process.env[k.toUpperCase()]
      }
      expect(await proxyFor(u('https://a.b/'))).toBeNull()
      setSystemProxyResolver(system)
      expect((await proxyFor(u('https://a.b/')))?.href).toBe('http://sys:3128/')
      process.env.HTTPS_PROXY = 'http://env:1'
      expect((await proxyFor(u('https://a.b/')))?.href).toBe('http://env:1/')
      expect(defaultProxyResolver()).toBe(defaultProxyResolver()) // parsed once per value
      process.env.NO_PROXY = 'a.b'
      expect(await proxyFor(u('https://a.b/'))).toBeNull() // the environment decided: no system fallback
    } finally {
      setSystemProxyResolver(null)
      process.env = saved
    }
  })
})

describe('proxy settings and credentials', () => {
  afterEach(() => setSystemProxyResolver(null))

  it('never repeats credentials in messages', () => {
    const p = parseProxyUrl('http://alice:s%40cret@proxy.corp:3128') as URL
    expect(describeProxy(p)).toBe('http://proxy.corp:3128')
    expect(proxyAuthorization(p)).toBe(`Basic ${Buffer.from('alice:s@cret').toString('base64')}`)
    expect(proxyAuthorization(u('http://proxy:1'))).toBeUndefined()
    const e407 = proxyStatusError(p, 407, 'civitai.com:443')
    expect(e407).toBeInstanceOf(ProxyError)
    expect(e407.message).toMatch(/^The proxy http:\/\/proxy\.corp:3128 requires authentication \(HTTP 407\)/)
    expect(e407.message).toMatch(/was refused/)
    expect(e407.message).not.toMatch(/alice|s@cret|s%40cret/)
    expect(e407.retryable).toBe(false)
    expect(proxyStatusError(u('http://p:1'), 407, 'x:443').message).toMatch(
      /http:\/\/user:password@host:port/,
    )
    const e502 = proxyStatusError(p, 502, 'civitai.com:443')
    expect(e502.message).toBe(
      'The proxy http://proxy.corp:3128 refused the connection to civitai.com:443 (HTTP 502).',
    )
    expect(e502.retryable).toBe(true)
    let bad: unknown
    try {
      parseProxyUrl('http://bob:hunter2@[bad')
    } catch (e) {
      bad = e
    }
    expect(bad).toBeInstanceOf(ProxyError)
    expect((bad as Error).message).not.toMatch(/hunter2/)
    expect(() => parseProxyUrl('socks5://bob:hunter2@s:1080')).toThrow(
      /^socks5 proxies are not supported \(socks5:\/\/s:1080\)/,
    )
    expect(parseProxyUrl('  ')).toBeNull()
  })
})
