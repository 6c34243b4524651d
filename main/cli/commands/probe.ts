import type { Command } from 'commander'
import path from 'node:path'
import { AppError } from '../../services/errors'
import { probeWithHashes } from '../../services/probe'
import { CliError } from '../errors'
import { progressBar } from '../progress'
import { withServices } from '../services'

const BAR_MIN_BYTES = 32 * 1024 * 1024

export function registerProbe(program: Command): void {
  program
    .command('probe')
    .description(
      'identify a model (format, family, architecture, runnable?) from its headers, with SHA-256 and AutoV2',
    )
    .argument(
      '<model>',
      'a .safetensors / .pth file, a diffusers / ONNX pipeline folder, or a library name or id',
    )
    .option('--no-hash', 'skip SHA-256 / AutoV2 (hashing reads the whole file)')
    .action(async (target: string, opts: { hash: boolean }) => {
      const record = await withServices({}, async (s) => {
        try {
          return await probeWithHashes(target, {
            hash: opts.hash,
            library: () => s.models.library(),
            onHash: (file, size) => {
              if (size < BAR_MIN_BYTES) return undefined
              const bar = progressBar(`sha256 ${path.basename(file)}`, Math.ceil(size / 2 ** 20), ' MiB')
              return { update: (done) => bar.update(Math.floor(done / 2 ** 20)), end: () => bar.stop() }
            },
          })
        } catch (err) {
          if (err instanceof AppError) throw new CliError(err.message, 2)
          throw err
        }
      })
      process.stdout.write(`${JSON.stringify(record, null, 2)}\n`)
      if (!record.runnable) throw new CliError(`${target}: ${record.reason ?? 'this model cannot run'}`, 2)
    })
}
