/** Hugging Face JSON → the shared RemoteModel / RemoteVersion / RemoteFile DTO. */
import type { RemoteFile, RemoteFileFormat, RemoteModel, RemoteModelKind, RemoteVersion } from '../types'
import type { HfModel, HfTreeEntry } from './schemas'

export function hfKind(
  tags: string[],
  library: string | null | undefined,
  pipeline: string | null | undefined,
): RemoteModelKind {
  const t = new Set(tags.map((x) => x.toLowerCase()))
  if (t.has('lora') || [...t].some((x) => x.startsWith('base_model:adapter:'))) return 'lora'
  if (t.has('controlnet')) return 'controlnet'
  if (t.has('textual_inversion')) return 'embedding'
  if (t.has('vae')) return 'vae'
  // Upscalers (ESRGAN / Real-ESRGAN / compact .pth files) by their usual tags.
  if (
    ['super-resolution', 'esrgan', 'real-esrgan', 'realesrgan', 'upscaler', 'image-upscaling'].some((x) =>
      t.has(x),
    )
  )
    return 'upscaler'
  if (library === 'diffusers' || library === 'diffusion-single-file' || pipeline === 'text-to-image')
    return 'checkpoint'
  return 'other'
}

/** A Civitai-style base model name when the tags say it unambiguously. */
export function hfBaseModel(tags: string[]): string | null {
  const t = tags.map((x) => x.toLowerCase())
  const has = (re: RegExp): boolean => t.some((x) => re.test(x))
  if (has(/stable-diffusion-xl|^diffusers:stablediffusionxl/)) return 'SDXL 1.0'
  if (has(/^base_model:(adapter:|finetune:)?.*stable-diffusion-v1-5/)) return 'SD 1.5'
  if (has(/^base_model:(adapter:|finetune:)?.*stable-diffusion-2/)) return 'SD 2.1'
  return null
}

export function fileFormat(path: string): RemoteFileFormat | null {
  const lower = path.toLowerCase()
  if (lower.endsWith('.safetensors')) return 'safetensors'
  if (/\.(ckpt|bin|pt|pth)$/.test(lower)) return 'ckpt'
  if (lower.endsWith('.gguf')) return 'gguf'
  if (lower.endsWith('.onnx') || lower.endsWith('.onnx_data')) return 'onnx'
  if (lower.endsWith('.mlmodelc') || lower.endsWith('.mlpackage')) return 'coreml'
  return null
}

function precision(path: string): string | null {
  const m = /\.(fp16|fp32|bf16|fp8)\./i.exec(path) ?? /[._-](fp16|fp32|bf16|fp8)[._-]/i.exec(path)
  return m?.[1]?.toLowerCase() ?? null
}

export function resolveUrl(baseUrl: string, repo: string, revision: string, path: string): string {
  const enc = path.split('/').map(encodeURIComponent).join('/')
  return `${baseUrl}/${repo}/resolve/${encodeURIComponent(revision)}/${enc}`
}

export interface HfFileInput {
  path: string
  size: number | null
  gitOid: string | null
  lfsSha256: string | null
}

export function mapHfFile(baseUrl: string, repo: string, revision: string, f: HfFileInput): RemoteFile {
  const hashes: Record<string, string> = {}
  if (f.gitOid) hashes.gitSha1 = f.gitOid
  if (f.lfsSha256) hashes.SHA256 = f.lfsSha256
  return {
    id: f.path,
    name: f.path.split('/').pop() ?? f.path,
    path: f.path,
    sizeBytes: f.size,
    sizeExact: f.size !== null,
    fileType: f.lfsSha256 ? 'lfs' : 'regular',
    format: fileFormat(f.path),
    precision: precision(f.path),
    sizeVariant: null,
    primary: false,
    sha256: f.lfsSha256 && /^[0-9a-f]{64}$/i.test(f.lfsSha256) ? f.lfsSha256.toLowerCase() : null,
    hashes,
    downloadUrl: resolveUrl(baseUrl, repo, revision, f.path),
    pickleScan: null,
    virusScan: null,
    scanMessage: null,
  }
}

export function treeEntryInput(e: HfTreeEntry): HfFileInput {
  return {
    path: e.path,
    size: e.size ?? e.lfs?.size ?? null,
    gitOid: e.oid ?? null,
    lfsSha256: e.lfs?.oid ?? null,
  }
}

/** Mark the file a "download this model" button should take: the one root-level weights file, if any. */
export function markPrimary(files: RemoteFile[]): void {
  const weights = files.filter(
    (f) => !f.path.includes('/') && (f.format === 'safetensors' || f.format === 'ckpt'),
  )
  const best = weights.find((f) => f.format === 'safetensors') ?? weights[0]
  if (best) best.primary = true
}

export function mapHfModel(m: HfModel, baseUrl: string, revision: string | null): RemoteModel {
  const tags = m.tags ?? []
  const sha = m.sha ?? null
  const rev = sha ?? revision ?? 'main'
  const hasSiblings = Array.isArray(m.siblings)
  const files = (m.siblings ?? []).map((s) =>
    mapHfFile(baseUrl, m.id, rev, {
      path: s.rfilename,
      size: s.lfs?.size ?? s.size ?? null,
      gitOid: s.blobId ?? null,
      lfsSha256: s.lfs?.sha256 ?? s.lfs?.oid ?? null,
    }),
  )
  markPrimary(files)
  const baseModel = hfBaseModel(tags)
  const versions: RemoteVersion[] = hasSiblings
    ? [
        {
          source: 'huggingface',
          id: rev,
          modelId: m.id,
          name: revision ?? 'main',
          description: null,
          baseModel,
          baseModelType: null,
          trainedWords: [],
          publishedAt: m.lastModified ?? null,
          earlyAccess: false,
          earlyAccessEndsAt: null,
          files,
          images: [],
          downloadUrl: files.find((f) => f.primary)?.downloadUrl ?? null,
          stats: { downloads: m.downloads ?? null, likes: m.likes ?? null },
          air: null,
        },
      ]
    : []
  const gated = m.gated === 'auto' || m.gated === 'manual' ? m.gated : m.gated === true ? 'manual' : false
  const license = tags.find((t) => t.startsWith('license:'))?.slice('license:'.length) ?? null
  return {
    source: 'huggingface',
    id: m.id,
    name: m.id.split('/').pop() ?? m.id,
    description: null,
    kind: hfKind(tags, m.library_name, m.pipeline_tag),
    rawType: m.pipeline_tag ?? m.library_name ?? null,
    nsfw: tags.includes('not-for-all-audiences'),
    nsfwLevel: null,
    tags,
    creator: m.author ?? m.id.split('/')[0] ?? null,
    stats: { downloads: m.downloads ?? null, likes: m.likes ?? null },
    baseModels: baseModel ? [baseModel] : [],
    versions,
    gated,
    archived: m.disabled === true,
    license,
    commercialUse: [],
    pageUrl: `${baseUrl}/${m.id}`,
    updatedAt: m.lastModified ?? null,
  }
}
