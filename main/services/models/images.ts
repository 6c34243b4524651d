/**
 * Remote preview images, proxied as bytes so the renderer needs no network access and no CSP hole. Only URLs
 * that main itself handed out (from a search or details answer) are fetched: the allow-list keeps the proxy
 * from becoming a way to reach arbitrary hosts (the loopback server's own API, a LAN router, ...).
 */
import got from 'got'
import { agentsFor } from '../../platform/proxy'
import { USER_AGENT } from '../../remote/http'
import { AppError } from '../errors'

const MAX_ALLOWED = 20_000
const MAX_BYTES = 15 * 1024 * 1024
const CACHE_BYTES = 64 * 1024 * 1024

/** Civitai's image CDN serves resized copies when the path's option segment asks for a width. */
export function thumbnailUrl(url: string, width = 450): string {
  try {
    const u = new URL(url)
    if (!/(^|\.)civitai\.com$/.test(u.hostname) || !u.hostname.startsWith('image.')) return url
    const parts = u.pathname.split('/')
    // /<key>/<uuid>/<options>/<name>: the options segment holds `original=true`, `width=450`, ...
    if (parts.length >= 5 && /=/.test(parts[parts.length - 2] ?? '')) {
      parts[parts.length - 2] = `width=${width}`
      u.pathname = parts.join('/')
    }
    return u.href
  } catch {
    return url
  }
}

export type ImageFetcher = (
  url: string,
  signal?: AbortSignal,
) => Promise<{ bytes: Uint8Array; contentType: string }>

export const fetchImage: ImageFetcher = async (url, signal) => {
  const res = await got(url, {
    responseType: 'buffer',
    headers: { 'user-agent': USER_AGENT, accept: 'image/avif,image/webp,image/png,image/jpeg,image/*' },
    timeout: { request: 30_000 },
    retry: { limit: 1 },
    maxRedirects: 3,
    throwHttpErrors: false,
    signal,
    agent: agentsFor(),
  })
  if (res.statusCode !== 200)
    throw new AppError('not-found', `The image server answered HTTP ${res.statusCode}.`)
  const contentType = String(res.headers['content-type'] ?? '')
  if (!contentType.startsWith('image/'))
    throw new AppError('unsupported', `Not an image (${contentType || 'no type'}).`)
  if (res.body.byteLength > MAX_BYTES) throw new AppError('unsupported', 'The image is too large to preview.')
  return { bytes: new Uint8Array(res.body), contentType }
}

export class ImageProxy {
  private readonly allowed = new Set<string>()
  private readonly cache = new Map<string, Uint8Array>()
  private cacheBytes = 0
  private readonly inflight = new Map<string, Promise<Uint8Array>>()

  constructor(private readonly fetcher: ImageFetcher = fetchImage) {}

  /** Remember URLs that appeared in an API answer; returns the URL for chaining. */
  allow(url: string): string {
    if (!/^https?:\/\//i.test(url)) return url
    if (this.allowed.has(url)) {
      this.allowed.delete(url)
    } else if (this.allowed.size >= MAX_ALLOWED) {
      const oldest = this.allowed.values().next().value
      if (oldest !== undefined) this.allowed.delete(oldest)
    }
    this.allowed.add(url)
    return url
  }

  isAllowed(url: string): boolean {
    return this.allowed.has(url)
  }

  async get(url: string): Promise<Uint8Array> {
    if (!this.allowed.has(url)) {
      throw new AppError(
        'forbidden',
        'This image did not come from a Civitai or Hugging Face answer; it is not fetched.',
      )
    }
    const hit = this.cache.get(url)
    if (hit) {
      this.cache.delete(url)
      this.cache.set(url, hit)
      return hit
    }
    let p = this.inflight.get(url)
    if (!p) {
      p = this.fetcher(url).then(({ bytes }) => {
        this.remember(url, bytes)
        return bytes
      })
      this.inflight.set(url, p)
      void p.finally(() => this.inflight.delete(url)).catch(() => undefined)
    }
    return p
  }

  private remember(url: string, bytes: Uint8Array): void {
    this.cache.set(url, bytes)
    this.cacheBytes += bytes.byteLength
    for (const [k, v] of this.cache) {
      if (this.cacheBytes <= CACHE_BYTES) break
      this.cache.delete(k)
      this.cacheBytes -= v.byteLength
    }
  }
}
