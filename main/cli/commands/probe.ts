import type { Command } from 'commander'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { autoV2, sha256File } from '../../model-formats/hash'
import { PickleRefusedError } from '../../model-formats/pickle'
import { identifyAuxiliary } from '../../model-formats/probe/identify'
import type { ProbeInfo } from '../../model-formats/probe/identify'
import type { ProbeResult } from '../../model-formats/probe'
import { probeModel, ProbeError } from '../../model-formats/probe'
import { SafetensorsError } from '../../model-formats/safetensors'
import { CliError } from '../errors'
import { progressBar } from '../progress'

interface FileHash {
  sha256: string
  autoV2: string
}

const BAR_MIN_BYTES = 32 * 1024 * 1024

async function hashFile(file: string): Promise<FileHash> {
  const { size } = await stat(file)
  const bar =
    size >= BAR_MIN_BYTES
      ? progressBar(`sha256 ${path.basename(file)}`, Math.ceil(size / 2 ** 20), ' MiB')
      : undefined
  try {
    const sha256 = await sha256File(file, { onProgress: (done) => bar?.update(Math.floor(done / 2 ** 20)) })
    return { sha256, autoV2: autoV2(sha256) }
  } finally {
    bar?.stop()
  }
}

/** An upscaler, IP-Adapter or image encoder: the library's record, runnable unless it carries a note. */
type AuxiliaryProbe = ProbeInfo & { path: string; runnable: boolean; reason?: string }

/** The probe record plus hashes: top-level sha256/autoV2 for a file, one entry per weight file for a folder. */
export async function probeWithHashes(
  target: string,
  hash = true,
): Promise<(ProbeResult | AuxiliaryProbe) & Partial<FileHash> & { hashes?: Record<string, FileHash> }> {
  let probe: ProbeResult
  try {
    const st = await stat(target).catch(() => null)
    const aux = st?.isFile() ? await identifyAuxiliary(target) : null
    if (aux) {
      const record: AuxiliaryProbe = {
        path: path.resolve(target),
        ...aux,
        runnable: aux.note === null,
        ...(aux.note ? { reason: aux.note } : {}),
      }
      return hash ? { ...record, ...(await hashFile(target)) } : record
    }
    probe = await probeModel(target)
  } catch (err) {
    if (err instanceof SafetensorsError || err instanceof PickleRefusedError || err instanceof ProbeError) {
      throw new CliError(err.message, 2)
    }
    throw err
  }
  if (!hash) return probe
  if (!(await stat(target)).isDirectory()) return { ...probe, ...(await hashFile(target)) }
  const hashes: Record<string, FileHash> = {}
  for (const [role, file] of Object.entries(probe.files)) {
    if ((await stat(file)).isFile()) hashes[role] = await hashFile(file)
  }
  return { ...probe, hashes }
}

export function registerProbe(program: Command): void {
  program
    .command('probe')
    .description(
      'identify a model (format, family, architecture, runnable?) from its headers, with SHA-256 and AutoV2',
    )
    .argument('<path>', 'a .safetensors file, or a diffusers / ONNX pipeline folder')
    .option('--no-hash', 'skip SHA-256 / AutoV2 (hashing reads the whole file)')
    .action(async (target: string, opts: { hash: boolean }) => {
      const record = await probeWithHashes(target, opts.hash)
      process.stdout.write(`${JSON.stringify(record, null, 2)}\n`)
      if (!record.runnable) throw new CliError(`${target}: ${record.reason ?? 'this model cannot run'}`, 2)
    })
}
