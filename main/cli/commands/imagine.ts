/**
 * `atelier imagine`: Midjourney's workflow on the command line.
 *
 *   atelier imagine "a cat in a hat --ar 2:3 --no text" --model m --out grid/     # grid/1..4.png + grid.png
 *   atelier imagine --upscale 2 --from grid/ --out up/                          # U2: hires fix of image 2
 *   atelier imagine --vary 3 --from grid/ --out var/                            # V3: four variations of image 3
 *
 * U and V read everything from the chosen PNG's parameters (prompt line, seed, size, sampler, steps, CFG),
 * so they also work on any Atelier or A1111 PNG: `--upscale path/to/image.png`.
 */
import type { Command } from 'commander'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import sharp from 'sharp'
import type { GenerateRequest, ImageParameters, SamplerConvention } from '../../../preload/contract-types'
import { imageRng } from '../../../preload/image-rng'
import { AppError } from '../../services/errors'
import { readImageParameters } from '../../services/generation/parameters'
import { CliError } from '../errors'
import { runRequest } from './generate'
import type { WrittenImage } from './generate'

export const GRID_SIZE = 4
export const DEFAULT_VARIATION_STRENGTH = 0.35

interface ImagineOptions {
  model?: string
  out: string
  from?: string
  upscale?: string
  vary?: string
  negative?: string
  steps?: string
  sampler?: string
  cfg?: string
  seed?: string
  batch?: string
  variationStrength?: string
  upscaler?: string
  scale?: string
  hiresStrength?: string
  tokenizer?: string
  home?: string
  cache?: string
  quiet?: boolean
}

function num(v: string | undefined, flag: string, min: number, max: number, int = false): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isFinite(n) || (int && !Number.isInteger(n)) || n < min || n > max)
    throw new CliError(`${flag}: "${v}" must be ${int ? 'a whole number' : 'a number'} from ${min} to ${max}`)
  return n
}

/** The PNG a U/V action starts from: `N` (1–4) in --from (default --out), or a file. */
export function sourceImage(which: string, from: string | undefined, out: string): string {
  if (/^[1-9]$/.test(which)) {
    const dir = path.resolve(from ?? out)
    const file = path.join(dir, `${which}.png`)
    if (!fs.existsSync(file))
      throw new CliError(`${file} does not exist; run \`atelier imagine "<prompt>" --out ${dir}\` first`)
    return file
  }
  if (!fs.existsSync(which))
    throw new CliError(`${which}: no such image (give 1–4 with --from <dir>, or a PNG)`)
  return path.resolve(which)
}

/** The line without its `--seed N` (U and V run with the chosen image's seed). */
export function withoutSeedFlag(line: string): string {
  return line.replace(/(^|\s)--seed\s+\S+/gi, '').trim()
}

const CONVENTIONS: readonly SamplerConvention[] = ['a1111', 'comfy', 'diffusers']

/** The sampler convention the image was made with (`Sampler convention`; A1111's when absent). */
function conventionOf(p: ImageParameters): { samplerConvention?: SamplerConvention } {
  const c = p.settings['Sampler convention']
  return CONVENTIONS.includes(c as SamplerConvention) ? { samplerConvention: c as SamplerConvention } : {}
}

/** The request that re-creates an image from its parameters (the Midjourney line when it has one). */
export function requestFromParameters(p: ImageParameters, model: string | undefined): GenerateRequest {
  if (!p.text) throw new CliError('the image has no generation parameters (not made by Atelier or A1111)')
  const line = p.settings['Midjourney prompt']
  const m = model ?? p.model
  if (!m) throw new CliError('the image does not name its model; give --model')
  const rng = imageRng(p)
  return {
    mode: 'txt2img',
    model: m,
    // The line as typed re-derives the prompt, negative prompt and size (its --seed gives way to the image's
    // own seed); otherwise the parsed fields.
    prompt: line !== undefined ? withoutSeedFlag(line) : p.prompt,
    ...(line === undefined && p.negativePrompt ? { negativePrompt: p.negativePrompt } : {}),
    ...(p.width && p.height ? { width: p.width, height: p.height } : {}),
    ...(p.steps ? { steps: p.steps } : {}),
    ...(p.sampler ? { sampler: p.sampler } : {}),
    ...(p.scheduleType ? { scheduleType: p.scheduleType } : {}),
    ...conventionOf(p),
    ...(p.clipSkip !== undefined && p.clipSkip > 1 ? { clipSkip: p.clipSkip } : {}),
    ...(rng ? { rng } : {}),
    ...(p.cfgScale !== undefined ? { cfgScale: p.cfgScale } : {}),
    ...(p.seed !== undefined ? { seed: p.seed } : {}),
    // an upscale of a variation keeps its variation
    ...(p.settings['Variation seed'] !== undefined && p.settings['Variation seed strength'] !== undefined
      ? {
          variationSeed: Number(p.settings['Variation seed']),
          variationStrength: Number(p.settings['Variation seed strength']),
        }
      : {}),
  }
}

/** A 2×2 (or n-wide) contact sheet of the images, as Midjourney shows its grid. */
export async function writeGrid(images: WrittenImage[], file: string): Promise<void> {
  if (images.length === 0) return
  const w = Math.max(...images.map((i) => i.width))
  const h = Math.max(...images.map((i) => i.height))
  const cols = images.length === 1 ? 1 : 2
  const rows = Math.ceil(images.length / cols)
  await sharp({ create: { width: w * cols, height: h * rows, channels: 3, background: '#000' } })
    .composite(
      images.map((img, i) => ({ input: img.file, left: (i % cols) * w, top: Math.floor(i / cols) * h })),
    )
    .png()
    .toFile(file)
}

async function imagine(line: string | undefined, o: ImagineOptions): Promise<void> {
  const out = path.resolve(o.out)
  const common = {
    home: o.home,
    cache: o.cache,
    tokenizer: o.tokenizer,
    quiet: o.quiet,
  }
  const tuning = (req: GenerateRequest): GenerateRequest => {
    const steps = num(o.steps, '--steps', 1, 500, true)
    const cfg = num(o.cfg, '--cfg', 0, 50)
    return {
      ...req,
      ...(steps !== undefined ? { steps } : {}),
      ...(cfg !== undefined ? { cfgScale: cfg } : {}),
      ...(o.sampler ? { sampler: o.sampler } : {}),
    }
  }
  if (o.upscale !== undefined || o.vary !== undefined) {
    if (o.upscale !== undefined && o.vary !== undefined)
      throw new CliError('give --upscale or --vary, not both')
    if (line !== undefined) throw new CliError('--upscale/--vary take no prompt (it comes from the image)')
    const which = (o.upscale ?? o.vary) as string
    const src = sourceImage(which, o.from, out)
    const base = tuning(
      requestFromParameters(readImageParameters(new Uint8Array(fs.readFileSync(src))), o.model),
    )
    const label = /^[1-9]$/.test(which) ? which : path.basename(src, '.png')
    if (o.upscale !== undefined) {
      const req: GenerateRequest = {
        ...base,
        batchSize: 1,
        hires: {
          scale: num(o.scale, '--scale', 1, 8) ?? 2,
          upscaler: o.upscaler ?? 'Latent',
          strength: num(o.hiresStrength, '--hires-strength', 0.01, 1) ?? 0.5,
        },
      }
      await runRequest(req, { model: req.model, ...common }, () => path.join(out, `upscaled-${label}.png`))
      return
    }
    const strength = num(o.variationStrength, '--variation-strength', 0.01, 1) ?? DEFAULT_VARIATION_STRENGTH
    const varSeed = num(o.seed, '--seed', 0, 2 ** 32 - 1, true) ?? crypto.randomInt(0, 2 ** 32 - 1)
    const req: GenerateRequest = {
      ...base,
      batchSize: GRID_SIZE,
      sameSeed: true,
      variationSeed: varSeed,
      variationStrength: strength,
    }
    const written = await runRequest(req, { model: req.model, ...common }, (i) =>
      path.join(out, `${i + 1}.png`),
    )
    await writeGrid(written, path.join(out, 'grid.png'))
    process.stdout.write(`${path.join(out, 'grid.png')}\n`)
    return
  }
  if (line === undefined || line.trim() === '')
    throw new CliError('give a prompt: atelier imagine "<prompt>"')
  if (!o.model) throw new CliError('give --model <checkpoint or library name>')
  const seed = num(o.seed, '--seed', 0, 2 ** 32 - 1, true)
  const req = tuning({
    mode: 'txt2img',
    model: o.model,
    prompt: line,
    batchSize: num(o.batch, '--batch', 1, 16, true) ?? GRID_SIZE,
    ...(o.negative !== undefined ? { negativePrompt: o.negative } : {}),
    ...(seed !== undefined ? { seed } : {}),
  })
  const written = await runRequest(req, { model: o.model, ...common }, (i) => path.join(out, `${i + 1}.png`))
  await writeGrid(written, path.join(out, 'grid.png'))
  process.stdout.write(`${path.join(out, 'grid.png')}\n`)
}

export function registerImagine(program: Command): void {
  program
    .command('imagine')
    .description(
      'Midjourney-style: a grid of four from a prompt line (--ar, --no, ::, --seed, --iw, /blend), then U/V',
    )
    .argument('[prompt]', 'the prompt line as typed in Discord, e.g. "a cat in a hat --ar 2:3 --no text"')
    .requiredOption('--out <dir>', 'output folder: 1.png … 4.png and grid.png (U: upscaled-N.png)')
    .option('--model <model>', 'checkpoint file, folder or library name (U/V: default the image’s model)')
    .option('--upscale <N|file>', 'U: upscale image N (1–4) of --from, or a PNG (hires fix of its seed)')
    .option('--vary <N|file>', 'V: four variations of image N (1–4) of --from, or a PNG')
    .option('--from <dir>', 'folder of an earlier grid (default: --out)')
    .option('--negative <text>', 'negative prompt (--no in the line is appended)')
    .option('--seed <n>', 'seed (V: the variation seed; default random)')
    .option('--batch <n>', 'images in the grid (default 4)')
    .option('--steps <n>', 'sampling steps (default 20)')
    .option('--sampler <name>', "sampler, A1111 name (default 'Euler a')")
    .option('--cfg <scale>', 'CFG scale (default 7)')
    .option(
      '--variation-strength <0..1>',
      `V: variation seed strength (default ${DEFAULT_VARIATION_STRENGTH})`,
    )
    .option('--upscaler <name>', "U: 'Latent' (default), Lanczos, or an upscaler model from the library")
    .option('--scale <factor>', 'U: upscale factor (default 2)')
    .option('--hires-strength <0..1>', 'U: denoising strength of the hires pass (default 0.5)')
    .option('--tokenizer <path>', 'CLIP tokenizer (default: the model’s, else the bundled one)')
    .option('--home <dir>', 'data folder (default: ATELIER_HOME or the per-user folder)')
    .option('--cache <dir>', 'conversion cache folder')
    .option('--quiet', 'no progress bar')
    .action(async (line: string | undefined, o: ImagineOptions) => {
      try {
        await imagine(line, o)
      } catch (err) {
        if (err instanceof CliError) throw err
        if (err instanceof AppError) throw new CliError(err.message)
        throw err
      }
    })
}
