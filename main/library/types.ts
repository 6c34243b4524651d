/**
 * The local model library: records, queries, scan progress and doctor reports.
 *
 * A record's `path` (and `root`, `preview`) are absolute paths on this machine: only main sees them;
 * `publicRecord()` strips them before a record crosses to the renderer.
 */
import type { FewStepPreset } from '../../preload/few-step'
import { fewStepOfRecord } from './few-step'

import type { ModelKind, ProbeInfo } from '../model-formats/probe/identify'
import { MODEL_KINDS } from '../model-formats/probe/identify'
import type { Base, Variant } from '../model-formats/probe/types'

export type { ProbeInfo }
export type ModelType = ModelKind
export const MODEL_TYPES: readonly ModelType[] = MODEL_KINDS

/** Families the header probe can tell apart. */
export type ProbeFamily = Base

/**
 * Families known to the library: the probe's, plus those only Civitai's baseModel string names
 * (a Flux LoRA is listed and labelled even though Atelier cannot run it).
 */
export type ModelFamily = ProbeFamily | 'sd-3' | 'flux-1' | 'flux-2' | 'auraflow' | 'kolors' | 'other'
export const PROBE_FAMILIES: readonly ProbeFamily[] = ['sd-1', 'sd-2', 'sdxl']
export const MODEL_FAMILIES: readonly ModelFamily[] = [
  ...PROBE_FAMILIES,
  'sd-3',
  'flux-1',
  'flux-2',
  'auraflow',
  'kolors',
  'other',
]

/** depth (SD 2 depth2img) and refiner (SDXL refiner) are recognised, listed, and not run. */
export type ModelVariant = Variant
export type ModelSource = 'civitai' | 'huggingface' | 'local'
export const MODEL_SOURCES: readonly ModelSource[] = ['civitai', 'huggingface', 'local']
/** verified: SHA-256 equals the hash Civitai/HF published; mismatch: it differs; unverified: nothing to compare. */
export type Verification = 'verified' | 'unverified' | 'mismatch'

/** Probe one model file or folder from headers alone; throws a readable Error for corrupt files. */
export type ProbeFn = (file: string) => Promise<ProbeInfo>

export interface CivitaiRef {
  modelId: number
  versionId: number
  modelName: string | null
  versionName: string | null
  /** Civitai ModelType ("Checkpoint", "LORA", "LoCon", "TextualInversion", "VAE", ...). */
  modelType: string | null
}

export interface HuggingFaceRef {
  repo: string
  revision: string
  path: string
}

export interface ModelRecord {
  /** Stable id: first 16 hex digits of the SHA-256 (suffixed on duplicates), kept in the sidecar across renames. */
  id: string
  /** File stem: what `<lora:name:w>` and the UI show. */
  name: string
  /** File name with extension. */
  fileName: string
  type: ModelType
  family: ModelFamily | null
  /** Finer base inside a family (e.g. 'sd-1.5', 'pony', 'illustrious'); null when unknown. */
  subBase: string | null
  variant: ModelVariant | null
  architecture: string | null
  format: string
  /** Absolute path to the model file (or diffusers/ONNX folder). */
  path: string
  /** A folder model (diffusers / ONNX pipeline) rather than a single file. */
  folder: boolean
  /** The library root this record was found under. */
  root: string
  size: number
  mtimeMs: number
  /** Lowercase hex; null only for folder models (diffusers), which are not hashed. */
  sha256: string | null
  /** First 10 hex of the SHA-256, uppercase (Civitai AutoV2, A1111 short hash). */
  autoV2: string | null
  /** LoRA safetensors only: 12 hex of the SHA-256 after the header, uppercase. */
  autoV3: string | null
  source: ModelSource
  civitai: CivitaiRef | null
  huggingface: HuggingFaceRef | null
  /** The SHA-256 the remote service published for this file (lowercase), if any. */
  expectedSha256: string | null
  verified: Verification
  trainedWords: string[]
  /** Civitai's baseModel string as published ("SD 1.5", "Pony", ...). */
  baseModel: string | null
  /** Absolute path to the preview image, if one is beside the model. */
  preview: string | null
  description: string | null
  /** A1111 "preferred weight" (0 = unset there, null here). */
  preferredWeight: number | null
  notes: string | null
  nsfw: boolean
  /** ISO date when the file first entered the library. */
  addedAt: string
  /** Set when the file could not be probed (corrupt, truncated, unknown format). */
  problem: string | null
  /** Why a healthy file is listed but cannot be used yet (pickle refused, base not runnable); null when usable. */
  note: string | null
}

export type PublicModelRecord = Omit<ModelRecord, 'path' | 'root' | 'preview'> & {
  hasPreview: boolean
  /** Recommended settings of a few-step model (LCM, Lightning, Hyper-SD, Turbo, TCD); null otherwise. */
  fewStep: FewStepPreset | null
}

export function publicRecord(r: ModelRecord): PublicModelRecord {
  const { path: _p, root: _r, preview, ...rest } = r
  return { ...rest, hasPreview: preview !== null, fewStep: fewStepOfRecord(r) }
}

export interface LibraryQuery {
  type?: ModelType | ModelType[]
  family?: ModelFamily | ModelFamily[]
  source?: ModelSource | ModelSource[]
  /** Case-insensitive substring of the name, file name, trained words or Civitai model name. */
  text?: string
}

/** How a root folder is laid out; decides which subfolder holds which type. */
export type RootLayout = 'atelier' | 'a1111' | 'comfyui' | 'folder'

export interface LibraryRoot {
  path: string
  layout: RootLayout
  addedAt: string
}

export type ScanPhase = 'discover' | 'probe' | 'hash' | 'done'

export interface ScanProgress {
  phase: ScanPhase
  /** Files finished in this phase / files in this phase. */
  done: number
  total: number
  /** Bytes hashed so far / bytes to hash (hash phase). */
  bytesDone: number
  bytesTotal: number
  file: string | null
}

export interface ScanSummary {
  models: number
  added: number
  removed: number
  /** Files hashed during this scan (0 when nothing changed). */
  hashed: number
  /** Files whose records were reused without reading them. */
  reused: number
  problems: number
  durationMs: number
}

export type ChangeReason = 'scan' | 'install' | 'delete' | 'rename' | 'update'

export interface LibraryChange {
  reason: ChangeReason
  ids: string[]
}

export type DoctorIssueKind = 'missing' | 'corrupt' | 'hash-mismatch' | 'changed' | 'duplicate'

export interface DoctorIssue {
  kind: DoctorIssueKind
  id: string
  name: string
  path: string
  message: string
  /** For duplicates: the ids of the other copies. */
  others?: string[]
}

export interface DoctorReport {
  ok: boolean
  checked: number
  issues: DoctorIssue[]
}

/** The minimal part of a Civitai model-version JSON (what `.civitai.info` holds) that the library reads. */
export interface CivitaiFileJson {
  id?: number
  name?: string
  type?: string
  primary?: boolean
  sizeKB?: number
  hashes?: Record<string, string>
  metadata?: Record<string, unknown> | null
  [key: string]: unknown
}

export interface CivitaiVersionJson {
  id: number
  modelId: number
  name?: string
  baseModel?: string | null
  baseModelType?: string | null
  description?: string | null
  trainedWords?: string[]
  model?: { name?: string; type?: string; nsfw?: boolean; [key: string]: unknown }
  files?: CivitaiFileJson[]
  images?: Array<{ url?: string; nsfwLevel?: number; type?: string; [key: string]: unknown }>
  [key: string]: unknown
}

/** Bulk by-hash lookup (Civitai `POST /model-versions/by-hash`): SHA-256 → version. Missing hashes are absent. */
export type LookupByHashes = (
  hashes: string[],
  signal?: AbortSignal,
) => Promise<Map<string, CivitaiVersionJson>>
