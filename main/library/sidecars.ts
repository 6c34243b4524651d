import fs from 'node:fs'
import path from 'node:path'
import { MAX_SIDECAR_BYTES } from '../platform/read-capped'
import { writeFileAtomic } from '../platform/atomic-write'
import { errCode, isObject, num, readJsonFile, str, strArray } from './fsutil'
import type {
  CivitaiRef,
  CivitaiVersionJson,
  HuggingFaceRef,
  ModelFamily,
  ModelRecord,
  ModelSource,
  ModelType,
  ModelVariant,
  ProbeFamily,
} from './types'
import { MODEL_FAMILIES, MODEL_SOURCES, MODEL_TYPES, PROBE_FAMILIES } from './types'

/**
 * Files that live beside a model `<stem>.<ext>` and travel with it:
 * - `<stem>.atelier.json`  Atelier's own record (lets a rescan rebuild the index without hashing);
 * - `<stem>.json`          A1111 user metadata (description, activation text, preferred weight, sd version, notes);
 * - `<stem>.civitai.info`  Civitai Helper: the Civitai model-version JSON as the API returned it;
 * - `<stem>.cm-info.json`  Stability Matrix ConnectedModelInfo (read only);
 * - `<stem>.<png|jpg|jpeg|webp|gif>` then `<stem>.preview.<ext>`: preview image (A1111's lookup order);
 * - `<stem>.yaml`          A1111 checkpoint config.
 */
export const ATELIER_EXT = '.atelier.json'
export const A1111_EXT = '.json'
export const CIVITAI_EXT = '.civitai.info'
export const CM_INFO_EXT = '.cm-info.json'
export const IMAGE_EXTS = ['.png', '.jpg', '.jpeg', '.webp', '.gif']
export const PREVIEW_SUFFIXES = [...IMAGE_EXTS, ...IMAGE_EXTS.map((e) => `.preview${e}`)]
/** Sidecars other tools write; a change in any of them makes a rescan re-read the metadata. */
export const FOREIGN_SUFFIXES = [A1111_EXT, CIVITAI_EXT, CM_INFO_EXT, ...PREVIEW_SUFFIXES]
export const ALL_SUFFIXES = [ATELIER_EXT, ...FOREIGN_SUFFIXES, '.yaml']

/**
 * Sidecars (`.civitai.info`, A1111 `.json`, `.cm-info.json`, `.atelier.json`) are read up to
 * MAX_SIDECAR_BYTES: real ones are a few KB to a few hundred KB; a 300 MB one is ignored instead of
 * costing seconds and gigabytes.
 */
export { MAX_SIDECAR_BYTES }
/** Longest description and trigger-word list copied into `.atelier.json`. */
export const MAX_DESCRIPTION_CHARS = 100_000
const MAX_TRAINED_WORDS = 200
const MAX_WORD_CHARS = 1000

export const MODEL_EXTS = ['.safetensors', '.sft', '.ckpt', '.pt', '.pth', '.bin']

/** `<dir>/<name>.safetensors` → `<dir>/<name>`; a folder model keeps its whole name. */
export function stemOf(modelPath: string, isDir = false): string {
  if (isDir) return modelPath
  const ext = path.extname(modelPath)
  return ext ? modelPath.slice(0, -ext.length) : modelPath
}

export function isModelFileName(name: string): boolean {
  if (name.startsWith('.')) return false
  const lower = name.toLowerCase()
  return MODEL_EXTS.some((e) => lower.endsWith(e))
}

/** Sidecar files that exist for a stem, given the names in its folder. */
export function presentSidecars(stem: string, dirNames: ReadonlySet<string>): string[] {
  const base = path.basename(stem)
  return ALL_SUFFIXES.filter((s) => dirNames.has(base + s)).map((s) => `${stem}${s}`)
}

export function findPreview(stem: string, dirNames: ReadonlySet<string>): string | null {
  const base = path.basename(stem)
  for (const s of PREVIEW_SUFFIXES) if (dirNames.has(base + s)) return stem + s
  return null
}

// ---------------------------------------------------------------------------------------------------------------
// Atelier sidecar

export interface AtelierSidecar {
  atelier: 1
  id: string
  sha256: string | null
  autoV2: string | null
  autoV3: string | null
  size: number
  mtimeMs: number
  type: ModelType
  family: ModelFamily | null
  probeFamily: ProbeFamily | null
  subBase: string | null
  variant: ModelVariant | null
  architecture: string | null
  format: string
  note: string | null
  source: ModelSource
  civitai: CivitaiRef | null
  huggingface: HuggingFaceRef | null
  expectedSha256: string | null
  baseModel: string | null
  trainedWords: string[]
  description: string | null
  nsfw: boolean
  addedAt: string
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[]): T | null {
  return typeof v === 'string' && (allowed as readonly string[]).includes(v) ? (v as T) : null
}

function parseCivitaiRef(v: unknown): CivitaiRef | null {
  if (!isObject(v)) return null
  const modelId = num(v.modelId)
  const versionId = num(v.versionId)
  if (modelId === null || versionId === null) return null
  return {
    modelId,
    versionId,
    modelName: str(v.modelName),
    versionName: str(v.versionName),
    modelType: str(v.modelType),
  }
}

function parseHfRef(v: unknown): HuggingFaceRef | null {
  if (!isObject(v)) return null
  const repo = str(v.repo)
  if (!repo) return null
  return { repo, revision: str(v.revision) ?? 'main', path: str(v.path) ?? '' }
}

/** Read `<stem>.atelier.json`; null when absent or unusable (a broken sidecar is rebuilt, not fatal). */
export async function readAtelierSidecar(stem: string): Promise<AtelierSidecar | null> {
  let raw: unknown
  try {
    raw = await readJsonFile(stem + ATELIER_EXT, MAX_SIDECAR_BYTES)
  } catch {
    return null
  }
  if (!isObject(raw) || raw.atelier !== 1) return null
  const id = str(raw.id)
  const type = oneOf(raw.type, MODEL_TYPES)
  const size = num(raw.size)
  const mtimeMs = num(raw.mtimeMs)
  if (!id || !type || size === null || mtimeMs === null) return null
  const sha = str(raw.sha256)
  return {
    atelier: 1,
    id,
    sha256: sha && /^[0-9a-f]{64}$/i.test(sha) ? sha.toLowerCase() : null,
    autoV2: str(raw.autoV2),
    autoV3: str(raw.autoV3),
    size,
    mtimeMs,
    type,
    family: oneOf(raw.family, MODEL_FAMILIES),
    probeFamily: oneOf(raw.probeFamily, PROBE_FAMILIES),
    subBase: str(raw.subBase),
    variant: oneOf(raw.variant, ['normal', 'inpaint', 'depth', 'refiner'] as const),
    architecture: str(raw.architecture),
    format: str(raw.format) ?? 'unknown',
    note: str(raw.note),
    source: oneOf(raw.source, MODEL_SOURCES) ?? 'local',
    civitai: parseCivitaiRef(raw.civitai),
    huggingface: parseHfRef(raw.huggingface),
    expectedSha256: str(raw.expectedSha256)?.toLowerCase() ?? null,
    baseModel: str(raw.baseModel),
    trainedWords: strArray(raw.trainedWords),
    description: str(raw.description),
    nsfw: raw.nsfw === true,
    addedAt: str(raw.addedAt) ?? new Date().toISOString(),
  }
}

export function sidecarFromRecord(r: ModelRecord, probeFamily: ProbeFamily | null): AtelierSidecar {
  return {
    atelier: 1,
    id: r.id,
    sha256: r.sha256,
    autoV2: r.autoV2,
    autoV3: r.autoV3,
    size: r.size,
    mtimeMs: r.mtimeMs,
    type: r.type,
    family: r.family,
    probeFamily,
    subBase: r.subBase,
    variant: r.variant,
    architecture: r.architecture,
    format: r.format,
    note: r.note,
    source: r.source,
    civitai: r.civitai,
    huggingface: r.huggingface,
    expectedSha256: r.expectedSha256,
    baseModel: r.baseModel,
    trainedWords: r.trainedWords.slice(0, MAX_TRAINED_WORDS).map((w) => w.slice(0, MAX_WORD_CHARS)),
    description: r.description === null ? null : r.description.slice(0, MAX_DESCRIPTION_CHARS),
    nsfw: r.nsfw,
    addedAt: r.addedAt,
  }
}

export function serializeSidecar(sidecar: AtelierSidecar): string {
  return `${JSON.stringify(sidecar, null, 2)}\n`
}

export async function writeAtelierSidecar(stem: string, sidecar: AtelierSidecar): Promise<void> {
  await writeFileAtomic(stem + ATELIER_EXT, serializeSidecar(sidecar), { fsync: false })
}

// ---------------------------------------------------------------------------------------------------------------
// A1111 `<stem>.json`

export interface A1111Meta {
  description: string | null
  activationText: string | null
  preferredWeight: number | null
  sdVersion: string | null
  notes: string | null
}

export async function readA1111(stem: string): Promise<A1111Meta | null> {
  let raw: unknown
  try {
    raw = await readJsonFile(stem + A1111_EXT, MAX_SIDECAR_BYTES)
  } catch {
    return null
  }
  if (!isObject(raw)) return null
  const w = num(raw['preferred weight'])
  return {
    description: str(raw.description),
    activationText: str(raw['activation text']),
    // A1111 writes 0 for "not set".
    preferredWeight: w !== null && w !== 0 ? w : null,
    sdVersion: str(raw['sd version']),
    notes: str(raw.notes),
  }
}

/**
 * Fill empty fields of `<stem>.json` (never overwrites what the user typed; unknown keys are kept).
 * Returns true when the file was written.
 */
export async function mergeA1111(
  stem: string,
  fill: { activationText?: string | null; sdVersion?: string | null; preferredWeight?: number | null },
): Promise<boolean> {
  const file = stem + A1111_EXT
  let current: Record<string, unknown> = {}
  try {
    const raw = await readJsonFile(file, MAX_SIDECAR_BYTES)
    if (!isObject(raw)) return false // not an A1111 metadata file: leave it alone
    current = raw
  } catch (err) {
    if (errCode(err) !== 'ENOENT') return false // unreadable or invalid JSON: do not clobber
  }
  const next: Record<string, unknown> = { ...current }
  const empty = (v: unknown): boolean => v === undefined || v === null || v === ''
  if (fill.activationText && empty(next['activation text'])) next['activation text'] = fill.activationText
  if (
    fill.sdVersion &&
    fill.sdVersion !== 'Unknown' &&
    (empty(next['sd version']) || next['sd version'] === 'Unknown')
  )
    next['sd version'] = fill.sdVersion
  if (fill.preferredWeight && (empty(next['preferred weight']) || next['preferred weight'] === 0))
    next['preferred weight'] = fill.preferredWeight
  if (JSON.stringify(next) === JSON.stringify(current)) return false
  for (const k of ['description', 'sd version', 'activation text', 'preferred weight', 'notes'])
    if (!(k in next)) next[k] = k === 'preferred weight' ? 0 : k === 'sd version' ? 'Unknown' : ''
  await writeFileAtomic(file, `${JSON.stringify(next, null, 4)}\n`)
  return true
}

// ---------------------------------------------------------------------------------------------------------------
// Civitai Helper `<stem>.civitai.info` and Stability Matrix `<stem>.cm-info.json`

export async function readCivitaiInfo(stem: string): Promise<CivitaiVersionJson | null> {
  let raw: unknown
  try {
    raw = await readJsonFile(stem + CIVITAI_EXT, MAX_SIDECAR_BYTES)
  } catch {
    return null
  }
  // Civitai Helper writes `{}` for "looked up, not found".
  if (!isObject(raw) || num(raw.id) === null || num(raw.modelId) === null) return null
  return raw as CivitaiVersionJson
}

export async function writeCivitaiInfo(stem: string, info: CivitaiVersionJson): Promise<void> {
  await writeFileAtomic(stem + CIVITAI_EXT, `${JSON.stringify(info, null, 4)}\n`)
}

/** Stability Matrix's ConnectedModelInfo, mapped to the Civitai version shape the library reads. */
export async function readCmInfo(stem: string): Promise<CivitaiVersionJson | null> {
  let raw: unknown
  try {
    raw = await readJsonFile(stem + CM_INFO_EXT, MAX_SIDECAR_BYTES)
  } catch {
    return null
  }
  if (!isObject(raw)) return null
  const modelId = num(raw.ModelId)
  const versionId = num(raw.VersionId)
  if (modelId === null || versionId === null) return null
  const hashes: Record<string, string> = {}
  if (isObject(raw.Hashes))
    for (const [k, v] of Object.entries(raw.Hashes)) if (typeof v === 'string') hashes[k] = v
  return {
    id: versionId,
    modelId,
    name: str(raw.VersionName) ?? undefined,
    baseModel: str(raw.BaseModel),
    description: str(raw.VersionDescription) ?? str(raw.ModelDescription),
    trainedWords: strArray(raw.TrainedWords),
    model: {
      name: str(raw.ModelName) ?? undefined,
      type: typeof raw.ModelType === 'string' ? raw.ModelType : undefined,
      nsfw: raw.Nsfw === true,
    },
    files: [{ name: str(raw.RemoteFileName) ?? undefined, primary: true, hashes }],
  }
}

/** Copy every sidecar of `fromStem` to `toStem` names (rename): returns [from, to] pairs that exist. */
export async function sidecarMoves(fromStem: string, toStem: string): Promise<Array<[string, string]>> {
  const dir = path.dirname(fromStem)
  let names: Set<string>
  try {
    names = new Set(await fs.promises.readdir(dir))
  } catch {
    return []
  }
  return presentSidecars(fromStem, names).map((p) => [p, toStem + p.slice(fromStem.length)])
}
