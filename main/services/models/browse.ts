/** Search, filter options and model pages over the Civitai and Hugging Face clients. */
import got from 'got'
import { agentsFor } from '../../platform/proxy'
import type {
  ModelDetails,
  ModelFilterOptions,
  ModelKind,
  ModelSearchPage,
  NsfwPreference,
  Req,
} from '../../../preload/contract'
import {
  CIVITAI_PERIODS,
  CIVITAI_SORTS,
  type CivitaiClient,
  type CivitaiPeriod,
  type CivitaiSort,
} from '../../remote/civitai/client'
import type { HfSort, HuggingFaceClient } from '../../remote/huggingface/client'
import { USER_AGENT } from '../../remote/http'
import type { RemoteModel, RemotePage, RemoteVersion } from '../../remote/types'
import type { InstalledIndex } from './badges'
import { defaultVersion, toCard, toDetails } from './dto'
import type { ImageProxy } from './images'

const KIND_LABELS: { value: ModelKind; label: string }[] = [
  { value: 'checkpoint', label: 'Checkpoint' },
  { value: 'lora', label: 'LoRA' },
  { value: 'embedding', label: 'Embedding' },
  { value: 'vae', label: 'VAE' },
  { value: 'controlnet', label: 'ControlNet' },
  { value: 'upscaler', label: 'Upscaler' },
]

const CIVITAI_TYPES: Record<ModelKind, string[]> = {
  checkpoint: ['Checkpoint'],
  lora: ['LORA', 'LoCon', 'DoRA'],
  embedding: ['TextualInversion'],
  vae: ['VAE'],
  controlnet: ['Controlnet'],
  upscaler: ['Upscaler'],
  hypernetwork: ['Hypernetwork'],
  other: ['Other'],
}

const FALLBACK_BASES = ['SD 1.5', 'SDXL 1.0', 'Pony', 'Illustrious', 'SD 2.1', 'Flux.1 D']

const HF_SORTS: Record<string, HfSort> = {
  Trending: 'trendingScore',
  'Most Downloaded': 'downloads',
  'Most Liked': 'likes',
  Newest: 'createdAt',
  'Recently Updated': 'lastModified',
}

const HF_BASE_TAGS: Record<string, string> = {
  'SD 1.5': 'stable-diffusion',
  'SDXL 1.0': 'stable-diffusion-xl',
}

export type SearchRequest = Req<'models:search'>

export interface BrowseContext {
  index: InstalledIndex
  pref: NsfwPreference
  proxy: ImageProxy
}

let enumCache: { baseUrl: string; bases: string[] } | null = null

export async function filterOptions(
  source: 'civitai' | 'huggingface',
  civitai: CivitaiClient,
): Promise<ModelFilterOptions> {
  if (source === 'huggingface') {
    return {
      types: KIND_LABELS.filter((k) => k.value === 'checkpoint' || k.value === 'lora'),
      baseModels: Object.keys(HF_BASE_TAGS),
      sorts: Object.keys(HF_SORTS),
      periods: [],
    }
  }
  let bases = enumCache?.baseUrl === civitai.siteUrl ? enumCache.bases : null
  if (!bases) {
    bases = await civitai
      .getEnums()
      .then((e) => (e.baseModels.length ? e.baseModels : FALLBACK_BASES))
      .catch(() => FALLBACK_BASES)
    enumCache = { baseUrl: civitai.siteUrl, bases }
  }
  return { types: KIND_LABELS, baseModels: bases, sorts: [...CIVITAI_SORTS], periods: [...CIVITAI_PERIODS] }
}

export async function searchCivitai(
  client: CivitaiClient,
  req: SearchRequest,
  ctx: BrowseContext,
  signal?: AbortSignal,
): Promise<ModelSearchPage> {
  const sort = CIVITAI_SORTS.find((s) => s === req.sort) as CivitaiSort | undefined
  const period = CIVITAI_PERIODS.find((p) => p === req.period) as CivitaiPeriod | undefined
  const page: RemotePage<RemoteModel> = await client.search(
    {
      query: req.query?.trim() || undefined,
      types: req.types?.flatMap((t) => CIVITAI_TYPES[t]),
      baseModels: req.baseModels,
      sort,
      period,
      nsfw: ctx.pref !== 'hide',
      limit: req.limit ?? 24,
      cursor: req.cursor ?? null,
    },
    signal,
  )
  const items = page.items.filter((m) => ctx.pref !== 'hide' || !m.nsfw)
  return { items: items.map((m) => toCard(m, ctx.index, ctx.pref, ctx.proxy)), nextCursor: page.nextCursor }
}

export async function searchHf(
  client: HuggingFaceClient,
  req: SearchRequest,
  ctx: BrowseContext,
  signal?: AbortSignal,
): Promise<ModelSearchPage> {
  const filter: string[] = []
  if (req.types?.length === 1 && req.types[0] === 'lora') filter.push('lora')
  for (const b of req.baseModels ?? []) {
    const tag = HF_BASE_TAGS[b]
    if (tag) filter.push(tag)
  }
  const page = await client.search(
    {
      search: req.query?.trim() || undefined,
      filter,
      pipelineTag: 'text-to-image',
      sort: HF_SORTS[req.sort ?? ''] ?? 'downloads',
      limit: req.limit ?? 24,
      cursor: req.cursor ?? null,
    },
    signal,
  )
  let items = page.items
  if (req.types?.length) items = items.filter((m) => req.types?.includes(m.kind))
  if (req.baseModels?.length === 1 && req.baseModels[0] === 'SD 1.5') {
    items = items.filter((m) => !m.baseModels.some((b) => b.startsWith('SDXL')))
  }
  if (ctx.pref === 'hide') items = items.filter((m) => !m.nsfw)
  return { items: items.map((m) => toCard(m, ctx.index, ctx.pref, ctx.proxy)), nextCursor: page.nextCursor }
}

export async function civitaiDetails(
  client: CivitaiClient,
  id: string,
  versionId: string | undefined,
  ctx: BrowseContext & { hasKey: boolean },
): Promise<ModelDetails> {
  const model = await client.getModel(id)
  const wanted = versionId ?? defaultVersion(model.versions)?.id
  // The model route omits image generation parameters; the version route has them.
  const full: RemoteVersion | undefined = wanted
    ? await client.getVersion(wanted).catch(() => undefined)
    : undefined
  const selected = full ?? model.versions.find((v) => v.id === wanted)
  return toDetails(
    model,
    selected,
    { readme: null, diffusers: false, hasKey: ctx.hasKey },
    ctx.index,
    ctx.pref,
    ctx.proxy,
  )
}

/** The model card without its YAML front matter, capped. */
export function readmeText(text: string): string | null {
  const body = text.replace(/^---\r?\n[\s\S]*?\r?\n---\r?\n?/, '').trim()
  if (!body) return null
  return body.length > 20_000 ? `${body.slice(0, 20_000)}\n…` : body
}

async function fetchReadme(
  client: HuggingFaceClient,
  repo: string,
  revision: string,
  token?: string,
): Promise<string | null> {
  const url = client.resolveUrl(repo, 'README.md', revision)
  try {
    const res = await got(url, {
      headers: { 'user-agent': USER_AGENT, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      timeout: { request: 15_000 },
      retry: { limit: 0 },
      throwHttpErrors: false,
      agent: agentsFor(client.proxy),
    })
    if (res.statusCode !== 200 || res.body.length > 512 * 1024) return null
    return readmeText(res.body)
  } catch {
    return null
  }
}

export async function hfDetails(
  client: HuggingFaceClient,
  repo: string,
  ctx: BrowseContext & { hasKey: boolean; token?: string },
): Promise<ModelDetails> {
  const model = await client.getModel(repo)
  const version = model.versions[0]
  const files = version?.files ?? []
  const readme =
    files.some((f) => f.path === 'README.md') && version
      ? await fetchReadme(client, repo, version.id, ctx.token)
      : null
  const diffusers = files.some((f) => f.path === 'model_index.json')
  return toDetails(model, version, { readme, diffusers, hasKey: ctx.hasKey }, ctx.index, ctx.pref, ctx.proxy)
}
