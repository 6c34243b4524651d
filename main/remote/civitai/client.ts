/**
 * Civitai REST client (got 14 + zod). Every method returns the shared DTO from ../types and throws RemoteError.
 *
 *   const civitai = new CivitaiClient({ baseUrl: 'https://civitai.com', token: apiKey })
 *   const page = await civitai.search({ query: 'anime', types: ['LORA'], baseModels: ['SDXL 1.0'], limit: 20 })
 *   const next = await civitai.search({ ...sameQuery, cursor: page.nextCursor })
 *   const version = await civitai.getVersion('2514310')          // files, hashes, images with generation meta
 *   const match = await civitai.getVersionByHash(sha256)          // null when Civitai does not know the file
 *
 * Paging is cursor-only (page numbers are capped by Civitai at page*limit <= 1000 and refused with `query`).
 * The API key goes in `Authorization: Bearer` to the configured origin only; the User-Agent is Atelier's own
 * (a browser-like UA makes Civitai answer with HTML and login redirects).
 */
import { z } from 'zod'
import { RemoteError } from '../errors'
import { JsonHttp, type RemoteClientConfig } from '../http'
import type { RemoteImage, RemoteModel, RemotePage, RemoteVersion } from '../types'
import { civitaiError } from './errors'
import { mapImage, mapModel, mapVersion } from './map'
import {
  civitaiEnumsSchema,
  civitaiImageSchema,
  civitaiListSchema,
  civitaiModelSchema,
  civitaiVersionSchema,
} from './schemas'

export const CIVITAI_BASE_URL = 'https://civitai.com'

export const CIVITAI_SORTS = [
  'Highest Rated',
  'Most Downloaded',
  'Most Liked',
  'Most Discussed',
  'Most Collected',
  'Most Images',
  'Newest',
  'Oldest',
] as const
export type CivitaiSort = (typeof CIVITAI_SORTS)[number]
export const CIVITAI_PERIODS = ['AllTime', 'Year', 'Month', 'Week', 'Day'] as const
export type CivitaiPeriod = (typeof CIVITAI_PERIODS)[number]

export interface CivitaiSearchQuery {
  query?: string
  /** ModelType names ("Checkpoint", "LORA", ...); sent as repeated params. */
  types?: string[]
  /** Base model names ("SD 1.5", "SDXL 1.0", "Pony", ...); also narrows each model's versions. */
  baseModels?: string[]
  sort?: CivitaiSort
  period?: CivitaiPeriod
  /** true: all browsing levels; false/undefined: PG only (Civitai's default). */
  nsfw?: boolean
  /** Browsing-level bitmask (PG=1, PG13=2, R=4, X=8, XXX=16), sent when given. */
  browsingLevel?: number
  tag?: string
  username?: string
  /** 1..100, default 20. */
  limit?: number
  /** From a previous page's `nextCursor`. */
  cursor?: string | null
  primaryFileOnly?: boolean
}

export interface CivitaiEnums {
  modelTypes: string[]
  fileTypes: string[]
  /** ActiveBaseModel when the server has it, else BaseModel. */
  baseModels: string[]
  baseModelTypes: string[]
}

export interface CivitaiImagesQuery {
  modelVersionId?: string
  modelId?: string
  limit?: number
  nsfw?: boolean
}

const imagesSchema = z.object({ items: z.array(civitaiImageSchema) })

export class CivitaiClient {
  private readonly http: JsonHttp
  /** Site origin for page links (the API origin, so fixtures and mirrors link to themselves). */
  readonly siteUrl: string

  constructor(config: Partial<RemoteClientConfig> = {}) {
    this.http = new JsonHttp(
      'Civitai',
      { ...config, baseUrl: config.baseUrl ?? CIVITAI_BASE_URL },
      civitaiError,
    )
    this.siteUrl = this.http.baseUrl
  }

  async search(q: CivitaiSearchQuery = {}, signal?: AbortSignal): Promise<RemotePage<RemoteModel>> {
    const p = new URLSearchParams()
    p.set('limit', String(Math.max(1, Math.min(100, q.limit ?? 20))))
    if (q.query) p.set('query', q.query)
    for (const t of q.types ?? []) p.append('types', t)
    for (const b of q.baseModels ?? []) p.append('baseModels', b)
    if (q.sort) p.set('sort', q.sort)
    if (q.period) p.set('period', q.period)
    if (q.nsfw !== undefined) p.set('nsfw', String(q.nsfw))
    if (q.browsingLevel !== undefined) p.set('browsingLevel', String(q.browsingLevel))
    if (q.tag) p.set('tag', q.tag)
    if (q.username) p.set('username', q.username)
    if (q.primaryFileOnly) p.set('primaryFileOnly', 'true')
    if (q.cursor) p.set('cursor', q.cursor)
    const { data } = await this.http.json('/api/v1/models', civitaiListSchema, { searchParams: p, signal })
    const items: RemoteModel[] = []
    for (const raw of data.items) {
      const parsed = civitaiModelSchema.safeParse(raw)
      if (parsed.success) items.push(mapModel(parsed.data, this.siteUrl))
    }
    const next = data.metadata?.nextCursor
    return { items, nextCursor: next === undefined || next === null || next === '' ? null : String(next) }
  }

  async getModel(id: string | number, signal?: AbortSignal): Promise<RemoteModel> {
    const { data } = await this.http.json(
      `/api/v1/models/${encodeURIComponent(String(id))}`,
      civitaiModelSchema,
      { signal },
    )
    return mapModel(data, this.siteUrl)
  }

  async getVersion(id: string | number, signal?: AbortSignal): Promise<RemoteVersion> {
    const { data } = await this.http.json(
      `/api/v1/model-versions/${encodeURIComponent(String(id))}`,
      civitaiVersionSchema,
      {
        signal,
      },
    )
    return mapVersion(data, String(data.modelId ?? ''))
  }

  /** Any hash kind Civitai stores (SHA256, AutoV1/V2/V3, BLAKE3, CRC32), case-insensitive; null when unknown. */
  async getVersionByHash(hash: string, signal?: AbortSignal): Promise<RemoteVersion | null> {
    if (!/^[0-9a-fA-F]{8,64}$/.test(hash))
      throw new RemoteError('bad-request', `"${hash}" is not a model hash.`)
    try {
      const { data } = await this.http.json(
        `/api/v1/model-versions/by-hash/${hash.toUpperCase()}`,
        civitaiVersionSchema,
        {
          signal,
        },
      )
      return mapVersion(data, String(data.modelId ?? ''))
    } catch (err) {
      if (err instanceof RemoteError && err.code === 'not-found') return null
      throw err
    }
  }

  /** Bulk lookup by full SHA-256 (POST, 100 per request). Unknown hashes are simply absent from the result. */
  async getVersionsByHashes(sha256s: string[], signal?: AbortSignal): Promise<RemoteVersion[]> {
    const out: RemoteVersion[] = []
    const hashes = sha256s.filter((h) => /^[0-9a-fA-F]{64}$/.test(h)).map((h) => h.toUpperCase())
    for (let i = 0; i < hashes.length; i += 100) {
      const { data } = await this.http.json('/api/v1/model-versions/by-hash', z.array(z.unknown()), {
        method: 'POST',
        json: hashes.slice(i, i + 100),
        signal,
      })
      for (const raw of data) {
        const parsed = civitaiVersionSchema.safeParse(raw)
        if (parsed.success) out.push(mapVersion(parsed.data, String(parsed.data.modelId ?? '')))
      }
    }
    return out
  }

  async getImages(q: CivitaiImagesQuery, signal?: AbortSignal): Promise<RemoteImage[]> {
    const p = new URLSearchParams({ withMeta: 'true', limit: String(Math.min(200, q.limit ?? 20)) })
    if (q.modelVersionId) p.set('modelVersionId', q.modelVersionId)
    if (q.modelId) p.set('modelId', q.modelId)
    if (q.nsfw !== undefined) p.set('nsfw', String(q.nsfw))
    const { data } = await this.http.json('/api/v1/images', imagesSchema, { searchParams: p, signal })
    return data.items.map(mapImage)
  }

  async getEnums(signal?: AbortSignal): Promise<CivitaiEnums> {
    const { data } = await this.http.json('/api/v1/enums', civitaiEnumsSchema, { signal })
    return {
      modelTypes: data.ModelType ?? [],
      fileTypes: data.ModelFileType ?? [],
      baseModels: data.ActiveBaseModel ?? data.BaseModel ?? [],
      baseModelTypes: data.BaseModelType ?? [],
    }
  }

  /** The download route for one file of a version (`?fileId=` is exact, unlike type/format/fp). */
  downloadUrl(versionId: string | number, fileId?: string | number): string {
    const u = this.http.resolve(`/api/download/models/${encodeURIComponent(String(versionId))}`)
    if (fileId !== undefined) u.searchParams.set('fileId', String(fileId))
    return u.href
  }
}
