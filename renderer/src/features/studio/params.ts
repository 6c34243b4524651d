/**
 * Generation parameters as the studio panel edits them, how they become a GenerateRequest, and how a
 * PNG's A1111 parameters restore them. Pure (no React, no DOM): unit-tested.
 */
import type {
  GenerateMode,
  GenerateRequest,
  ImageParameters,
  InpaintArea,
  MaskedContent,
  ResizeMode,
} from '../../../../preload/contract-types'
import { imageRng } from '../../../../preload/image-rng'
import { floor8, snap8, type Extension } from '../../canvas-kit/geometry'
import { tooLargeError } from './input-size'

/**
 * A1111 sampler names the engine runs (v1.10 menu order). They run the A1111 / k-diffusion way (the DPM++
 * SDE family with per-step noise instead of A1111's Brownian tree); 'TCD' runs with diffusers' scheduler.
 */
export const SAMPLERS = [
  'DPM++ 2M',
  'DPM++ SDE',
  'DPM++ 2M SDE',
  'DPM++ 2M SDE Heun',
  'DPM++ 2S a',
  'DPM++ 3M SDE',
  'Euler a',
  'Euler',
  'LMS',
  'Heun',
  'DPM2',
  'DPM2 a',
  'DPM fast',
  'Restart',
  'DDIM',
  'PLMS',
  'UniPC',
  'LCM',
  'TCD',
] as const

/** A1111 "Schedule type" labels (1.9+); Automatic = the sampler's own default. */
export const SCHEDULE_TYPES = [
  'Automatic',
  'Uniform',
  'Karras',
  'Exponential',
  'Polyexponential',
  'SGM Uniform',
  'KL Optimal',
  'Align Your Steps',
  'Simple',
  'Normal',
  'DDIM',
  'Beta',
] as const

export type SeedMode = 'random' | 'fixed'

export interface LoraChoice {
  /** Library id when picked from the library. */
  id?: string
  /** Name as in `<lora:name:w>` (the file stem). */
  name: string
  weight: number
}

export interface GenerationParams {
  /** Library id (or name) of the checkpoint; '' until one is chosen. */
  model: string
  loras: LoraChoice[]
  prompt: string
  negativePrompt: string
  sampler: string
  /** A1111 Schedule type ('Automatic' = the sampler's default). */
  scheduleType: string
  steps: number
  cfgScale: number
  seedMode: SeedMode
  seed: number
  /** Use the input image's size (rounded down to 8) instead of width/height. */
  sizeFromImage: boolean
  width: number
  height: number
  batchSize: number
  batchCount: number
  strength: number
  exactSteps: boolean
  resizeMode: ResizeMode
  maskBlur: number
  maskedContent: MaskedContent
  inpaintArea: InpaintArea
  onlyMaskedPadding: number
  outpaint: Extension
  outpaintOverlap: number
  /** Outpaint: repeat the extension N times, each on the previous result ("zoom out ×N"). */
  outpaintRepeat: number
  /** Outpaint: blur of the seam mask (A1111 "Mask blur" for the new area). */
  seamBlur: number
  /** Library id of a separate VAE; '' = Automatic (the checkpoint's own). */
  vae: string
  /** A1111 "Clip skip": 1 = the last text-encoder layer, N = the N-th from the end (through the final LN). */
  clipSkip: number
  /** Noise generator: 'cpu' (torch CPU, diffusers) or 'gpu' (NVIDIA Philox, A1111's default). */
  rng: 'cpu' | 'gpu'
  /** Decode the final image with TAESD (fast, a little softer) instead of the full VAE. */
  draftDecode: boolean
  /** 'auto': the engine's default (low memory for SDXL below 32 GiB of RAM); 'low' / 'normal' force it. */
  memoryMode: MemoryMode
}

export type MemoryMode = 'auto' | 'normal' | 'low'

/** A1111's Clip skip slider range. */
export const CLIP_SKIP_MAX = 12

export const DEFAULT_PARAMS: GenerationParams = {
  model: '',
  loras: [],
  prompt: '',
  negativePrompt: '',
  sampler: 'Euler a',
  scheduleType: 'Automatic',
  steps: 20,
  cfgScale: 7,
  seedMode: 'random',
  seed: -1,
  sizeFromImage: true,
  width: 512,
  height: 512,
  batchSize: 1,
  batchCount: 1,
  strength: 0.75,
  exactSteps: false,
  resizeMode: 'just-resize',
  maskBlur: 4,
  maskedContent: 'original',
  inpaintArea: 'whole-picture',
  onlyMaskedPadding: 32,
  outpaint: { left: 0, right: 0, top: 0, bottom: 0 },
  outpaintOverlap: 32,
  outpaintRepeat: 1,
  seamBlur: 8,
  vae: '',
  clipSkip: 1,
  rng: 'cpu',
  draftDecode: false,
  memoryMode: 'auto',
}

export interface ModeInputs {
  image?: Uint8Array
  imageWidth?: number
  imageHeight?: number
  mask?: Uint8Array
}

/** The request the panel sends for a mode; throws a readable Error when something is missing. */
export function buildRequest(
  mode: GenerateMode,
  p: GenerationParams,
  inputs: ModeInputs = {},
): GenerateRequest {
  if (!p.model) throw new Error('Choose a checkpoint first (Model).')
  if (mode !== 'txt2img' && !inputs.image)
    throw new Error('Add an input image first (drop, paste or open one).')
  if (mode === 'inpaint' && !inputs.mask) throw new Error('Paint a mask first: white areas are repainted.')
  const tooLarge =
    mode !== 'txt2img' && inputs.imageWidth && inputs.imageHeight
      ? tooLargeError(inputs.imageWidth, inputs.imageHeight)
      : undefined
  if (tooLarge) throw new Error(tooLarge)
  const req: GenerateRequest = {
    mode,
    model: p.model,
    prompt: p.prompt,
    negativePrompt: p.negativePrompt,
    sampler: p.sampler,
    ...(p.scheduleType && p.scheduleType !== 'Automatic' ? { scheduleType: p.scheduleType } : {}),
    steps: p.steps,
    cfgScale: p.cfgScale,
    seed: p.seedMode === 'random' ? -1 : p.seed,
    batchSize: p.batchSize,
    batchCount: p.batchCount,
  }
  if (p.draftDecode) req.draftDecode = true
  if (p.memoryMode !== 'auto') req.lowMemory = p.memoryMode === 'low'
  if (p.loras.length > 0) req.loras = p.loras.map((l) => ({ name: l.name, weight: l.weight }))
  if (p.vae) req.vae = p.vae
  if (p.clipSkip > 1) req.clipSkip = p.clipSkip
  if (p.rng === 'gpu') req.rng = 'gpu'
  if (inputs.image) req.image = inputs.image
  const useImageSize = mode === 'outpaint' || (p.sizeFromImage && mode !== 'txt2img')
  if (!useImageSize) {
    req.width = snap8(p.width, 64)
    req.height = snap8(p.height, 64)
  } else if (mode !== 'outpaint' && inputs.imageWidth && inputs.imageHeight) {
    req.width = floor8(inputs.imageWidth)
    req.height = floor8(inputs.imageHeight)
  }
  if (mode === 'img2img' || mode === 'inpaint') {
    req.strength = p.strength
    req.exactSteps = p.exactSteps
    req.resizeMode = p.resizeMode
  }
  if (mode === 'inpaint') {
    req.mask = inputs.mask
    req.maskBlur = p.maskBlur
    req.maskedContent = p.maskedContent
    req.inpaintArea = p.inpaintArea
    req.onlyMaskedPadding = p.onlyMaskedPadding
  }
  if (mode === 'outpaint') {
    const o = p.outpaint
    if (o.left + o.right + o.top + o.bottom === 0)
      throw new Error('Extend at least one side (drag a handle).')
    req.outpaint = {
      left: snap8(o.left),
      right: snap8(o.right),
      top: snap8(o.top),
      bottom: snap8(o.bottom),
      overlap: p.outpaintOverlap,
      repeat: p.outpaintRepeat,
    }
    req.maskBlur = p.seamBlur
  }
  return req
}

/** ImageParameters as the engine fills it (typed keys), with the raw `settings` as a fallback. */
export type RestorableParameters = ImageParameters & {
  steps?: number
  sampler?: string
  scheduleType?: string
  cfgScale?: number
  seed?: number
  width?: number
  height?: number
  model?: string
  modelHash?: string
  denoisingStrength?: number
  exactSteps?: boolean
  maskBlur?: number
  maskedContent?: string
  inpaintArea?: string
  maskedAreaPadding?: number
  vae?: string
  vaeHash?: string
  clipSkip?: number
  rng?: string
}

export interface ModelRef {
  id: string
  name: string
  /** File name with extension (A1111's `VAE:` names the file). */
  fileName?: string
  autoV2?: string | null
  sha256?: string | null
}

function num(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === '') return undefined
  const n = Number(v)
  return Number.isFinite(n) ? n : undefined
}

const MASKED_CONTENT: Record<string, MaskedContent> = {
  fill: 'fill',
  original: 'original',
  'latent noise': 'latent-noise',
  'latent nothing': 'latent-nothing',
}

/**
 * A sampler name (and Schedule type) from an infotext or a Civitai page as this panel's pair: older names
 * carry the schedule ('DPM++ 2M Karras' -> 'DPM++ 2M' + Karras, as A1111's paste splits them); a missing
 * schedule is Automatic. Undefined when the sampler is not available.
 */
export function samplerAndSchedule(
  sampler: string,
  scheduleType?: string,
): { sampler: string; scheduleType: string } | undefined {
  let name = sampler.trim()
  let sched =
    SCHEDULE_TYPES.find((t) => t.toLowerCase() === scheduleType?.trim().toLowerCase()) ?? 'Automatic'
  // Longest label first ('Euler a SGM Uniform' is SGM Uniform, not Uniform).
  for (const t of [...SCHEDULE_TYPES.slice(1)].sort((a, b) => b.length - a.length)) {
    if (name.toLowerCase().endsWith(` ${t.toLowerCase()}`)) {
      name = name.slice(0, -(t.length + 1))
      sched = t
      break
    }
  }
  const known = SAMPLERS.find((s) => s.toLowerCase() === name.toLowerCase())
  return known ? { sampler: known, scheduleType: sched } : undefined
}

/** The panel's sampler name for an infotext / Civitai sampler (see samplerAndSchedule). */
export function samplerName(sampler: string, scheduleType?: string): string | undefined {
  return samplerAndSchedule(sampler, scheduleType)?.sampler
}

export interface Restored {
  patch: Partial<GenerationParams>
  /** Things that could not be restored (an unknown sampler, a model not in the library). */
  notes: string[]
}

const stemOf = (n: string): string =>
  n
    .replace(/\.(safetensors|ckpt|pt|bin)$/i, '')
    .trim()
    .toLowerCase()

/** The installed VAE an infotext names: by `VAE hash` (SHA-256 prefix / AutoV2), else by file name or stem. */
export function findVae(
  name: string | undefined,
  hash: string | undefined,
  vaes: readonly ModelRef[],
): ModelRef | undefined {
  const h = hash?.trim().toLowerCase()
  const byHash = h
    ? vaes.find((m) => (m.sha256 && m.sha256.toLowerCase().startsWith(h)) || m.autoV2?.toLowerCase() === h)
    : undefined
  if (byHash || !name) return byHash
  const n = stemOf(name)
  return vaes.find((m) => stemOf(m.name) === n || (m.fileName !== undefined && stemOf(m.fileName) === n))
}

/** A params patch from a PNG's parameters; unknown model names and samplers are reported, not guessed. */
export function restoreParameters(
  r: RestorableParameters,
  models: ModelRef[] = [],
  vaes?: readonly ModelRef[],
): Restored {
  const s = r.settings
  const notes: string[] = [...(r.notRestored ?? [])]
  const patch: Partial<GenerationParams> = { prompt: r.prompt, negativePrompt: r.negativePrompt }
  const steps = r.steps ?? num(s.Steps)
  if (steps !== undefined) patch.steps = steps
  const cfg = r.cfgScale ?? num(s['CFG scale'])
  if (cfg !== undefined) patch.cfgScale = cfg
  const seed = r.seed ?? num(s.Seed)
  if (seed !== undefined) {
    patch.seed = seed
    patch.seedMode = 'fixed'
  }
  const sampler = r.sampler ?? s.Sampler
  if (sampler) {
    const pair = samplerAndSchedule(sampler, r.scheduleType ?? s['Schedule type'])
    if (pair) {
      patch.sampler = pair.sampler
      patch.scheduleType = pair.scheduleType
    } else notes.push(`sampler "${sampler}" is not available; kept ${DEFAULT_PARAMS.sampler}`)
  }
  let width = r.width
  let height = r.height
  const size = /^(\d+)x(\d+)$/.exec(s.Size ?? '')
  if (width === undefined && size) {
    width = Number(size[1])
    height = Number(size[2])
  }
  if (width !== undefined && height !== undefined) {
    patch.width = width
    patch.height = height
    patch.sizeFromImage = false
  }
  const strength = r.denoisingStrength ?? num(s['Denoising strength'])
  if (strength !== undefined) patch.strength = strength
  const exact = r.exactSteps ?? (s['Strength mode'] ? s['Strength mode'] === 'exact steps' : undefined)
  if (exact !== undefined) patch.exactSteps = exact
  const blur = r.maskBlur ?? num(s['Mask blur'])
  if (blur !== undefined) patch.maskBlur = Math.round(blur)
  const area = r.inpaintArea ?? s['Inpaint area']
  if (area) patch.inpaintArea = /only masked/i.test(area) ? 'only-masked' : 'whole-picture'
  const pad = r.maskedAreaPadding ?? num(s['Masked area padding'])
  if (pad !== undefined) patch.onlyMaskedPadding = pad
  const mc = r.maskedContent ?? s['Masked content']
  if (mc && MASKED_CONTENT[mc.toLowerCase()]) patch.maskedContent = MASKED_CONTENT[mc.toLowerCase()]

  const modelName = r.model ?? s.Model
  const modelHash = (r.modelHash ?? s['Model hash'])?.toLowerCase()
  if (modelName || modelHash) {
    const byHash = modelHash
      ? models.find(
          (m) =>
            (m.autoV2 && m.autoV2.toLowerCase() === modelHash) ||
            (m.sha256 && m.sha256.toLowerCase().startsWith(modelHash)),
        )
      : undefined
    const byName = modelName
      ? models.find((m) => m.name.toLowerCase() === modelName.toLowerCase())
      : undefined
    const hit = byHash ?? byName
    if (hit) patch.model = hit.id
    else notes.push(`model "${modelName ?? modelHash}" is not in your library`)
  }
  const clip = r.clipSkip ?? num(s['Clip skip'])
  patch.clipSkip = clip !== undefined ? Math.max(1, Math.min(CLIP_SKIP_MAX, Math.round(clip))) : 1
  const rng = imageRng(r)
  if (rng) patch.rng = rng
  if (vaes) {
    // No VAE in the infotext: the checkpoint's own was used (Automatic).
    const vaeName = r.vae ?? s.VAE
    const vaeHash = r.vaeHash ?? s['VAE hash']
    const vae = vaeName || vaeHash ? findVae(vaeName, vaeHash, vaes) : undefined
    patch.vae = vae?.id ?? ''
    if ((vaeName || vaeHash) && !vae) notes.push(`VAE "${vaeName ?? vaeHash}" is not in your library`)
  }
  return { patch, notes }
}

/** Trigger words appended to a prompt, skipping those already in it. */
export function withTriggerWords(prompt: string, words: string[]): string {
  const have = prompt.toLowerCase()
  const missing = words.map((w) => w.trim()).filter((w) => w && !have.includes(w.toLowerCase()))
  if (missing.length === 0) return prompt
  const sep = prompt.trim() === '' ? '' : prompt.trimEnd().endsWith(',') ? ' ' : ', '
  return `${prompt.trimEnd()}${sep}${missing.join(', ')}`
}
