/**
 * `atelier probe`: what the library would record for a model file or folder (format, family, architecture,
 * runnable?), with SHA-256 / AutoV2. A name that is not a path is looked up in the library the settings name.
 */
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { autoV2, sha256File } from '../model-formats/hash'
import { PickleRefusedError } from '../model-formats/pickle'
import type { ProbeResult } from '../model-formats/probe'
import { probeModel, ProbeError } from '../model-formats/probe'
import type { ProbeInfo } from '../model-formats/probe/identify'
import { identifyAuxiliary } from '../model-formats/probe/identify'
import { SafetensorsError } from '../model-formats/safetensors'
import { AppError } from './errors'
import type { LibraryLike } from './generation/resolve'

export interface FileHash {
  sha256: string
  autoV2: string
}

/** An upscaler, IP-Adapter, image encoder or TAESD: the library's record, runnable unless it carries a note. */
export type AuxiliaryProbe = ProbeInfo & { path: string; runnable: boolean; reason?: string }

export type ProbeReport = (ProbeResult | AuxiliaryProbe) &
  Partial<FileHash> & { hashes?: Record<string, FileHash> }

export interface HashProgress {
  update(bytesDone: number): void
  end(): void
}

export interface ProbeOptions {
  /** SHA-256 / AutoV2 (reads every byte); default true. */
  hash?: boolean
  /** Called as each file's hashing starts; what it returns hears the bytes done and the end. */
  onHash?: (file: string, size: number) => HashProgress | undefined
  /** Where a name that is not an existing path is looked up (the library of the data folder). */
  library?: () => Promise<LibraryLike>
}

async function hashFile(file: string, onHash: ProbeOptions['onHash']): Promise<FileHash> {
  const { size } = await stat(file)
  const progress = onHash?.(file, size)
  try {
    const sha256 = await sha256File(file, { onProgress: (done) => progress?.update(done) })
    return { sha256, autoV2: autoV2(sha256) }
  } finally {
    progress?.end()
  }
}

/** A path, or a library model's name / id (its file). Unknown names are a not-found error. */
async function target(ref: string, library: (() => Promise<LibraryLike>) | undefined): Promise<string> {
  if (!library || (await stat(ref).catch(() => null))) return ref
  const rec = (await library()).get(ref)
  if (rec) return rec.path
  throw new AppError('not-found', `${ref}: no such file or folder, and no model of that name in the library.`)
}

/** The probe record plus hashes: top-level sha256/autoV2 for a file, one entry per weight file for a folder. */
export async function probeWithHashes(ref: string, opts: ProbeOptions = {}): Promise<ProbeReport> {
  const hash = opts.hash ?? true
  let probe: ProbeResult
  let file: string
  try {
    file = await target(ref, opts.library)
    const st = await stat(file).catch(() => null)
    const aux = st?.isFile() ? await identifyAuxiliary(file) : null
    if (aux) {
      const record: AuxiliaryProbe = {
        path: path.resolve(file),
        ...aux,
        runnable: aux.note === null,
        ...(aux.note ? { reason: aux.note } : {}),
      }
      return hash ? { ...record, ...(await hashFile(file, opts.onHash)) } : record
    }
    probe = await probeModel(file)
  } catch (err) {
    if (err instanceof SafetensorsError || err instanceof PickleRefusedError || err instanceof ProbeError)
      throw new AppError('invalid-input', err.message)
    throw err
  }
  if (!hash) return probe
  if (!(await stat(file)).isDirectory()) return { ...probe, ...(await hashFile(file, opts.onHash)) }
  const hashes: Record<string, FileHash> = {}
  for (const [role, f] of Object.entries(probe.files)) {
    if ((await stat(f)).isFile()) hashes[role] = await hashFile(f, opts.onHash)
  }
  return { ...probe, hashes }
}
