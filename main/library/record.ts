import crypto from 'node:crypto'
import path from 'node:path'
import { civitaiFacts } from './civitai-info'
import { familyFromA1111, resolveBase } from './compat'
import type { A1111Meta, AtelierSidecar } from './sidecars'
import type {
  CivitaiVersionJson,
  HuggingFaceRef,
  ModelRecord,
  ModelSource,
  ModelType,
  ProbeFamily,
  ProbeInfo,
  Verification,
} from './types'

/** Everything known about one model file before it becomes a record. */
export interface RecordInputs {
  path: string
  root: string
  isDir: boolean
  size: number
  mtimeMs: number
  /** The type the folder implies (null for plain folders). */
  typeHint: ModelType | null
  probe: ProbeInfo | null
  /** Probe failure message (corrupt / truncated / not a model). */
  problem: string | null
  sha256: string | null
  autoV3: string | null
  sidecar: AtelierSidecar | null
  prev: ModelRecord | null
  prevProbeFamily: ProbeFamily | null
  civitai: CivitaiVersionJson | null
  a1111: A1111Meta | null
  preview: string | null
  /** Install-time facts (add()). */
  install?: {
    source?: ModelSource
    huggingface?: HuggingFaceRef | null
    expectedSha256?: string | null
  }
}

export function verification(sha256: string | null, expected: string | null): Verification {
  if (!sha256 || !expected) return 'unverified'
  return sha256.toLowerCase() === expected.toLowerCase() ? 'verified' : 'mismatch'
}

export function idFromSha(sha256: string): string {
  return sha256.slice(0, 16)
}

export function idFromPath(p: string): string {
  return `p${crypto.createHash('sha256').update(p).digest('hex').slice(0, 15)}`
}

export function splitActivation(text: string | null): string[] {
  if (!text) return []
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

/** Returns null when the type cannot be decided (a non-model file in a plain folder). */
export function buildRecord(
  i: RecordInputs,
): { record: ModelRecord; probeFamily: ProbeFamily | null } | null {
  const fileName = path.basename(i.path)
  const name = i.isDir ? fileName : fileName.slice(0, fileName.length - path.extname(fileName).length)
  const sc = i.sidecar
  const prev = i.prev
  const facts = i.civitai ? civitaiFacts(i.civitai, fileName, i.sha256) : null

  const type: ModelType | null = i.probe?.type ?? i.typeHint ?? facts?.type ?? prev?.type ?? sc?.type ?? null
  if (!type) return null

  // Header shapes decide the family; A1111's "sd version" only fills in when the header could not tell.
  const probeFamily: ProbeFamily | null = i.probe
    ? i.probe.family
    : (i.prevProbeFamily ?? sc?.probeFamily ?? null)
  const baseModel = facts?.baseModel ?? sc?.baseModel ?? null
  const { family, subBase } = resolveBase(probeFamily ?? familyFromA1111(i.a1111?.sdVersion), baseModel)

  const huggingface = i.install?.huggingface ?? prev?.huggingface ?? sc?.huggingface ?? null
  let source: ModelSource = i.install?.source ?? prev?.source ?? sc?.source ?? 'local'
  if (facts && source === 'local') source = 'civitai'
  if (huggingface && source === 'local') source = 'huggingface'

  const expectedSha256 =
    (source === 'huggingface'
      ? (i.install?.expectedSha256 ?? sc?.expectedSha256 ?? prev?.expectedSha256)
      : null) ??
    facts?.expectedSha256 ??
    i.install?.expectedSha256 ??
    sc?.expectedSha256 ??
    null

  const trainedWords =
    facts && facts.trainedWords.length > 0
      ? facts.trainedWords
      : sc && sc.trainedWords.length > 0
        ? sc.trainedWords
        : splitActivation(i.a1111?.activationText ?? null)

  const sha256 = i.sha256
  const record: ModelRecord = {
    id: prev?.id ?? sc?.id ?? (sha256 ? idFromSha(sha256) : idFromPath(i.path)),
    name,
    fileName,
    type,
    family,
    subBase,
    variant: i.probe?.variant ?? prev?.variant ?? sc?.variant ?? null,
    architecture: i.probe?.architecture ?? prev?.architecture ?? sc?.architecture ?? null,
    format:
      i.probe?.format ?? prev?.format ?? sc?.format ?? (i.isDir ? 'diffusers' : formatFromExt(fileName)),
    path: i.path,
    folder: i.isDir,
    root: i.root,
    size: i.size,
    mtimeMs: i.mtimeMs,
    sha256,
    autoV2: sha256 ? sha256.slice(0, 10).toUpperCase() : null,
    autoV3: i.autoV3,
    source,
    civitai: facts?.civitai ?? sc?.civitai ?? null,
    huggingface,
    expectedSha256,
    verified: verification(sha256, expectedSha256),
    trainedWords,
    baseModel,
    preview: i.preview,
    description: i.a1111?.description ?? facts?.description ?? sc?.description ?? null,
    preferredWeight: i.a1111?.preferredWeight ?? null,
    notes: i.a1111?.notes ?? null,
    nsfw: facts ? facts.nsfw : (sc?.nsfw ?? false),
    addedAt: prev?.addedAt ?? sc?.addedAt ?? new Date().toISOString(),
    problem: i.problem,
    note: i.probe?.note ?? null,
  }
  return { record, probeFamily }
}

function formatFromExt(fileName: string): string {
  const ext = path.extname(fileName).toLowerCase()
  return ext === '.safetensors' || ext === '.sft' ? 'safetensors' : ext.slice(1) || 'unknown'
}
