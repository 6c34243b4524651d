/** Civitai responses → the shared RemoteModel / RemoteVersion / RemoteFile DTO. */
import type {
  JsonValue,
  RemoteFile,
  RemoteFileFormat,
  RemoteImage,
  RemoteImageMeta,
  RemoteModel,
  RemoteModelKind,
  RemoteScanResult,
  RemoteVersion,
} from '../types'
import type { CivitaiFile, CivitaiImage, CivitaiModel, CivitaiVersion } from './schemas'

const KINDS: Record<string, RemoteModelKind> = {
  checkpoint: 'checkpoint',
  lora: 'lora',
  locon: 'lora',
  lycoris: 'lora',
  dora: 'lora',
  textualinversion: 'embedding',
  vae: 'vae',
  controlnet: 'controlnet',
  upscaler: 'upscaler',
  hypernetwork: 'hypernetwork',
}

export function civitaiKind(type: string | null | undefined): RemoteModelKind {
  return KINDS[(type ?? '').toLowerCase()] ?? 'other'
}

const FORMATS: Record<string, RemoteFileFormat> = {
  safetensor: 'safetensors',
  pickletensor: 'ckpt',
  gguf: 'gguf',
  diffusers: 'diffusers',
  onnx: 'onnx',
  'core ml': 'coreml',
  other: 'other',
}

function scan(v: string | null | undefined): RemoteScanResult {
  const s = (v ?? '').toLowerCase()
  return s === 'pending' || s === 'success' || s === 'danger' || s === 'error' ? s : null
}

export function toJsonValue(v: unknown): JsonValue {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v
  if (typeof v === 'number') return Number.isFinite(v) ? v : null
  if (Array.isArray(v)) return v.map(toJsonValue)
  if (typeof v === 'object') {
    const out: { [key: string]: JsonValue } = {}
    for (const [k, val] of Object.entries(v as Record<string, unknown>))
      if (val !== undefined) out[k] = toJsonValue(val)
    return out
  }
  return null
}

const numOrNull = (v: unknown): number | null =>
  typeof v === 'number' && Number.isFinite(v)
    ? v
    : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))
      ? Number(v)
      : null
const strOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null)

export function mapImageMeta(meta: Record<string, unknown> | null | undefined): RemoteImageMeta | null {
  if (!meta) return null
  // The legacy /images path nests `{ id, meta: {...} }`.
  const inner =
    meta.meta && typeof meta.meta === 'object' && !Array.isArray(meta.meta)
      ? (meta.meta as Record<string, unknown>)
      : meta
  const raw = toJsonValue(inner)
  return {
    prompt: strOrNull(inner.prompt),
    negativePrompt: strOrNull(inner.negativePrompt),
    seed: numOrNull(inner.seed),
    steps: numOrNull(inner.steps),
    sampler: strOrNull(inner.sampler),
    cfgScale: numOrNull(inner.cfgScale),
    clipSkip: numOrNull(inner.clipSkip),
    size: strOrNull(inner.Size),
    raw: raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : {},
  }
}

const LEGACY_LEVEL: Record<string, number> = { None: 1, Soft: 3, Mature: 7, X: 31, Blocked: 32 }

export function mapImage(img: CivitaiImage): RemoteImage {
  const level =
    typeof img.nsfwLevel === 'number'
      ? img.nsfwLevel
      : (img.browsingLevel ?? LEGACY_LEVEL[img.nsfwLevel ?? ''] ?? null)
  return {
    url: img.url,
    width: img.width ?? null,
    height: img.height ?? null,
    nsfwLevel: level,
    type: img.type ?? 'image',
    blurHash: img.hash ?? null,
    meta: mapImageMeta(img.meta),
  }
}

export function mapFile(f: CivitaiFile, versionDownloadUrl: string | null): RemoteFile {
  const hashes: Record<string, string> = {}
  for (const [k, v] of Object.entries(f.hashes ?? {})) if (typeof v === 'string' && v) hashes[k] = v
  const sha = hashes.SHA256
  const format = f.metadata?.format ? (FORMATS[f.metadata.format.toLowerCase()] ?? 'other') : null
  return {
    id: String(f.id),
    name: f.name,
    path: f.name,
    sizeBytes: typeof f.sizeKB === 'number' ? Math.round(f.sizeKB * 1024) : null,
    sizeExact: false,
    fileType: f.type ?? 'Model',
    format,
    precision: f.metadata?.fp ?? null,
    sizeVariant: f.metadata?.size ?? null,
    primary: f.primary === true,
    sha256: sha && /^[0-9a-f]{64}$/i.test(sha) ? sha.toLowerCase() : null,
    hashes,
    // `?fileId=` picks exactly this file; the type/format/fp URLs the API emits can 404 or pick a sibling.
    downloadUrl: fileDownloadUrl(f, versionDownloadUrl),
    pickleScan: scan(f.pickleScanResult),
    virusScan: scan(f.virusScanResult),
    scanMessage:
      f.virusScanMessage ?? (scan(f.pickleScanResult) === 'success' ? null : (f.pickleScanMessage ?? null)),
  }
}

function fileDownloadUrl(f: CivitaiFile, versionDownloadUrl: string | null): string {
  const base = f.downloadUrl ?? versionDownloadUrl
  if (!base) return ''
  const u = new URL(base)
  u.search = ''
  u.searchParams.set('fileId', String(f.id))
  return u.href
}

export function mapVersion(v: CivitaiVersion, modelId: string): RemoteVersion {
  const downloadUrl = v.downloadUrl ?? null
  const files = (v.files ?? []).map((f) => mapFile(f, downloadUrl))
  if (files.length > 0 && !files.some((f) => f.primary)) {
    const first = files[0]
    if (first) first.primary = true
  }
  const earlyAccessEndsAt = v.earlyAccessDeadline ?? v.earlyAccessEndsAt ?? v.paidAccess?.endsAt ?? null
  const gated = v.availability === 'EarlyAccess' || Boolean(v.paidAccess) || Boolean(v.earlyAccessDeadline)
  const ea =
    gated &&
    (earlyAccessEndsAt === null ||
      Date.parse(earlyAccessEndsAt) > Date.now() ||
      v.paidAccess?.permanent === true)
  return {
    source: 'civitai',
    id: String(v.id),
    modelId: String(v.modelId ?? modelId),
    name: v.name,
    description: v.description ?? null,
    baseModel: v.baseModel ?? null,
    baseModelType: v.baseModelType ?? null,
    trainedWords: v.trainedWords ?? [],
    publishedAt: v.publishedAt ?? v.createdAt ?? null,
    earlyAccess: ea,
    earlyAccessEndsAt: ea ? earlyAccessEndsAt : null,
    files,
    images: (v.images ?? []).map(mapImage),
    downloadUrl,
    stats: { downloads: v.stats?.downloadCount ?? null, likes: v.stats?.thumbsUpCount ?? null },
    air: v.air ?? null,
  }
}

export function mapModel(m: CivitaiModel, siteUrl: string): RemoteModel {
  const id = String(m.id)
  const versions = (m.modelVersions ?? []).map((v) => mapVersion(v, id))
  const baseModels = m.baseModels ?? [
    ...new Set(versions.map((v) => v.baseModel).filter((b): b is string => !!b)),
  ]
  return {
    source: 'civitai',
    id,
    name: m.name,
    description: m.description ?? null,
    kind: civitaiKind(m.type),
    rawType: m.type ?? null,
    nsfw: m.nsfw ?? false,
    nsfwLevel: m.nsfwLevel ?? null,
    tags: (m.tags ?? []).map((t) => (typeof t === 'string' ? t : t.name)),
    creator: m.creator?.username ?? null,
    stats: { downloads: m.stats?.downloadCount ?? null, likes: m.stats?.thumbsUpCount ?? null },
    baseModels,
    versions,
    gated: false,
    archived: m.mode === 'Archived',
    license: null,
    commercialUse: parseCommercialUse(m.allowCommercialUse),
    pageUrl: `${siteUrl}/models/${id}`,
    updatedAt: versions[0]?.publishedAt ?? null,
  }
}

/** `"{Image,RentCivit}"` or `["Image","RentCivit"]` → string[]. */
export function parseCommercialUse(v: string | string[] | null | undefined): string[] {
  if (!v) return []
  if (Array.isArray(v)) return v
  return v
    .replace(/^\{|\}$/g, '')
    .split(',')
    .map((s) => s.trim().replace(/^"|"$/g, ''))
    .filter(Boolean)
}
