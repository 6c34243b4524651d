/**
 * The models domain of the contract: browsing Civitai / Hugging Face, installing, downloads, the local
 * library and key checks. `contract.ts` spreads these schemas, responses and events into the one contract.
 *
 * Paths never cross: the renderer names models by library id, remote models by source + id, and images by
 * the URL main handed out (main keeps an allow-list). The one exception is `library:add-root`, whose path is
 * a string the user typed; main validates it.
 */
import { z } from 'zod'
import type { JobRef } from './contract-types'
import type { FewStepPreset } from './few-step'

// ------------------------------------------------------------------------------------------------ DTOs

export type RemoteSourceName = 'civitai' | 'huggingface'
export type ModelKind =
  'checkpoint' | 'lora' | 'embedding' | 'vae' | 'controlnet' | 'upscaler' | 'hypernetwork' | 'other'
export type CompatState = 'compatible' | 'partial' | 'incompatible' | 'unknown'

export interface CardImage {
  url: string
  width: number | null
  height: number | null
  /** Above PG (Civitai nsfwLevel > 1): the renderer blurs it when the preference is 'blur'. */
  nsfw: boolean
}

export interface ModelCard {
  source: RemoteSourceName
  id: string
  name: string
  kind: ModelKind
  /** The service's own type name ("LORA", "Checkpoint", "text-to-image"). */
  rawType: string | null
  creator: string | null
  baseModels: string[]
  downloads: number | null
  likes: number | null
  image: CardImage | null
  nsfw: boolean
  /** Some version of this model is in the library (by Civitai ids, HF repo or SHA-256). */
  installed: boolean
  installedVersionIds: string[]
  /** Installed, and the newest version is not. */
  updateAvailable: boolean
  latestVersionId: string | null
  earlyAccess: boolean
  gated: false | 'auto' | 'manual'
}

export interface ModelSearchPage {
  items: ModelCard[]
  nextCursor: string | null
}

export interface ModelFilterOptions {
  types: { value: ModelKind; label: string }[]
  baseModels: string[]
  sorts: string[]
  periods: string[]
}

export interface CompatAgainst {
  id: string
  name: string
  state: Exclude<CompatState, 'unknown'>
  reason: string
}

export interface CompatInfo {
  state: CompatState
  reason: string
  /** Per installed checkpoint (LoRAs, embeddings, VAEs). */
  checkpoints: CompatAgainst[]
}

/** Generation parameters of a preview image, in Atelier's names. */
export interface PreviewParams {
  prompt: string | null
  negativePrompt: string | null
  seed: number | null
  steps: number | null
  sampler: string | null
  cfgScale: number | null
  clipSkip: number | null
  width: number | null
  height: number | null
  model: string | null
  /** A1111 1.9+ `Schedule type` (or the part split off an old combined name such as "DPM++ 2M Karras"). */
  scheduleType: string | null
  /** VAE named by the image (`VAE` key or a VAE resource), null when the checkpoint's own VAE was used. */
  vae: string | null
  /**
   * Noise generator: `RNG: CPU` -> 'cpu'; `GPU` / `NV`, or A1111 / Forge meta without `RNG` (their default)
   * -> 'gpu'; ComfyUI uploads (CPU noise) -> 'cpu'; null when the meta does not tell.
   */
  rng?: 'cpu' | 'gpu' | null
  /** LoRAs / LyCORIS, embeddings, VAEs and the checkpoint the image names, deduplicated. */
  resources: PreviewResource[]
}

/** The Civitai version a hash belongs to (`models:by-hash`). */
export interface HashLookup {
  versionId: string
  modelId: string
  versionName: string
  baseModel: string | null
}

/** One resource a Civitai preview image was made with, as far as its meta tells. */
export interface PreviewResource {
  kind: 'checkpoint' | 'lora' | 'embedding' | 'vae'
  /** File stem / name as written in the prompt or meta; null when only a version id is known. */
  name: string | null
  /** LoRA multiplier (1 when the tag has none); null for other kinds. */
  weight: number | null
  modelVersionId: number | null
  /** Short (AutoV2, 10 hex) or full SHA-256 as the image gives it, lower case. */
  hash: string | null
}

export interface ModelImage {
  url: string
  width: number | null
  height: number | null
  nsfw: boolean
  /** 'image' | 'video'; videos are listed, not shown. */
  type: string
  params: PreviewParams | null
}

export interface ModelFile {
  id: string
  name: string
  /** HF: path in the repo; Civitai: the name. */
  path: string
  sizeBytes: number | null
  sizeExact: boolean
  fileType: string
  format: string | null
  precision: string | null
  sizeVariant: string | null
  primary: boolean
  sha256: string | null
  /** 'success' | 'danger' | 'pending' | 'error' | null (Civitai pickle / virus scans). */
  pickleScan: string | null
  virusScan: string | null
  scanMessage: string | null
  /** A weights file Atelier can install (safetensors / ckpt, not configs or training data). */
  installable: boolean
  installed: boolean
  libraryId: string | null
}

export interface ModelVersion {
  id: string
  name: string
  baseModel: string | null
  baseModelType: string | null
  trainedWords: string[]
  publishedAt: string | null
  earlyAccess: boolean
  earlyAccessEndsAt: string | null
  descriptionHtml: string | null
  files: ModelFile[]
  images: ModelImage[]
  downloads: number | null
  likes: number | null
  installed: boolean
  compat: CompatInfo
}

/** What the user must do before a download can work; null when nothing is known to stand in the way. */
export interface AccessNote {
  kind: 'early-access' | 'login' | 'gated' | 'archived' | 'private'
  message: string
  /** Where to do it (the model page), when it is a web action. */
  url: string | null
}

export interface ModelDetails {
  source: RemoteSourceName
  id: string
  name: string
  kind: ModelKind
  rawType: string | null
  creator: string | null
  tags: string[]
  nsfw: boolean
  pageUrl: string
  /** Untrusted HTML from the service: the renderer sanitises it before showing it. */
  descriptionHtml: string | null
  /** HF model card text (front matter removed), as plain text. */
  readme: string | null
  license: string | null
  commercialUse: string[]
  gated: false | 'auto' | 'manual'
  archived: boolean
  downloads: number | null
  likes: number | null
  versions: ModelVersion[]
  /** The version whose images carry generation parameters (the one asked for, else the newest). */
  selectedVersionId: string | null
  access: AccessNote | null
  /** HF: the repo is a diffusers pipeline (installable as a whole folder). */
  diffusers: boolean
  installed: boolean
  updateAvailable: boolean
}

export type DownloadStateName =
  'queued' | 'downloading' | 'paused' | 'verifying' | 'done' | 'failed' | 'cancelled'

export type InstallStateName = 'none' | 'pending' | 'installing' | 'installed' | 'failed'

export interface DownloadInfo {
  id: string
  /** What is being installed ("Tiny Style LoRA v1", "openai/clip-vit-large-patch14 vocab.json"). */
  label: string
  fileName: string | null
  source: 'civitai' | 'huggingface' | 'url'
  state: DownloadStateName
  bytes: number
  total: number | null
  speedBps: number
  etaMs: number | null
  error: { code: string; message: string } | null
  /** SHA-256 compared with the one the service published. */
  verified: boolean
  install: { state: InstallStateName; libraryId: string | null; message: string | null }
  /** Files of one HF folder install share a group id. */
  group: string | null
  createdAt: string
  finishedAt: string | null
}

export interface InstallResult {
  downloadIds: string[]
  /** The file (or folder) was already in the library: nothing was downloaded. */
  alreadyInstalled: string | null
}

export type LibraryModelType =
  'checkpoint' | 'lora' | 'vae' | 'embedding' | 'upscaler' | 'ip-adapter' | 'image-encoder' | 'taesd'
export type LibraryFamily =
  'sd-1' | 'sd-2' | 'sdxl' | 'sd-3' | 'flux-1' | 'flux-2' | 'auraflow' | 'kolors' | 'other'
export type LibrarySource = 'civitai' | 'huggingface' | 'local'

/** A library record as the renderer sees it (no paths). */
export interface LibraryModel {
  id: string
  name: string
  fileName: string
  type: LibraryModelType
  family: LibraryFamily | null
  subBase: string | null
  variant: 'normal' | 'inpaint' | 'depth' | 'refiner' | null
  architecture: string | null
  format: string
  folder: boolean
  size: number
  mtimeMs: number
  sha256: string | null
  autoV2: string | null
  autoV3: string | null
  source: LibrarySource
  civitai: {
    modelId: number
    versionId: number
    modelName: string | null
    versionName: string | null
    modelType: string | null
  } | null
  huggingface: { repo: string; revision: string; path: string } | null
  expectedSha256: string | null
  verified: 'verified' | 'unverified' | 'mismatch'
  trainedWords: string[]
  baseModel: string | null
  hasPreview: boolean
  description: string | null
  preferredWeight: number | null
  notes: string | null
  nsfw: boolean
  addedAt: string
  problem: string | null
  note: string | null
  /** Recommended settings of a few-step model (LCM, Lightning, Hyper-SD, Turbo, TCD); null otherwise. */
  fewStep?: FewStepPreset | null
}

export interface LibraryModelDetails {
  model: LibraryModel
  /** The model's page on Civitai / Hugging Face. */
  sourceUrl: string | null
  /** LoRAs, embeddings, VAEs: against each installed checkpoint. */
  compat: CompatInfo | null
  /** The folder the file lives in (a root of the library), for display. */
  location: string
}

export interface LibraryRootInfo {
  path: string
  layout: string
  own: boolean
}

export interface DoctorIssueInfo {
  kind: 'missing' | 'corrupt' | 'hash-mismatch' | 'changed' | 'duplicate'
  id: string
  name: string
  message: string
  others?: string[]
}

export interface DoctorResult {
  ok: boolean
  checked: number
  issues: DoctorIssueInfo[]
}

export interface LibraryChangedEvent {
  reason: 'scan' | 'install' | 'delete' | 'rename' | 'update'
  ids: string[]
}

export interface SecretTestResult {
  ok: boolean
  message: string
}

// ------------------------------------------------------------------------------------------------ schemas

const id = z.string().min(1).max(300)
const source = z.enum(['civitai', 'huggingface'])
const kind = z.enum([
  'checkpoint',
  'lora',
  'embedding',
  'vae',
  'controlnet',
  'upscaler',
  'hypernetwork',
  'other',
])
const hfRepo = z.string().regex(/^[\w.-]{1,96}\/[\w.-]{1,96}$/, 'not a Hugging Face repo id (owner/name)')
const hfPath = z
  .string()
  .min(1)
  .max(1000)
  .refine(
    (p) => !p.split('/').some((s) => s === '..' || s === '' || s === '.'),
    'not a file path in the repo',
  )
const numericId = z.string().regex(/^\d{1,12}$/, 'not a Civitai id')

export const modelsRequestSchemas = {
  'models:search': z
    .object({
      source,
      query: z.string().max(200).optional(),
      types: z.array(kind).max(8).optional(),
      baseModels: z.array(z.string().min(1).max(60)).max(20).optional(),
      sort: z.string().max(40).optional(),
      period: z.string().max(20).optional(),
      cursor: z.string().max(2000).nullable().optional(),
      limit: z.number().int().min(1).max(100).optional(),
    })
    .strict(),
  'models:options': z.object({ source }).strict(),
  'models:details': z.object({ source, id, versionId: z.string().min(1).max(100).optional() }).strict(),
  'models:install': z.discriminatedUnion('source', [
    z.object({ source: z.literal('civitai'), versionId: numericId, fileId: numericId.optional() }).strict(),
    z
      .object({
        source: z.literal('huggingface'),
        repo: hfRepo,
        path: hfPath.optional(),
        revision: z.string().min(1).max(100).optional(),
      })
      .strict(),
  ]),
  /** A Civitai version by any hash Civitai stores (AutoV2 short hash, SHA-256, ...); null when unknown. */
  'models:by-hash': z.object({ hash: z.string().regex(/^[0-9a-fA-F]{8,64}$/, 'not a model hash') }).strict(),
  'remote:image': z.object({ url: z.url().max(2000) }).strict(),
  'downloads:list': z.object({}).strict(),
  'downloads:pause': z.object({ id }).strict(),
  'downloads:resume': z.object({ id }).strict(),
  'downloads:cancel': z.object({ id }).strict(),
  'downloads:retry': z.object({ id }).strict(),
  'downloads:clear': z.object({}).strict(),
  'library:list': z
    .object({
      type: z
        .enum(['checkpoint', 'lora', 'vae', 'embedding', 'upscaler', 'ip-adapter', 'image-encoder', 'taesd'])
        .optional(),
      family: z
        .enum(['sd-1', 'sd-2', 'sdxl', 'sd-3', 'flux-1', 'flux-2', 'auraflow', 'kolors', 'other'])
        .optional(),
      source: z.enum(['civitai', 'huggingface', 'local']).optional(),
      text: z.string().max(200).optional(),
    })
    .strict(),
  'library:get': z.object({ id }).strict(),
  'library:preview': z.object({ id }).strict(),
  'library:rename': z.object({ id, name: z.string().min(1).max(200) }).strict(),
  'library:delete': z.object({ id }).strict(),
  'library:scan': z.object({}).strict(),
  'library:doctor': z.object({ rehash: z.boolean().optional() }).strict(),
  'library:roots': z.object({}).strict(),
  'library:add-root': z.object({ path: z.string().min(1).max(4096) }).strict(),
  'secrets:test': z
    .object({ name: z.enum(['civitaiApiKey', 'hfToken']), value: z.string().max(4096).optional() })
    .strict(),
} as const

export interface ModelsResponses {
  'models:search': ModelSearchPage
  'models:options': ModelFilterOptions
  'models:details': ModelDetails
  'models:install': InstallResult
  'models:by-hash': HashLookup | null
  'remote:image': Uint8Array
  'downloads:list': DownloadInfo[]
  'downloads:pause': DownloadInfo
  'downloads:resume': DownloadInfo
  'downloads:cancel': DownloadInfo
  'downloads:retry': DownloadInfo
  'downloads:clear': { removed: number }
  'library:list': LibraryModel[]
  'library:get': LibraryModelDetails
  'library:preview': Uint8Array
  'library:rename': LibraryModel
  'library:delete': { id: string }
  'library:scan': JobRef
  'library:doctor': DoctorResult
  'library:roots': LibraryRootInfo[]
  'library:add-root': LibraryRootInfo & JobRef
  'secrets:test': SecretTestResult
}

export interface ModelsEvents {
  'downloads:progress': DownloadInfo
  'library:changed': LibraryChangedEvent
}

export const modelsEventNames = [
  'downloads:progress',
  'library:changed',
] as const satisfies readonly (keyof ModelsEvents)[]
