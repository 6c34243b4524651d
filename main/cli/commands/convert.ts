import type { Command } from 'commander'
import fs from 'node:fs'
import path from 'node:path'
import type { ConvertProgress } from '../../engine/convert/convert'
import { convertCheckpoint } from '../../engine/convert/convert'
import type { LoraSpec } from '../../engine/lora/variant'
import { applyLoras } from '../../engine/lora/variant'
import { appPaths } from '../../platform/paths'
import { CliError } from '../errors'
import { progressBar } from '../progress'

interface ConvertCliOptions {
  lora: LoraSpec[]
  loraMode: string
  precision: string
  cache?: string
}

/** `file:weight` (the weight after the LAST colon, so Windows drive letters survive); weight defaults to 1. */
export function parseLoraArg(v: string): LoraSpec {
  const at = v.lastIndexOf(':')
  const tail = at > 0 ? v.slice(at + 1) : ''
  const weight = tail !== '' && /^-?[0-9]*\.?[0-9]+$/.test(tail) ? Number(tail) : undefined
  return { path: path.resolve(weight === undefined ? v : v.slice(0, at)), multiplier: weight ?? 1 }
}

const MiB = 1024 * 1024

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('Convert an SD 1.x checkpoint (single file or diffusers folder) to ONNX graphs in the cache')
    .argument('<checkpoint>', '.safetensors checkpoint or diffusers folder')
    .option(
      '--lora <file:weight>',
      'apply a LoRA at a multiplier (repeatable)',
      (v: string, acc: LoraSpec[]) => [...acc, parseLoraArg(v)],
      [],
    )
    .option('--lora-mode <mode>', 'branch (multipliers as graph inputs) or merge (baked weights)', 'branch')
    .option('--precision <p>', 'weight storage: fp16 or fp32 (compute is fp32)', 'fp16')
    .option('--cache <dir>', 'conversion cache folder (default: the data folder cache)')
    .action(async (checkpoint: string, o: ConvertCliOptions) => {
      if (o.precision !== 'fp16' && o.precision !== 'fp32')
        throw new CliError(`--precision must be fp16 or fp32, got ${o.precision}`)
      if (o.loraMode !== 'branch' && o.loraMode !== 'merge')
        throw new CliError(`--lora-mode must be branch or merge, got ${o.loraMode}`)
      const mode = o.loraMode
      const cacheRoot = o.cache ? path.resolve(o.cache) : appPaths().conversionCache
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
        const t0 = performance.now()
        const model = await convertCheckpoint(path.resolve(checkpoint), {
          cacheRoot,
          precision: o.precision,
          signal: ac.signal,
          onProgress,
        })
        bar?.stop()
        bar = undefined
        const took = ((performance.now() - t0) / 1000).toFixed(1)
        process.stdout.write(
          `${model.cached ? 'Already converted' : `Converted in ${took} s`}: ${model.dir}\n`,
        )
        for (const [g, p] of Object.entries(model.paths))
          if (fs.existsSync(p)) process.stdout.write(`  ${g.padEnd(13)} ${p}\n`)
        if (o.lora.length) {
          const t1 = performance.now()
          const v = await applyLoras(model, o.lora, { cacheRoot, signal: ac.signal, mode })
          const ms = (performance.now() - t1).toFixed(0)
          process.stdout.write(
            `LoRA set ${v.key} (${v.mode}) ${v.cached ? 'cached' : `built in ${ms} ms`}:\n`,
          )
          for (const l of o.lora) process.stdout.write(`  ${l.path} x ${l.multiplier}\n`)
          for (const [g, n] of Object.entries(v.merged)) process.stdout.write(`  ${g}: ${n} layers\n`)
          for (const [g, inputs] of Object.entries(v.inputs))
            process.stdout.write(`  ${g} inputs: ${JSON.stringify(inputs)}\n`)
          for (const g of ['text_encoder', 'unet'] as const)
            if (v.paths[g] !== model.paths[g]) process.stdout.write(`  ${g.padEnd(13)} ${v.paths[g]}\n`)
        }
      } catch (err) {
        bar?.stop()
        if (ac.signal.aborted) throw new CliError('conversion cancelled; nothing was left in the cache', 130)
        throw new CliError(err instanceof Error ? err.message : String(err))
      } finally {
        process.off('SIGINT', onSigint)
      }
    })
}
