import type { Command } from 'commander'
import os from 'node:os'
import path from 'node:path'
import { formatResults, runReferenceSet } from '../../services/devtools'
import { withServices } from '../services'

interface ReferenceOptions {
  out: string
  case: string[]
  cache?: string
  provider: string
  precision: string
  cpuFp16: string
  quiet?: boolean
}

export function registerReference(program: Command): void {
  program
    .command('reference')
    .description(
      'Run the cases of a golden-data manifest from their inputs and model files; write <out>/<case>.safetensors ' +
        'and, where the expected tensors are present, print a pass/fail table (exit code 1 on failure)',
    )
    .argument('<manifest>', 'manifest.json of a reference set')
    .requiredOption('--out <dir>', 'folder for the produced tensors')
    .option('--case <name>', 'run only this case (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .option('--cache <dir>', 'conversion cache folder (default: the data folder cache)')
    .option('--provider <name>', 'execution provider: auto, cpu, cuda, dml, coreml, webgpu', 'cpu')
    .option(
      '--precision <p>',
      'fp32, or fp16: text encoders, UNet and image encoder as fp16 graphs (fp32 islands), checked under the fp16 rule',
      'fp32',
    )
    .option(
      '--cpu-fp16 <mode>',
      'with --precision fp16 on the CPU provider: emulate (fp32 kernels, fp16 rounding) or native (fp16 tensors)',
      'emulate',
    )
    .option('--quiet', 'print only the table')
    .action(async (manifest: string, o: ReferenceOptions) => {
      const log = o.quiet ? undefined : (s: string) => process.stderr.write(`${s}\n`)
      const results = await withServices(o.cache ? { conversionCache: path.resolve(o.cache) } : {}, (s) =>
        runReferenceSet(s, {
          manifest,
          out: o.out,
          cases: o.case,
          provider: o.provider,
          precision: o.precision,
          cpuFp16: o.cpuFp16,
          log,
          onFallback: (skip) => log?.(`provider ${skip.provider} skipped: ${skip.reason}`),
        }),
      )
      process.stdout.write(`${formatResults(results)}${os.EOL}`)
      const bad = results.filter((r) => r.status === 'fail' || r.status === 'error')
      for (const r of bad) if (r.message) process.stderr.write(`${r.name}: ${r.message}\n`)
      const counts = ['pass', 'fail', 'error', 'written', 'skipped']
        .map((s) => `${results.filter((r) => r.status === s).length} ${s}`)
        .join(', ')
      process.stdout.write(`${counts}; outputs in ${path.resolve(o.out)}${os.EOL}`)
      if (bad.length) process.exitCode = 1
    })
}
