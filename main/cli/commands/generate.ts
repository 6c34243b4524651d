import { describeEstimate, estimateGeneration } from '../../services/estimate/estimate'
import type { Command } from 'commander'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type {
  GenerateMode,
  GenerateRequest,
  GenerationResult,
  InpaintArea,
  LoraRequest,
  MaskedContent,
  ResizeMode,
  SamplerConvention,
} from '../../../preload/contract-types'
import { AppError } from '../../services/errors'
import { CliError } from '../errors'
import { progressBar } from '../progress'
import { withServices, type CliServicesOptions } from '../services'
import { addImagePromptOptions, imagePromptRequest } from './image-prompt-flags'

export interface GenerateOptions {
  model: string
  prompt: string
  negative?: string
  out?: string
  estimate?: boolean
  calibrate?: boolean
  lowMemory?: boolean
  draftDecode?: boolean
  lora: string[]
  image?: string
  mask?: string
  strength?: string
  steps?: string
  sampler?: string
  schedule?: string
  convention?: string
  cfg?: string
  seed?: string
  width?: string
  height?: string
  batch?: string
  batchCount?: string
  clipSkip?: string
  vae?: string
  resize?: string
  maskBlur?: string
  maskedContent?: string
  onlyMasked?: boolean
  padding?: string
  invertMask?: boolean
  left?: string
  right?: string
  top?: string
  bottom?: string
  overlap?: string
  repeat?: string
  zoomOut?: string
  tokenizer?: string
  embeddings?: string[]
  exactSteps?: boolean
  rng?: string
  originalSize?: string
  targetSize?: string
  crop?: string
  home?: string
  cache?: string
  quiet?: boolean
  hiresScale?: string
  hiresUpscaler?: string
  hiresStrength?: string
  hiresSteps?: string
  hiresWidth?: string
  hiresHeight?: string
  sdUpscale?: string
  sdUpscaler?: string
  tileOverlap?: string
  ipImage?: string[]
  ipAdapter?: string
  imageEncoder?: string
}

function num(v: string | undefined, flag: string, int = true): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isFinite(n) || (int && !Number.isInteger(n)))
    throw new CliError(`${flag}: "${v}" is not ${int ? 'a whole number' : 'a number'}`)
  return n
}

function pick<T extends string>(v: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined
  if (!(allowed as readonly string[]).includes(v))
    throw new CliError(`${flag}: "${v}" is not one of ${allowed.join(', ')}`)
  return v as T
}

function readBytes(file: string, flag: string): Uint8Array {
  try {
    return new Uint8Array(fs.readFileSync(file))
  } catch (err) {
    throw new CliError(
      `${flag} ${file}: ${(err as { code?: string }).code === 'ENOENT' ? 'no such file' : String(err)}`,
    )
  }
}

/** `WxH` (or `X,Y` for --crop) as two whole numbers >= 0. */
function size(v: string | undefined, flag: string): [number, number] | undefined {
  if (v === undefined) return undefined
  const m = /^(\d+)\s*[x,]\s*(\d+)$/i.exec(v.trim())
  if (!m) throw new CliError(`${flag}: "${v}" is not ${flag === '--crop' ? 'LEFT,TOP' : 'WIDTHxHEIGHT'}`)
  return [Number(m[1]), Number(m[2])]
}

/** `name:weight` (weight optional, default 1). */
export function parseLoraFlag(v: string): LoraRequest {
  const m = /^(.+?)(?::(-?[0-9]*\.?[0-9]+))?$/.exec(v.trim())
  if (!m || !m[1]) throw new CliError(`--lora: "${v}" is not name:weight`)
  return { name: m[1], weight: m[2] === undefined ? 1 : Number(m[2]) }
}

function conventionFlag(v: string): SamplerConvention {
  return pick(v, '--convention', ['a1111', 'comfy', 'diffusers'] as const) as SamplerConvention
}

/** The request a command line describes (throws CliError for bad flags). */
export function requestFromOptions(mode: GenerateMode, o: GenerateOptions): GenerateRequest {
  const req: GenerateRequest = {
    mode,
    model: o.model,
    prompt: o.prompt,
    ...(o.negative !== undefined ? { negativePrompt: o.negative } : {}),
    ...(o.sampler ? { sampler: o.sampler } : {}),
    ...(o.schedule ? { scheduleType: o.schedule } : {}),
    ...(o.convention ? { samplerConvention: conventionFlag(o.convention) } : {}),
    steps: num(o.steps, '--steps'),
    cfgScale: num(o.cfg, '--cfg', false),
    seed: num(o.seed, '--seed'),
    width: num(o.width, '--width'),
    height: num(o.height, '--height'),
    batchSize: num(o.batch, '--batch'),
    ...(o.lowMemory ? { lowMemory: true } : {}),
    ...(o.draftDecode ? { draftDecode: true } : {}),
    batchCount: num(o.batchCount, '--batch-count'),
    strength: num(o.strength, '--strength', false),
    ...(o.exactSteps ? { exactSteps: true } : {}),
    ...(o.lora.length ? { loras: o.lora.map(parseLoraFlag) } : {}),
    ...(o.vae ? { vae: o.vae } : {}),
    ...imagePromptRequest(o),
  }
  const clip = num(o.clipSkip, '--clip-skip')
  if (clip !== undefined) {
    if (!Number.isInteger(clip) || clip < 1 || clip > 12)
      throw new CliError('--clip-skip must be a whole number from 1 to 12 (A1111 Clip skip)')
    req.clipSkip = clip
  }
  const rng = pick(o.rng, '--rng', ['cpu', 'gpu'] as const)
  if (rng) req.rng = rng
  const original = size(o.originalSize, '--original-size')
  const target = size(o.targetSize, '--target-size')
  const crop = size(o.crop, '--crop')
  if (original || target || crop)
    req.sdxl = {
      ...(original ? { originalWidth: original[0], originalHeight: original[1] } : {}),
      ...(crop ? { cropLeft: crop[0], cropTop: crop[1] } : {}),
      ...(target ? { targetWidth: target[0], targetHeight: target[1] } : {}),
    }
  if (
    mode === 'txt2img' &&
    [o.hiresScale, o.hiresUpscaler, o.hiresStrength, o.hiresSteps, o.hiresWidth, o.hiresHeight].some(
      (v) => v !== undefined,
    )
  )
    req.hires = {
      scale: num(o.hiresScale, '--hires-scale', false),
      ...(o.hiresUpscaler ? { upscaler: o.hiresUpscaler } : {}),
      strength: num(o.hiresStrength, '--hires-strength', false),
      steps: num(o.hiresSteps, '--hires-steps'),
      width: num(o.hiresWidth, '--hires-width'),
      height: num(o.hiresHeight, '--hires-height'),
    }
  if (mode === 'img2img' && (o.sdUpscale !== undefined || o.sdUpscaler !== undefined))
    req.sdUpscale = {
      scale: num(o.sdUpscale, '--sd-upscale', false),
      ...(o.sdUpscaler ? { upscaler: o.sdUpscaler } : {}),
      tileOverlap: num(o.tileOverlap, '--tile-overlap'),
    }
  for (const part of [req.hires, req.sdUpscale] as (Record<string, unknown> | undefined)[])
    if (part) for (const k of Object.keys(part)) if (part[k] === undefined) delete part[k]
  if (mode !== 'txt2img') {
    if (!o.image) throw new CliError(`${mode} needs --image <file>`)
    req.image = readBytes(o.image, '--image')
    const resize = pick<ResizeMode>(o.resize, '--resize', [
      'just-resize',
      'crop-and-resize',
      'resize-and-fill',
    ])
    if (resize) req.resizeMode = resize
  }
  if (mode === 'inpaint' || mode === 'outpaint') {
    req.maskBlur = num(o.maskBlur, '--mask-blur')
    const mc = pick<MaskedContent>(o.maskedContent, '--masked-content', [
      'fill',
      'original',
      'latent-noise',
      'latent-nothing',
    ])
    if (mc) req.maskedContent = mc
  }
  if (mode === 'inpaint') {
    if (!o.mask) throw new CliError('inpaint needs --mask <file> (white = repaint)')
    req.mask = readBytes(o.mask, '--mask')
    const area: InpaintArea = o.onlyMasked ? 'only-masked' : 'whole-picture'
    req.inpaintArea = area
    req.onlyMaskedPadding = num(o.padding, '--padding')
    if (o.invertMask) req.invertMask = true
  }
  if (mode === 'outpaint') {
    req.outpaint = {
      left: num(o.left, '--left'),
      right: num(o.right, '--right'),
      top: num(o.top, '--top'),
      bottom: num(o.bottom, '--bottom'),
      overlap: num(o.overlap, '--overlap'),
      repeat: num(o.repeat, '--repeat'),
      zoomOut: num(o.zoomOut, '--zoom-out', false),
    }
  }
  for (const k of Object.keys(req) as (keyof GenerateRequest)[]) if (req[k] === undefined) delete req[k]
  if (req.outpaint)
    for (const k of Object.keys(req.outpaint) as (keyof NonNullable<GenerateRequest['outpaint']>)[])
      if (req.outpaint[k] === undefined) delete req.outpaint[k]
  return req
}

/** out.png, out-1.png, out-2.png ... */
function outName(out: string, i: number): string {
  if (i === 0) return out
  const ext = path.extname(out) || '.png'
  return `${out.slice(0, out.length - path.extname(out).length)}-${i}${ext}`
}

export async function runGenerate(mode: GenerateMode, o: GenerateOptions): Promise<void> {
  const req = requestFromOptions(mode, o)
  if (o.estimate) return printEstimate(req, o)
  if (!o.out) throw new CliError('--out is required (or --estimate)')
  const out = path.resolve(o.out)
  await runRequest(req, o, (i) => outName(out, i))
}

/** `--estimate`: time and peak memory of the request (calibrating first with `--calibrate`), nothing made. */
async function printEstimate(req: GenerateRequest, o: GenerateOptions): Promise<void> {
  await withServices(servicesOptions(o), async (s) => {
    const model = await s.resolvers.model(req.model)
    const e = await estimateGeneration(req, {
      modelPath: model.path,
      calibrationFile: path.join(s.home, 'calibration.json'),
      cacheRoot: s.conversionCache,
      calibrateIfMissing: o.calibrate === true,
      onStatus: (m) => void (o.quiet ? undefined : process.stderr.write(`${m}\n`)),
    })
    process.stdout.write(`${describeEstimate(e)}\n`)
  })
}

export interface WrittenImage {
  file: string
  width: number
  height: number
  seed?: number
}

type ServiceFlags = Pick<GenerateOptions, 'home' | 'cache' | 'tokenizer' | 'embeddings'>

/** The flags that choose the data folder, the conversion cache, the tokenizer and extra embedding folders. */
function servicesOptions(o: ServiceFlags): CliServicesOptions {
  return {
    home: o.home,
    ...(o.cache ? { conversionCache: path.resolve(o.cache) } : {}),
    ...(o.tokenizer ? { tokenizer: path.resolve(o.tokenizer) } : {}),
    embeddingDirs: (o.embeddings ?? []).map((d) => path.resolve(d)),
  }
}

/**
 * Runs one request through the app's generation service (the data folder's settings and library) and writes
 * image i to `fileFor(i)`. The images are made in a temporary gallery, so the app's gallery stays as it was.
 */
export async function runRequest(
  req: GenerateRequest,
  o: Pick<GenerateOptions, 'model' | 'quiet'> & ServiceFlags,
  fileFor: (i: number) => string,
): Promise<WrittenImage[]> {
  const mode = req.mode
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-generate-'))
  try {
    return await withServices({ ...servicesOptions(o), outputsDir: tmp }, async (s) => {
      let bar: ReturnType<typeof progressBar> | undefined
      let jobId = ''
      const finished = new Promise<GenerationResult>((resolve) => {
        s.bus.subscribe((e) => {
          if (e.name === 'generate:finished' && e.payload.jobId === jobId) resolve(e.payload)
          if (o.quiet) return
          if (e.name === 'generate:progress' && e.payload.jobId === jobId) {
            const p = e.payload
            bar ??= progressBar(mode, p.total * p.batchCount, ' steps')
            bar.update(p.batch * p.total + p.step, `batch ${p.batch + 1}/${p.batchCount}`)
          } else if (e.name === 'jobs:progress' && e.payload.id === jobId && !bar && e.payload.message) {
            process.stderr.write(`${e.payload.message}\n`)
          }
        })
      })
      const onSigint = (): void => {
        if (jobId) s.generation.cancel(jobId)
      }
      process.once('SIGINT', onSigint)
      try {
        jobId = (await s.generation.start(req)).jobId
        const result = await finished
        bar?.stop()
        if (result.state !== 'done') {
          const why = result.error ? result.error.message : 'cancelled'
          throw new CliError(`${mode} ${result.state}: ${why}`, result.state === 'cancelled' ? 130 : 1)
        }
        const written: WrittenImage[] = []
        result.images.forEach((img, i) => {
          const dest = fileFor(i)
          fs.mkdirSync(path.dirname(dest), { recursive: true })
          fs.copyFileSync(path.join(tmp, img.fileName), dest)
          process.stdout.write(`${dest} (${img.width}x${img.height}, seed ${img.seed ?? '?'})\n`)
          written.push({
            file: dest,
            width: img.width,
            height: img.height,
            ...(img.seed !== undefined ? { seed: img.seed } : {}),
          })
        })
        return written
      } finally {
        bar?.stop()
        process.removeListener('SIGINT', onSigint)
      }
    })
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

const collect = (v: string, acc: string[]): string[] => [...acc, v]

function common(cmd: Command, mode: GenerateMode): Command {
  cmd
    .requiredOption('--model <model>', 'checkpoint file, diffusers/ONNX folder, or library name/id')
    .requiredOption('--prompt <text>', 'prompt (A1111 syntax: (word:1.2), [word], AND, BREAK, <lora:name:w>)')
    .option('--out <file.png>', 'output PNG (batches: out-1.png, out-2.png, ...); required unless --estimate')
    .option(
      '--estimate',
      'print the time and peak-memory estimate for this request and exit (nothing is made)',
    )
    .option(
      '--calibrate',
      "with --estimate: calibrate this machine first if needed (a short run of the model's graphs)",
    )
    .option(
      '--low-memory',
      'low-memory mode: fp16 weights cast per layer, one stage loaded (slower, about half the peak)',
    )
    .option('--draft-decode', 'decode the final image with TAESD (from the library) instead of the full VAE')
    .option('--negative <text>', 'negative prompt')
    .option('--lora <name:weight>', 'apply a LoRA from the library (repeatable)', collect, [])
    .option(
      '--vae <path|name>',
      "decode and encode with this VAE file (A1111 models/VAE) instead of the checkpoint's own; Automatic = its own",
    )
    .option('--steps <n>', 'sampling steps (default 20)')
    .option(
      '--sampler <name>',
      "sampler, A1111 name (default 'Euler a'; 'DPM++ 2M Karras' also sets the schedule)",
    )
    .option(
      '--schedule <type>',
      'schedule type: Automatic (default), Uniform, Karras, Exponential, SGM Uniform, Simple, Normal, Beta, ...; diffusers convention: Karras, leading, trailing, linspace',
    )
    .option(
      '--convention <a1111|comfy|diffusers>',
      'how the sampler runs (default a1111 for A1111 sampler names)',
    )
    .option('--cfg <scale>', 'CFG scale (default 7)')
    .option('--seed <n>', 'seed (default random; batch images use seed+1, seed+2, ...)')
    .option('--width <px>', 'width, a multiple of 8 (default 512; SDXL 1024)')
    .option('--height <px>', 'height, a multiple of 8 (default 512; SDXL 1024)')
    .option('--batch <n>', 'images per batch (default 1)')
    .option('--batch-count <n>', 'batches (default 1)')
    .option('--clip-skip <n>', 'A1111 Clip skip, 1 to 12: the N-th text-encoder layer from the end (SD 1.x)')
    .option('--rng <cpu|gpu>', "noise: 'cpu' (torch CPU, diffusers) or 'gpu' (CUDA Philox, A1111)")
    .option('--original-size <WxH>', 'SDXL size conditioning: original size (default: the output size)')
    .option('--target-size <WxH>', 'SDXL size conditioning: target size (default: the output size)')
    .option('--crop <LEFT,TOP>', 'SDXL size conditioning: crop top-left corner (default 0,0)')
    .option(
      '--tokenizer <path>',
      'CLIP tokenizer folder (vocab.json + merges.txt) or bpe_simple_vocab_16e6.txt.gz',
    )
    .option(
      '--embeddings <dir>',
      "folder of textual-inversion embeddings used by file name in the prompts (repeatable; the library's are always used)",
      (v: string, acc: string[] = []) => [...acc, v],
    )
    .option('--home <dir>', 'data folder (default: ATELIER_HOME or the per-user folder)')
    .option('--cache <dir>', 'conversion cache folder (default: the data folder cache)')
    .option('--quiet', 'no progress bar')
  if (mode === 'txt2img')
    cmd
      .option('--hires-scale <factor>', 'hires fix: upscale the base image by this factor (A1111 default 2)')
      .option(
        '--hires-upscaler <name>',
        "hires fix upscaler: 'Latent' (default), 'Latent (nearest)', 'Latent (bicubic)', Lanczos, or an upscaler model",
      )
      .option('--hires-strength <0..1>', 'hires fix denoising strength (default 0.7)')
      .option('--hires-steps <n>', 'hires fix steps (default: --steps)')
      .option('--hires-width <px>', 'hires fix: resize to this width instead of --hires-scale')
      .option('--hires-height <px>', 'hires fix: resize to this height instead of --hires-scale')
  if (mode === 'txt2img' || mode === 'img2img') addImagePromptOptions(cmd)
  if (mode === 'img2img')
    cmd
      .option('--sd-upscale <factor>', 'SD upscale: upscale by this factor, then img2img tile by tile')
      .option('--sd-upscaler <name>', 'SD upscale upscaler: Lanczos (default), Nearest, or an upscaler model')
      .option('--tile-overlap <px>', 'SD upscale tile overlap (default 64)')
  if (mode !== 'txt2img')
    cmd
      .requiredOption('--image <file>', 'input image (PNG, JPEG, WebP)')
      .option('--strength <0..1>', 'denoising strength (default 0.75; outpaint 1)')
      .option('--exact-steps', 'run exactly --steps steps (A1111 "do exactly the amount of steps")')
      .option('--resize <mode>', 'just-resize | crop-and-resize | resize-and-fill')
  if (mode === 'inpaint' || mode === 'outpaint')
    cmd
      .option('--mask-blur <px>', 'mask blur (default 4)')
      .option('--masked-content <mode>', 'fill | original | latent-noise | latent-nothing')
  if (mode === 'inpaint')
    cmd
      .requiredOption('--mask <file>', 'mask image: white = repaint')
      .option('--only-masked', 'inpaint area: only the masked region (+ padding) at full resolution')
      .option('--padding <px>', 'padding around the mask for --only-masked (default 32)')
      .option('--invert-mask', 'repaint the black area instead')
  if (mode === 'outpaint')
    cmd
      .option('--left <px>', 'extend the left side')
      .option('--right <px>', 'extend the right side')
      .option('--top <px>', 'extend the top')
      .option('--bottom <px>', 'extend the bottom')
      .option('--overlap <px>', 'band of original pixels repainted along each new side (default 32)')
      .option('--repeat <n>', 'extend n times, each on the previous result')
      .option('--zoom-out <factor>', 'zoom out by this factor (all sides, keeps the input size)')
  return cmd
}

export function registerGenerate(program: Command): void {
  const modes: [GenerateMode, string][] = [
    ['txt2img', 'generate images from a prompt'],
    ['img2img', 'repaint an image guided by a prompt'],
    ['inpaint', 'repaint the white area of a mask'],
    ['outpaint', 'extend an image beyond its borders'],
  ]
  for (const [mode, desc] of modes) {
    common(program.command(mode).description(desc), mode).action(async (o: GenerateOptions) => {
      try {
        await runGenerate(mode, o)
      } catch (err) {
        if (err instanceof CliError) throw err
        if (err instanceof AppError) throw new CliError(err.message)
        throw err
      }
    })
  }
}
