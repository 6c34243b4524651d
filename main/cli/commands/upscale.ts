import type { Command } from 'commander'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { decodeImageWithAlpha, encodePng } from '../../engine/image/codec'
import { describeArch } from '../../model-formats/probe/upscaler'
import type { UpscalerChoice } from '../../engine/upscale/service'
import { resolveUpscaler, UpscaleService } from '../../engine/upscale/service'
import { isProviderPreference } from '../../engine/runtime/providers'
import { Library } from '../../library/library'
import { atelierHome } from '../../platform/paths'
import { CliError } from '../errors'
import { progressBar } from '../progress'

interface UpscaleCliOptions {
  model: string
  image: string
  scale?: string
  width?: string
  height?: string
  tile: string
  tilePad: string
  out: string
  provider: string
}

function int(v: string | undefined, what: string, min: number): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new CliError(`${what} must be an integer >= ${min}, got "${v}"`)
  return n
}

/** Upscaler names: lanczos / nearest, a model file, or an upscaler in the library (by name or id). */
export async function resolveUpscalerArg(name: string): Promise<UpscalerChoice> {
  try {
    return resolveUpscaler(name)
  } catch {
    // Not a keyword or a file: look it up in the library.
  }
  const lib = await Library.open(atelierHome())
  try {
    const rec = lib.get(name)
    return resolveUpscaler(name, () => (rec && rec.type === 'upscaler' ? rec.path : undefined))
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err))
  } finally {
    await lib.dispose()
  }
}

export function registerUpscale(program: Command): void {
  program
    .command('upscale')
    .description('Upscale a picture with an upscaler model (ESRGAN / Real-ESRGAN / compact) or Lanczos')
    .requiredOption('--image <file>', 'input picture (PNG, JPEG, WebP, …)')
    .requiredOption('--out <file>', 'output PNG')
    .option(
      '--model <upscaler>',
      'lanczos, nearest, a .pth / .safetensors file, or a library upscaler',
      'lanczos',
    )
    .option('--scale <factor>', 'upscale factor (default: the model’s own, 2 for Lanczos)')
    .option('--width <px>', 'exact output width (height follows the aspect ratio unless given)')
    .option('--height <px>', 'exact output height')
    .option('--tile <px>', 'tile size in input pixels; 0 = whole image at once', '512')
    .option('--tile-pad <px>', 'context added around each tile', '10')
    .option('--provider <name>', 'execution provider: auto, cpu, cuda, dml, coreml, webgpu', 'auto')
    .action(async (o: UpscaleCliOptions) => {
      if (!isProviderPreference(o.provider))
        throw new CliError(`--provider: unknown provider "${o.provider}"`)
      const tile = int(o.tile, '--tile', 0) ?? 512
      const tilePad = int(o.tilePad, '--tile-pad', 0) ?? 10
      const width = int(o.width, '--width', 1)
      const height = int(o.height, '--height', 1)
      let scale: number | undefined
      if (o.scale !== undefined) {
        scale = Number(o.scale)
        if (!(scale > 0) || !Number.isFinite(scale) || scale > 16)
          throw new CliError(`--scale must be a number in (0, 16], got "${o.scale}"`)
      }
      const upscaler = await resolveUpscalerArg(o.model)
      let bytes: Buffer
      try {
        bytes = await readFile(o.image)
      } catch {
        throw new CliError(`${o.image}: cannot read the input picture`)
      }
      const img = await decodeImageWithAlpha(bytes, { name: o.image }).catch((err: unknown) => {
        throw new CliError(err instanceof Error ? err.message : String(err))
      })
      const service = new UpscaleService({
        preference: o.provider,
        onFallback: (s) => process.stderr.write(`provider ${s.provider} skipped: ${s.reason}\n`),
      })
      const ac = new AbortController()
      const onSigint = (): void => ac.abort()
      process.once('SIGINT', onSigint)
      let bar: ReturnType<typeof progressBar> | undefined
      try {
        let label = 'Lanczos'
        if (upscaler.kind === 'model') {
          const model = await service.model(upscaler.file).catch((err: unknown) => {
            throw new CliError(err instanceof Error ? err.message : String(err))
          })
          label = `${path.basename(upscaler.file)}: ${describeArch(model.arch)} on ${model.provider}`
          scale ??= width === undefined && height === undefined ? model.scale : undefined
        }
        process.stderr.write(`${label}\n`)
        const t0 = performance.now()
        const out = await service.upscale(img, {
          upscaler,
          scale,
          width,
          height,
          tile,
          tilePad,
          signal: ac.signal,
          onProgress: (p) => {
            bar ??= progressBar('Upscaling', p.total, ' tiles')
            bar.update(p.done, p.passes > 1 ? `pass ${p.pass}/${p.passes}` : '')
          },
        })
        bar?.stop()
        bar = undefined
        await writeFile(o.out, await encodePng(out))
        const took = ((performance.now() - t0) / 1000).toFixed(1)
        process.stdout.write(
          `${o.out}: ${out.width}x${out.height} (from ${img.width}x${img.height}) in ${took} s\n`,
        )
      } catch (err) {
        bar?.stop()
        if (ac.signal.aborted) throw new CliError('cancelled', 130)
        if (err instanceof CliError) throw err
        throw new CliError(err instanceof Error ? err.message : String(err))
      } finally {
        process.removeListener('SIGINT', onSigint)
        await service.release()
      }
    })
}
