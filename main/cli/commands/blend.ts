import type { Command } from 'commander'
import { AppError } from '../../services/errors'
import { CliError } from '../errors'
import type { GenerateOptions } from './generate'
import { runGenerate } from './generate'
import { addImagePromptOptions } from './image-prompt-flags'

/**
 * `atelier blend img1 img2 [...]`: Midjourney's /blend on IP-Adapter: 2–5 images, no text, their CLIP image
 * embeddings averaged (weights equal, or `img:weight`) and run at adapter scale 1 through txt2img.
 */

interface BlendOptions {
  model: string
  out: string
  prompt?: string
  negative?: string
  dimensions?: string
  steps?: string
  sampler?: string
  cfg?: string
  seed?: string
  width?: string
  height?: string
  batchCount?: string
  ipAdapter?: string
  imageEncoder?: string
  tokenizer?: string
  home?: string
  cache?: string
  quiet?: boolean
}

/** Midjourney /blend --dimensions at the SD 1.x base size (SDXL models: pass --width/--height). */
const DIMENSIONS: Record<string, [number, number]> = {
  portrait: [448, 640],
  square: [512, 512],
  landscape: [640, 448],
}

export function blendOptions(images: string[], o: BlendOptions): GenerateOptions {
  if (images.length < 2 || images.length > 5)
    throw new CliError(`blend takes 2 to 5 images (got ${images.length}), like Midjourney's /blend`)
  const dims = o.dimensions ? DIMENSIONS[o.dimensions.toLowerCase()] : undefined
  if (o.dimensions && !dims) throw new CliError('--dimensions must be portrait, square or landscape')
  return {
    model: o.model,
    prompt: o.prompt ?? '',
    out: o.out,
    lora: [],
    ipImage: images,
    ...(o.negative !== undefined ? { negative: o.negative } : {}),
    ...(o.ipAdapter ? { ipAdapter: o.ipAdapter } : {}),
    ...(o.imageEncoder ? { imageEncoder: o.imageEncoder } : {}),
    ...(o.steps ? { steps: o.steps } : {}),
    ...(o.sampler ? { sampler: o.sampler } : {}),
    ...(o.cfg ? { cfg: o.cfg } : {}),
    ...(o.seed ? { seed: o.seed } : {}),
    ...(o.batchCount ? { batchCount: o.batchCount } : {}),
    ...((o.width ?? dims) ? { width: o.width ?? String(dims?.[0]) } : {}),
    ...((o.height ?? dims) ? { height: o.height ?? String(dims?.[1]) } : {}),
    ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}),
    ...(o.home ? { home: o.home } : {}),
    ...(o.cache ? { cache: o.cache } : {}),
    ...(o.quiet ? { quiet: true } : {}),
  }
}

export function registerBlend(program: Command): void {
  const cmd = program
    .command('blend')
    .description(
      "blend 2-5 images into a new one (Midjourney /blend): IP-Adapter with the images' CLIP embeddings averaged, no text",
    )
    .argument('<images...>', '2 to 5 image files; file:weight weighs one image more than the others')
    .requiredOption('--model <model>', 'checkpoint file, diffusers folder, or library name/id')
    .requiredOption('--out <file.png>', 'output PNG')
    .option('--prompt <text>', 'optional text (Midjourney /blend has none)')
    .option('--negative <text>', 'negative prompt')
    .option('--dimensions <shape>', 'portrait (2:3), square (1:1) or landscape (3:2), as /blend --dimensions')
    .option('--steps <n>', 'sampling steps (default 20)')
    .option('--sampler <name>', "sampler, A1111 name (default 'Euler a')")
    .option('--cfg <scale>', 'CFG scale (default 7)')
    .option('--seed <n>', 'seed (default random)')
    .option('--width <px>', 'width, a multiple of 8')
    .option('--height <px>', 'height, a multiple of 8')
    .option('--batch-count <n>', 'images to make (default 1)')
  addImagePromptOptions(cmd, false)
    .option('--tokenizer <path>', 'CLIP tokenizer folder or bpe_simple_vocab_16e6.txt.gz')
    .option('--home <dir>', 'data folder (default: ATELIER_HOME or the per-user folder)')
    .option('--cache <dir>', 'conversion cache folder (default: the data folder cache)')
    .option('--quiet', 'no progress bar')
    .action(async (images: string[], o: BlendOptions) => {
      try {
        await runGenerate('txt2img', blendOptions(images, o))
      } catch (err) {
        if (err instanceof CliError) throw err
        if (err instanceof AppError) throw new CliError(err.message)
        throw err
      }
    })
}
