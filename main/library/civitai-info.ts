import type { RemoteVersion } from '../remote/types'
import type { CivitaiFileJson, CivitaiRef, CivitaiVersionJson, LookupByHashes, ModelType } from './types'

/** What a Civitai model-version JSON contributes to a record. */
export interface CivitaiFacts {
  civitai: CivitaiRef
  baseModel: string | null
  trainedWords: string[]
  description: string | null
  nsfw: boolean
  /** Lowercase SHA-256 Civitai lists for the file that is (most likely) this one. */
  expectedSha256: string | null
  type: ModelType | null
}

export function civitaiModelType(t: string | null | undefined): ModelType | null {
  switch ((t ?? '').toLowerCase()) {
    case 'checkpoint':
      return 'checkpoint'
    case 'lora':
    case 'locon':
    case 'lycoris':
    case 'dora':
      return 'lora'
    case 'textualinversion':
      return 'embedding'
    case 'vae':
      return 'vae'
    case 'upscaler':
      return 'upscaler'
    default:
      return null
  }
}

function fileSha(f: CivitaiFileJson): string | null {
  const h = f.hashes
  if (!h) return null
  for (const [k, v] of Object.entries(h))
    if (k.toUpperCase() === 'SHA256' && typeof v === 'string') return v.toLowerCase()
  return null
}

/** Pick the Civitai file entry that describes our file: by hash, then by name, then the primary model file. */
export function pickCivitaiFile(
  info: CivitaiVersionJson,
  fileName: string,
  sha256: string | null,
): CivitaiFileJson | null {
  const files = Array.isArray(info.files) ? info.files : []
  if (sha256) {
    const byHash = files.find((f) => fileSha(f) === sha256.toLowerCase())
    if (byHash) return byHash
  }
  const byName = files.find(
    (f) => typeof f.name === 'string' && f.name.toLowerCase() === fileName.toLowerCase(),
  )
  if (byName) return byName
  return files.find((f) => f.primary === true) ?? files.find((f) => f.type === 'Model') ?? files[0] ?? null
}

export function civitaiFacts(
  info: CivitaiVersionJson,
  fileName: string,
  sha256: string | null,
): CivitaiFacts {
  const file = pickCivitaiFile(info, fileName, sha256)
  const desc = typeof info.description === 'string' && info.description.trim() ? info.description : null
  return {
    civitai: {
      modelId: info.modelId,
      versionId: info.id,
      modelName: typeof info.model?.name === 'string' ? info.model.name : null,
      versionName: typeof info.name === 'string' ? info.name : null,
      modelType: typeof info.model?.type === 'string' ? info.model.type : null,
    },
    baseModel: typeof info.baseModel === 'string' && info.baseModel ? info.baseModel : null,
    trainedWords: Array.isArray(info.trainedWords)
      ? info.trainedWords
          .filter((w): w is string => typeof w === 'string' && w.trim().length > 0)
          .map((w) => w.trim())
      : [],
    description: desc,
    nsfw: info.model?.nsfw === true,
    expectedSha256: file ? fileSha(file) : null,
    type: civitaiModelType(info.model?.type),
  }
}

const CIVITAI_TYPE: Record<string, string> = {
  checkpoint: 'Checkpoint',
  lora: 'LORA',
  embedding: 'TextualInversion',
  vae: 'VAE',
  controlnet: 'Controlnet',
  upscaler: 'Upscaler',
  hypernetwork: 'Hypernetwork',
  other: 'Other',
}

const FORMAT_NAME: Record<string, string> = {
  safetensors: 'SafeTensor',
  ckpt: 'PickleTensor',
  gguf: 'GGUF',
  diffusers: 'Diffusers',
  onnx: 'ONNX',
  coreml: 'Core ML',
  other: 'Other',
}

/**
 * The shared remote DTO back in Civitai's own version-JSON shape, so `.civitai.info` stays readable by
 * Civitai Helper whichever form the client hands us. `model` needs the parent model's name/type/nsfw.
 */
export function civitaiJsonFromRemote(
  v: RemoteVersion,
  model?: { name: string; kind: string; rawType: string | null; nsfw: boolean },
): CivitaiVersionJson {
  const id = Number(v.id)
  const modelId = Number(v.modelId)
  return {
    id,
    modelId,
    name: v.name,
    publishedAt: v.publishedAt,
    trainedWords: v.trainedWords,
    baseModel: v.baseModel,
    baseModelType: v.baseModelType,
    description: v.description,
    air: v.air,
    stats: { downloadCount: v.stats.downloads, thumbsUpCount: v.stats.likes },
    model: model
      ? { name: model.name, type: model.rawType ?? CIVITAI_TYPE[model.kind] ?? 'Other', nsfw: model.nsfw }
      : undefined,
    files: v.files.map((f) => ({
      id: Number(f.id),
      name: f.name,
      type: f.fileType,
      primary: f.primary,
      sizeKB: f.sizeBytes === null ? undefined : f.sizeBytes / 1024,
      metadata: {
        format: f.format ? (FORMAT_NAME[f.format] ?? 'Other') : null,
        size: f.sizeVariant,
        fp: f.precision,
      },
      hashes: Object.fromEntries(
        Object.entries({ ...f.hashes, ...(f.sha256 ? { SHA256: f.sha256.toUpperCase() } : {}) }).map(
          ([k, h]) => [k, h.toUpperCase()],
        ),
      ),
      downloadUrl: f.downloadUrl,
    })),
    images: v.images.map((im) => ({
      url: im.url,
      nsfwLevel: im.nsfwLevel ?? undefined,
      width: im.width,
      height: im.height,
      type: im.type,
      hash: im.blurHash,
      meta: im.meta?.raw ?? null,
    })),
    downloadUrl: v.downloadUrl,
  }
}

/** The part of the Civitai client the library needs (remote/civitai/client.ts `CivitaiClient`). */
export interface CivitaiHashClient {
  getVersionsByHashes(sha256s: string[], signal?: AbortSignal): Promise<RemoteVersion[]>
}

/** Adapt the Civitai client's bulk by-hash call to the library's `LookupByHashes` (keys: lowercase SHA-256). */
export function lookupFromCivitai(client: CivitaiHashClient): LookupByHashes {
  return async (hashes, signal) => {
    const want = new Set(hashes.map((h) => h.toLowerCase()))
    const out = new Map<string, CivitaiVersionJson>()
    for (const v of await client.getVersionsByHashes(hashes, signal)) {
      for (const f of v.files) {
        const sha = (
          f.sha256 ?? Object.entries(f.hashes).find(([k]) => k.toUpperCase() === 'SHA256')?.[1]
        )?.toLowerCase()
        // Civitai resolves duplicates to the earliest-published version and lists it first: keep the first.
        if (sha && want.has(sha) && !out.has(sha)) out.set(sha, civitaiJsonFromRemote(v))
      }
    }
    return out
  }
}
