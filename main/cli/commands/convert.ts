import type { Command } from 'commander'
import fs from 'node:fs'
import path from 'node:path'
import type { ConvertLora, ConvertProgress } from '../../services/devtools'
import { convertModel } from '../../services/devtools'
import { CliError } from '../errors'
import { progressBar } from '../progress'
import { withServices } from '../services'

interface ConvertCliOptions {
  lora: ConvertLora[]
  loraMode: string
  precision: string
  cache?: string
  home?: string
}

/** `file:weight` (the weight after the LAST colon, so Windows drive letters survive); weight defaults to 1. */
export function parseLoraArg(v: string): ConvertLora {
  const at = v.lastIndexOf(':')
  const tail = at > 0 ? v.slice(at + 1) : ''
  const weight = tail !== '' && /^-?[0-9]*\.?[0-9]+$/.test(tail) ? Number(tail) : undefined
  return { ref: weight === undefined ? v : v.slice(0, at), multiplier: weight ?? 1 }
}

const MiB = 1024 * 1024

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description(
      'Convert an SD 1.x / SDXL checkpoint (a file, a diffusers folder or a library model) to ONNX graphs in the cache',
    )
    .argument('<checkpoint>', '.safetensors checkpoint, diffusers folder, or library name / id')
    .option(
      '--lora <lora:weight>',
      'apply a LoRA (a file or a library name) at a multiplier (repeatable)',
      (v: string, acc: ConvertLora[]) => [...acc, parseLoraArg(v)],
      [],
    )
    .option('--lora-mode <mode>', 'branch (multipliers as graph inputs) or merge (baked weights)', 'branch')
    .option('--precision <p>', 'weight storage: fp16 or fp32 (compute is fp32)', 'fp16')
    .option('--cache <dir>', 'conversion cache folder (default: the data folder cache)')
    .option('--home <dir>', 'data folder (default: ATELIER_HOME or the per-user folder)')
    .action(async (checkpoint: string, o: ConvertCliOptions) => {
      if (o.precision !== 'fp16' && o.precision !== 'fp32')
        throw new CliError(`--precision must be fp16 or fp32, got ${o.precision}`)
      if (o.loraMode !== 'branch' && o.loraMode !== 'merge')
        throw new CliError(`--lora-mode must be branch or merge, got ${o.loraMode}`)
      const ac = new AbortController()
      const onSigint = (): void => ac.abort()
      process.once('SIGINT', onSigint)
      let bar: ReturnType<typeof progressBar> | undefined
      let phase: ConvertProgress['phase'] | undefined
      const onProgress = (p: ConvertProgress): void => {
        if (p.phase !== phase) {
          bar?.stop()
          phase = p.phase
          bar = progressBar(
            p.phase === 'hash' ? 'Hashing   ' : 'Converting',
            Math.ceil(p.total / MiB),
            ' MiB',
          )
        }
        bar?.update(Math.floor(p.done / MiB), p.graph ?? '')
      }
      try {
        const { model, loras, ms } = await withServices(
          { home: o.home, ...(o.cache ? { conversionCache: path.resolve(o.cache) } : {}) },
          (s) =>
            convertModel(s, {
              checkpoint,
              loras: o.lora,
              loraMode: o.loraMode as 'branch' | 'merge',
              precision: o.precision as 'fp16' | 'fp32',
              signal: ac.signal,
              onProgress,
            }),
        )
        bar?.stop()
        bar = undefined
        process.stdout.write(
          `${model.cached ? 'Already converted' : `Converted in ${(ms / 1000).toFixed(1)} s`}: ${model.dir}\n`,
        )
        for (const [g, p] of Object.entries(model.paths))
          if (fs.existsSync(p)) process.stdout.write(`  ${g.padEnd(13)} ${p}\n`)
        if (loras) {
          const v = loras.variant
          process.stdout.write(
            `LoRA set ${v.key} (${v.mode}) ${v.cached ? 'cached' : `built in ${loras.ms.toFixed(0)} ms`}:\n`,
          )
          for (const l of loras.files) process.stdout.write(`  ${l.path} x ${l.multiplier}\n`)
          for (const [g, n] of Object.entries(v.merged)) process.stdout.write(`  ${g}: ${n} layers\n`)
          for (const [g, inputs] of Object.entries(v.inputs))
            process.stdout.write(`  ${g} inputs: ${JSON.stringify(inputs)}\n`)
          for (const g of ['text_encoder', 'unet'] as const)
            if (v.paths[g] !== model.paths[g]) process.stdout.write(`  ${g.padEnd(13)} ${v.paths[g]}\n`)
        }
      } finally {
        bar?.stop()
        process.off('SIGINT', onSigint)
      }
    })
}
