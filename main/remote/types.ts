/**
 * The one remote-model DTO shared by the Civitai and Hugging Face clients. Plain JSON data only (no Dates,
 * no class instances) so it can cross the IPC contract and the WebSocket bridge unchanged.
 *
 * Ids are strings for both services: Civitai numeric ids as decimal strings, HF repo ids as "owner/name".
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

export type RemoteSource = 'civitai' | 'huggingface'

/** Coarse model kind. Civitai's ModelType and HF tags both map onto it; unknown values become 'other'. */
export type RemoteModelKind =
  'checkpoint' | 'lora' | 'embedding' | 'vae' | 'controlnet' | 'upscaler' | 'hypernetwork' | 'other'

export type RemoteFileFormat = 'safetensors' | 'ckpt' | 'gguf' | 'diffusers' | 'onnx' | 'coreml' | 'other'

/** Pickle / virus scan state (Civitai ScanResultCode), `null` when the service does not say. */
export type RemoteScanResult = 'pending' | 'success' | 'danger' | 'error' | null

export interface RemoteFile {
  /** Civitai file id, or the HF repo path. */
  id: string
  /** Download file name (basename). */
  name: string
  /** HF: path inside the repo ("unet/config.json"); Civitai: same as name. */
  path: string
  /** Size in bytes; Civitai's is derived from sizeKB and only approximate (see `sizeExact`). */
  sizeBytes: number | null
  sizeExact: boolean
  /** Civitai ModelFileType ("Model", "VAE", "Pruned Model", ...) or, for HF, "lfs" | "regular". */
  fileType: string
  format: RemoteFileFormat | null
  /** Precision as the service names it: fp16, fp32, bf16, fp8, ... */
  precision: string | null
  /** Civitai "full" | "pruned". */
  sizeVariant: string | null
  primary: boolean
  /** Lowercase hex SHA-256 of the content when the service publishes it (Civitai SHA256, HF lfs.oid). */
  sha256: string | null
  /** Every hash the service publishes, keys as the service names them (AutoV2, BLAKE3, gitSha1, ...). */
  hashes: Record<string, string>
  /** URL that yields the bytes (Civitai /api/download/..., HF /resolve/...). May redirect to another host. */
  downloadUrl: string
  pickleScan: RemoteScanResult
  virusScan: RemoteScanResult
  scanMessage: string | null
}

/** Generation parameters attached to a preview image (Civitai `meta`), normalised where keys are common. */
export interface RemoteImageMeta {
  prompt: string | null
  negativePrompt: string | null
  seed: number | null
  steps: number | null
  sampler: string | null
  cfgScale: number | null
  clipSkip: number | null
  size: string | null
  /** The untouched object, for anything else (ComfyUI graphs, resources, ...). */
  raw: { [key: string]: JsonValue }
}

export interface RemoteImage {
  url: string
  width: number | null
  height: number | null
  /** Civitai browsing-level bitmask (PG=1, PG13=2, R=4, X=8, XXX=16). */
  nsfwLevel: number | null
  /** 'image' | 'video' | 'audio' (open string). */
  type: string
  blurHash: string | null
  meta: RemoteImageMeta | null
}

export interface RemoteStats {
  downloads: number | null
  likes: number | null
}

export interface RemoteVersion {
  source: RemoteSource
  /** Civitai version id; HF commit sha (or the revision name when the sha is unknown). */
  id: string
  modelId: string
  name: string
  description: string | null
  /** Civitai baseModel ("SD 1.5", "SDXL 1.0", "Pony", ...); HF: derived from tags when recognisable. */
  baseModel: string | null
  baseModelType: string | null
  trainedWords: string[]
  publishedAt: string | null
  /** Behind Civitai's Early Access (paid) gate: downloads need a key of a user who bought access. */
  earlyAccess: boolean
  /** When the Early Access period ends (null: unknown or permanent). */
  earlyAccessEndsAt: string | null
  files: RemoteFile[]
  images: RemoteImage[]
  downloadUrl: string | null
  stats: RemoteStats
  /** Civitai AIR urn when known. */
  air: string | null
}

export interface RemoteModel {
  source: RemoteSource
  id: string
  name: string
  description: string | null
  kind: RemoteModelKind
  /** The service's own type name (Civitai ModelType, HF pipeline_tag/library). */
  rawType: string | null
  nsfw: boolean
  nsfwLevel: number | null
  tags: string[]
  creator: string | null
  stats: RemoteStats
  baseModels: string[]
  /** Civitai: visible versions, newest first. HF: one entry for the requested revision (files filled by the tree call). */
  versions: RemoteVersion[]
  /** false | 'auto' | 'manual' (HF gating); Civitai: false. */
  gated: false | 'auto' | 'manual'
  /** Civitai `mode: Archived` (no downloadable files). */
  archived: boolean
  /** HF `license:*` tag (e.g. "creativeml-openrail-m"); Civitai: null (its terms are the flags below). */
  license: string | null
  /** Civitai allowCommercialUse values ("Image", "RentCivit", "Rent", "Sell"); [] when unknown. */
  commercialUse: string[]
  /** Web page for the model, for "open in browser". */
  pageUrl: string
  updatedAt: string | null
}

export interface RemotePage<T> {
  items: T[]
  /** Opaque cursor for the next page; null at the end. */
  nextCursor: string | null
}
