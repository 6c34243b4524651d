import { afterEach, describe, expect, it } from 'vitest'
import { proxyFor, setSystemProxyResolver } from '../platform/proxy'
import { useSystemProxy } from './proxy'

describe('useSystemProxy', () => {
  const saved = { ...process.env }
  afterEach(() => {
    setSystemProxyResolver(null)
    process.env = { ...saved }
  })

  it('asks the session per URL when no proxy variable is set; the environment wins otherwise', async () => {
    for (const k of ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy']) {
      delete process.env[k]
      delete process.env[k.toUpperCase()]
    }
    const asked: string[] = []
    useSystemProxy({
      resolveProxy: async (url: string) => {
        asked.push(url)
        return url.startsWith('https://civitai.com') ? 'PROXY corp:8080; DIRECT' : 'DIRECT'
      },
    })
    expect((await proxyFor(new URL('https://civitai.com/api/v1/models')))?.href).toBe('http://corp:8080/')
    expect(await proxyFor(new URL('http://127.0.0.1:7860/'))).toBeNull()
    expect(asked).toEqual(['https://civitai.com/api/v1/models', 'http://127.0.0.1:7860/'])
    process.env.https_proxy = 'http://env-proxy:3128'
    expect((await proxyFor(new URL('https://civitai.com/')))?.href).toBe('http://env-proxy:3128/')
    expect(asked).toHaveLength(2)
  })
})
