import type { Command } from 'commander'
import { upscaleFile } from '../../services/upscale-file'
import { CliError } from '../errors'
import { progressBar } from '../progress'
import { withServices } from '../services'

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
      const ac = new AbortController()
      const onSigint = (): void => ac.abort()
      process.once('SIGINT', onSigint)
      let bar: ReturnType<typeof progressBar> | undefined
      const t0 = performance.now()
      try {
        const r = await withServices({}, (s) =>
          upscaleFile(s, {
            upscaler: o.model,
            input: o.image,
            output: o.out,
            scale,
            width,
            height,
            tile,
            tilePad,
            provider: o.provider,
            signal: ac.signal,
            onStart: (label) => process.stderr.write(`${label}\n`),
            onFallback: (skip) => process.stderr.write(`provider ${skip.provider} skipped: ${skip.reason}\n`),
            onProgress: (p) => {
              bar ??= progressBar('Upscaling', p.total, ' tiles')
              bar.update(p.done, p.passes > 1 ? `pass ${p.pass}/${p.passes}` : '')
            },
          }),
        )
        bar?.stop()
        bar = undefined
        const took = ((performance.now() - t0) / 1000).toFixed(1)
        process.stdout.write(
          `${o.out}: ${r.width}x${r.height} (from ${r.inputWidth}x${r.inputHeight}) in ${took} s\n`,
        )
      } finally {
        bar?.stop()
        process.removeListener('SIGINT', onSigint)
      }
    })
}
