/**
 * Hugging Face Hub client (got 14 + zod), returning the shared DTO from ../types; throws RemoteError.
 *
 *   const hf = new HuggingFaceClient({ baseUrl: 'https://huggingface.co', token: 'hf_...' })
 *   const page = await hf.search({ search: 'sdxl', filter: ['diffusers'], pipelineTag: 'text-to-image' })
 *   const model = await hf.getModel('stabilityai/sdxl-turbo')       // one version: the commit, files with sizes + sha256
 *   const files = await hf.listFiles('owner/repo', 'main', { recursive: true })
 *   const pipeline = await hf.diffusersFiles('owner/repo', { variant: 'fp16' })  // what a pipeline install downloads
 *
 * Download URLs are `/resolve/<commit>/<path>` (pinned to the commit the listing came from, so a resumed download
 * cannot mix revisions). Gated repos fail with code 'gated' and a "request access on huggingface.co/<repo>" message.
 */
import { z } from 'zod'
import { RemoteError } from '../errors'
import { headerValue, JsonHttp, parseLinkNext, type RemoteClientConfig } from '../http'
import type { RemoteFile, RemoteModel, RemotePage } from '../types'
import { hfErrorMapper } from './errors'
import { mapHfFile, mapHfModel, markPrimary, resolveUrl, treeEntryInput } from './map'
import { hfModelSchema, hfTreeEntrySchema } from './schemas'

export const HF_BASE_URL = 'https://huggingface.co'

export interface HfFileInfo {
  path: string
  size: number | null
  /** LFS files: the content SHA-256 (X-Linked-Etag). */
  sha256: string | null
  /** Regular files: git blob SHA-1 (ETag). */
  gitSha1: string | null
  commit: string | null
}

export type HfSort = 'trendingScore' | 'downloads' | 'likes' | 'createdAt' | 'lastModified'

export interface HfSearchQuery {
  /** Substring of the repo id. */
  search?: string
  author?: string
  /** Tags, all must match (repeated `filter=`): "diffusers", "lora", "stable-diffusion-xl", ... */
  filter?: string[]
  pipelineTag?: string
  sort?: HfSort
  /** Page size, default 20, max 100. */
  limit?: number
  cursor?: string | null
}

const LIST_EXPAND = [
  'author',
  'pipeline_tag',
  'private',
  'gated',
  'downloads',
  'likes',
  'lastModified',
  'library_name',
  'tags',
  'sha',
]

/** Weight-file extensions other than safetensors that a pipeline download skips when safetensors exist. */
const OTHER_WEIGHTS = /\.(bin|ckpt|pt|pth|msgpack|h5|onnx|onnx_data|pb|mlmodel|gguf)$/i

export class HuggingFaceClient {
  private readonly http: JsonHttp
  readonly baseUrl: string
  /** The proxy choice the client was given (other requests for the same hub use it too: README fetch). */
  readonly proxy: RemoteClientConfig['proxy']

  constructor(config: Partial<RemoteClientConfig> = {}) {
    const baseUrl = (config.baseUrl ?? HF_BASE_URL).replace(/\/+$/, '')
    this.baseUrl = baseUrl
    this.proxy = config.proxy
    this.http = new JsonHttp('Hugging Face', { ...config, baseUrl }, hfErrorMapper(baseUrl))
  }

  async search(q: HfSearchQuery = {}, signal?: AbortSignal): Promise<RemotePage<RemoteModel>> {
    const p = new URLSearchParams()
    if (q.search) p.set('search', q.search)
    if (q.author) p.set('author', q.author)
    for (const f of q.filter ?? []) p.append('filter', f)
    if (q.pipelineTag) p.set('pipeline_tag', q.pipelineTag)
    if (q.sort) p.set('sort', q.sort)
    p.set('limit', String(Math.max(1, Math.min(100, q.limit ?? 20))))
    for (const e of LIST_EXPAND) p.append('expand', e)
    if (q.cursor) p.set('cursor', q.cursor)
    const { data, res } = await this.http.json('/api/models', z.array(z.unknown()), {
      searchParams: p,
      signal,
    })
    const items: RemoteModel[] = []
    for (const raw of data) {
      const parsed = hfModelSchema.safeParse(raw)
      if (parsed.success) items.push(mapHfModel(parsed.data, this.baseUrl, null))
    }
    return { items, nextCursor: cursorOf(parseLinkNext(res.headers.link)) }
  }

  /** Model info with file sizes and LFS hashes (`blobs=true`); `revision` may be a branch, tag or commit. */
  async getModel(repo: string, revision?: string, signal?: AbortSignal): Promise<RemoteModel> {
    const path = revision
      ? `/api/models/${repoPath(repo)}/revision/${encodeURIComponent(revision)}`
      : `/api/models/${repoPath(repo)}`
    const { data } = await this.http.json(path, hfModelSchema, {
      searchParams: new URLSearchParams({ blobs: 'true' }),
      signal,
    })
    return mapHfModel(data, this.baseUrl, revision ?? null)
  }

  /** Files (directories omitted) under `path`, following the tree's Link paging. */
  async listFiles(
    repo: string,
    revision = 'main',
    opts: { path?: string; recursive?: boolean; signal?: AbortSignal } = {},
  ): Promise<RemoteFile[]> {
    const sub = opts.path ? `/${opts.path.split('/').map(encodeURIComponent).join('/')}` : ''
    let url: string | undefined =
      `/api/models/${repoPath(repo)}/tree/${encodeURIComponent(revision)}${sub}?recursive=${opts.recursive ? 'true' : 'false'}&expand=false`
    const files: RemoteFile[] = []
    for (let pages = 0; url && pages < 1000; pages++) {
      const { data, res } = await this.http.json(url, z.array(hfTreeEntrySchema), { signal: opts.signal })
      for (const e of data)
        if (e.type === 'file') files.push(mapHfFile(this.baseUrl, repo, revision, treeEntryInput(e)))
      url = parseLinkNext(res.headers.link)
    }
    markPrimary(files)
    return files
  }

  /**
   * Size, SHA-256 (LFS files) and commit of one file from the hub's resolve headers, without downloading it.
   * Gated / private repos fail here with the same errors a download would get.
   */
  async fileInfo(repo: string, path: string, revision = 'main', signal?: AbortSignal): Promise<HfFileInfo> {
    let url = this.resolveUrl(repo, path, revision)
    for (let hop = 0; hop < 5; hop++) {
      const res = await this.http.request(url, { method: 'HEAD', followRedirect: false, signal })
      const h = (name: string): string | undefined => headerValue(res.headers, name)
      const commit = h('x-repo-commit') ?? null
      const linkedEtag = h('x-linked-etag')
      if (res.status >= 300 && linkedEtag) {
        const sha = stripEtag(linkedEtag)
        const size = Number(h('x-linked-size'))
        return {
          path,
          size: Number.isFinite(size) ? size : null,
          sha256: /^[0-9a-f]{64}$/.test(sha) ? sha : null,
          gitSha1: null,
          commit,
        }
      }
      const location = h('location')
      if (res.status >= 300 && location) {
        url = new URL(location, url).href
        continue
      }
      const size = Number(h('content-length'))
      const etag = stripEtag(h('etag') ?? '')
      return {
        path,
        size: Number.isFinite(size) ? size : null,
        sha256: null,
        gitSha1: /^[0-9a-f]{40}$/.test(etag) ? etag : null,
        commit,
      }
    }
    throw new RemoteError('bad-response', `Hugging Face redirected too many times for ${repo}/${path}.`)
  }

  /** Resolve URL of one file (redirects to the CDN for LFS files). */
  resolveUrl(repo: string, path: string, revision = 'main'): string {
    return resolveUrl(this.baseUrl, repo, revision, path)
  }

  /**
   * The files a diffusers pipeline install needs, pinned to one commit: model_index.json plus each component
   * folder it names (configs, tokenizer files, weights). Weights prefer `.safetensors`; with `variant` ('fp16')
   * a component's `*.fp16.safetensors` replaces its full-precision file when present.
   */
  async diffusersFiles(
    repo: string,
    opts: { revision?: string; variant?: string; signal?: AbortSignal } = {},
  ): Promise<RemoteFile[]> {
    const info = await this.getModel(repo, opts.revision, opts.signal)
    const commit = info.versions[0]?.id ?? opts.revision ?? 'main'
    const all = await this.listFiles(repo, commit, { recursive: true, signal: opts.signal })
    const index = all.find((f) => f.path === 'model_index.json')
    if (!index)
      throw new RemoteError('not-found', `${repo} is not a diffusers pipeline (no model_index.json).`)
    const { data } = await this.http.json(
      this.resolveUrl(repo, 'model_index.json', commit),
      z.record(z.string(), z.unknown()),
      {
        signal: opts.signal,
      },
    )
    const components = Object.entries(data)
      .filter(([k, v]) => !k.startsWith('_') && Array.isArray(v) && v[0] !== null)
      .map(([k]) => k)
    const out: RemoteFile[] = [index]
    for (const comp of components) {
      const inside = all.filter((f) => f.path.startsWith(`${comp}/`))
      const weights = inside.filter((f) => f.format === 'safetensors')
      const variantWeights = opts.variant ? weights.filter((f) => f.path.includes(`.${opts.variant}.`)) : []
      const plainWeights = weights.filter((f) => !/\.(fp16|fp32|bf16|fp8|non_ema|ema_only)\./.test(f.path))
      const chosen =
        variantWeights.length > 0 ? variantWeights : plainWeights.length > 0 ? plainWeights : weights
      const useOthers = weights.length === 0
      for (const f of inside) {
        if (f.format === 'safetensors') {
          if (chosen.includes(f)) out.push(f)
        } else if (OTHER_WEIGHTS.test(f.path)) {
          if (useOthers && f.format === 'ckpt') out.push(f)
        } else out.push(f)
      }
    }
    return out.map((f) => ({ ...f, primary: false }))
  }
}

function repoPath(repo: string): string {
  // `owner/name` goes raw: HF rejects %2F in repo ids on tree/raw/resolve URLs.
  return repo.split('/').map(encodeURIComponent).join('/')
}

function cursorOf(next: string | undefined): string | null {
  if (!next) return null
  try {
    return new URL(next).searchParams.get('cursor')
  } catch {
    return null
  }
}

function stripEtag(v: string): string {
  return v.replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase()
}
