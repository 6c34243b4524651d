/**
 * Pre-flight estimate of one generation request: wall time and peak memory, from
 * - the architecture's FLOPs (UNet per evaluation at the request's latent size, VAE decode/encode at its
 *   image size; same counting as bench/unet-common.ts: convs, linears and the two attention products), and
 * - a per-machine, per-provider calibration: seconds of the model family's own UNet and VAE decoder at a
 *   small reference size (calibrate.ts), so FLOPs/s already include this machine's kernels and threads.
 * Memory: weights resident (fp32; low-memory mode: the largest stage in fp16) plus activations (UNet
 * attention scores and feature maps, VAE feature maps at full resolution).
 */

import type { ModelSizes } from './sizes'

export type Family = 'sd-1' | 'sdxl'

/**
 * Fitted on bench/memory.ts (peak resident set of real runs through the optimised-model cache, CPU
 * provider): tiny SD 1.5 at 256² and 512² (weights ~30 MB: the process and the decoder's maps) and the
 * full-size SD 1.5 at 512² (5.03 GiB measured).
 */
const PROCESS_GIB = 0.2
/** Full-resolution feature maps of the decoder's width alive at its peak (VAE and TAESD alike). */
const DECODE_MAPS = 9
/** UNet feature maps of the first level's width per latent pixel (attention runs as flash attention on the CPU: no S² scores). */
const UNET_MAPS = 40
const TAESD_WIDTH = 64
/** Weight bytes held while a first session folds fp16 weights into fp32 (full-size SD 1.5: 6.8 GiB for 3.8). */
const FIRST_LOAD_WEIGHTS = 1.8

/** The reference latent size calibration runs at (32x32 latents = 256x256 pixels, batch 1, no CFG). */
export const REF_LATENT = 32

export interface Calibration {
  /** Seconds of one UNet evaluation at REF_LATENT, batch 1. */
  unetSeconds: number
  /** Seconds of one VAE decode of REF_LATENT latents. */
  decodeSeconds: number
  /** Seconds of one text-encoder pass (77 tokens, batch 1). */
  textSeconds: number
  /** Seconds to create every session of the model (once per model load). */
  loadSeconds: number
  /** Measured activation bytes / formula at the reference size (1 when unmeasured). */
  memoryFactor: number
  /** true: measured on this machine; false: a default guess. */
  measured: boolean
}

/** Parameter counts of the standard architectures (UNet, text encoders, VAE). */
export const PARAMS: Record<Family, { unet: number; text: number; vae: number }> = {
  'sd-1': { unet: 859.5e6, text: 123.1e6, vae: 83.7e6 },
  sdxl: { unet: 2567.5e6, text: 817.6e6, vae: 83.7e6 },
}

interface UnetShape {
  channels: number[]
  /** Transformer blocks per resnet, per level (0: none). */
  depth: number[]
  midDepth: number
  context: number
  heads: (c: number) => number
}

const UNETS: Record<Family, UnetShape> = {
  'sd-1': {
    channels: [320, 640, 1280, 1280],
    depth: [1, 1, 1, 0],
    midDepth: 1,
    context: 768,
    heads: () => 8,
  },
  sdxl: { channels: [320, 640, 1280], depth: [0, 2, 10], midDepth: 10, context: 2048, heads: (c) => c / 64 },
}

/** FLOPs (2 per MAC) of one UNet evaluation of `batch` latents h x w, 77 context tokens. */
export function unetFlops(family: Family, batch: number, h0: number, w0: number): number {
  const u = UNETS[family]
  let macs = 0
  const k3 = (ci: number, co: number, h: number, w: number): number => ci * co * 9 * h * w
  const resnet = (ci: number, co: number, h: number, w: number): void => {
    macs += k3(ci, co, h, w) + k3(co, co, h, w) + (ci !== co ? ci * co * h * w : 0)
  }
  const transformer = (c: number, h: number, w: number, depth: number): void => {
    const s = h * w
    if (depth === 0) return
    macs += 2 * c * c * s // proj_in, proj_out
    macs += depth * ((4 + 2 + 12) * c * c * s + 2 * u.context * c * 77 + 2 * s * s * c + 2 * s * 77 * c)
  }
  const levels = u.channels.length
  let h = h0
  let w = w0
  let c = u.channels[0] as number
  macs += k3(4, c, h, w)
  const skips = [c]
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < 2; j++) {
      resnet(c, u.channels[i] as number, h, w)
      c = u.channels[i] as number
      transformer(c, h, w, u.depth[i] as number)
      skips.push(c)
    }
    if (i < levels - 1) {
      h = Math.ceil(h / 2)
      w = Math.ceil(w / 2)
      macs += k3(c, c, h, w)
      skips.push(c)
    }
  }
  resnet(c, c, h, w)
  transformer(c, h, w, u.midDepth)
  resnet(c, c, h, w)
  const sizes: [number, number][] = []
  for (let i = 0, hh = h0, ww = w0; i < levels; i++, hh = Math.ceil(hh / 2), ww = Math.ceil(ww / 2))
    sizes.push([hh, ww])
  for (let i = 0; i < levels; i++) {
    const co = u.channels[levels - 1 - i] as number
    for (let j = 0; j <= 2; j++) {
      resnet(c + (skips.pop() as number), co, h, w)
      c = co
      transformer(c, h, w, u.depth[levels - 1 - i] as number)
    }
    if (i < levels - 1) {
      ;[h, w] = sizes[levels - 2 - i] as [number, number]
      macs += k3(c, c, h, w)
    }
  }
  macs += k3(c, 4, h, w)
  return 2 * batch * macs
}

/** FLOPs of one VAE decode of `batch` latents h x w (AutoencoderKL 128/256/512/512, 3 resnets per level). */
export function vaeDecodeFlops(batch: number, h: number, w: number): number {
  const ch = [512, 512, 256, 128]
  let macs = 4 * 512 * 9 * h * w + 2 * 2 * 512 * 512 * 9 * h * w + 4 * 512 * 512 * h * w
  let c = 512
  let hh = h
  let ww = w
  ch.forEach((co, i) => {
    for (let j = 0; j < 3; j++) {
      macs += (c * co + co * co) * 9 * hh * ww + (c !== co ? c * co * hh * ww : 0)
      c = co
    }
    if (i < ch.length - 1) {
      hh *= 2
      ww *= 2
      macs += c * c * 9 * hh * ww
    }
  })
  macs += c * 3 * 9 * hh * ww
  return 2 * batch * macs
}

export interface EstimateRequest {
  family: Family
  mode: 'txt2img' | 'img2img' | 'inpaint' | 'outpaint'
  width: number
  height: number
  steps: number
  /** img2img / inpaint denoising strength (A1111: int(steps x strength) steps run). */
  strength?: number
  exactSteps?: boolean
  cfgScale: number
  sampler: string
  batchSize: number
  batchCount: number
  hires?: { scale: number; steps?: number; strength?: number }
  lowMemory: boolean
  /** Final decode with TAESD instead of the VAE (its activations are a fraction of the VAE's). */
  draftDecode?: boolean
  /** Sessions already created (no load time). */
  loaded: boolean
  /** The converted model's own parameter counts and widths (default: the family's standard ones). */
  sizes?: ModelSizes
  /**
   * The model's optimised copy is not built yet (its first CPU session): onnxruntime then holds the fp16
   * graph and its fp32 folding at once while the session is created.
   */
  firstLoad?: boolean
}

export interface Estimate {
  seconds: number
  breakdown: { load: number; text: number; sampling: number; decode: number; encode: number }
  /** Seconds per sampling step of the first pass (CFG and sampler evaluations included). */
  stepSeconds: number
  stepsRun: number
  peakBytes: number
  availableBytes: number
  fits: boolean
  /** When it does not fit: what would (low-memory mode, or the largest size of the same aspect). */
  suggestion?: { lowMemory?: true; draftDecode?: true; width?: number; height?: number }
  calibrated: boolean
}

/** Samplers that evaluate the UNet twice per step (second-order or SDE midpoint). */
const TWO_EVALS = /^(heun|dpm2|dpm2 a|dpm\+\+ 2s a|dpm\+\+ sde|restart)/i

function stepsRun(r: EstimateRequest): number {
  if (r.mode === 'txt2img' || r.exactSteps) return r.steps
  const s = Math.min(r.strength ?? (r.mode === 'outpaint' ? 1 : 0.75), 0.999)
  return Math.max(1, Math.floor(r.steps * s))
}

/** The standard sizes of a family (used when the request carries no conversion's own). */
export function standardSizes(family: Family): ModelSizes {
  // A txt2img loads the VAE's decoder only (its encoder is for img2img and inpaint).
  return { params: { ...PARAMS[family], vae: 49.5e6 }, unetChannels: 320, vaeChannels: 128 }
}

/**
 * Resident bytes of the process besides weights and activations: node, onnxruntime, the worker, the
 * sessions' own bookkeeping (bench/memory.ts: the tiny models' peak, where weights are ~30 MB).
 */
export const PROCESS_BYTES = PROCESS_GIB * 2 ** 30

/**
 * Bytes of activations at one UNet evaluation and one decode (the larger counts: they never overlap). The
 * UNet runs `unetBatch` latents (CFG doubles them); the decoder one image at a time, the VAE's or TAESD's.
 */
function activationBytes(unetBatch: number, h: number, w: number, sizes: ModelSizes, draft: boolean): number {
  const unet = 4 * unetBatch * UNET_MAPS * sizes.unetChannels * h * w
  const decode = 4 * DECODE_MAPS * (draft ? TAESD_WIDTH : sizes.vaeChannels) * (8 * h) * (8 * w)
  return Math.max(unet, decode)
}

/** Resident weight bytes: fp32 in memory (low-memory mode: the largest stage, fp16). */
export function weightBytes(
  family: Family,
  lowMemory: boolean,
  sizes: ModelSizes = standardSizes(family),
): number {
  const p = sizes.params
  return lowMemory ? 2 * Math.max(p.unet, p.text, p.vae) : 4 * (p.unet + p.text + p.vae)
}

/** A default calibration (no measurement yet): a modest CPU, so the first estimate errs long. */
export function defaultCalibration(family: Family): Calibration {
  const gflops = 40e9
  return {
    unetSeconds: unetFlops(family, 1, REF_LATENT, REF_LATENT) / gflops,
    decodeSeconds: vaeDecodeFlops(1, REF_LATENT, REF_LATENT) / gflops,
    textSeconds: (2 * PARAMS[family].text * 77) / gflops,
    loadSeconds: (4 * (PARAMS[family].unet + PARAMS[family].text + PARAMS[family].vae)) / 200e6,
    memoryFactor: 1,
    measured: false,
  }
}

export function estimateRequest(
  r: EstimateRequest,
  cal: Calibration,
  memory: { totalBytes: number; reserveBytes?: number },
): Estimate {
  const lw = Math.round(r.width / 8)
  const lh = Math.round(r.height / 8)
  const cfgCopies = r.cfgScale === 1 ? 1 : 2
  const evals = TWO_EVALS.test(r.sampler) ? 2 : 1
  const unetRate = unetFlops(r.family, 1, REF_LATENT, REF_LATENT) / cal.unetSeconds
  const decodeRate = vaeDecodeFlops(1, REF_LATENT, REF_LATENT) / cal.decodeSeconds
  const step = (h: number, w: number): number =>
    (evals * unetFlops(r.family, r.batchSize * cfgCopies, h, w)) / unetRate
  const n = stepsRun(r)
  const stepSeconds = step(lh, lw)
  let sampling = n * stepSeconds
  let decode = vaeDecodeFlops(r.batchSize, lh, lw) / decodeRate
  // The VAE encoder costs about as much as the decoder at the same size.
  let encode = r.mode === 'txt2img' ? 0 : decode
  let peakH = lh
  let peakW = lw
  if (r.mode === 'txt2img' && r.hires) {
    const hh = Math.round(lh * r.hires.scale)
    const hw = Math.round(lw * r.hires.scale)
    const hs = Math.max(1, Math.floor((r.hires.steps ?? r.steps) * Math.min(r.hires.strength ?? 0.7, 0.999)))
    sampling += hs * step(hh, hw)
    decode += vaeDecodeFlops(r.batchSize, hh, hw) / decodeRate
    encode += vaeDecodeFlops(r.batchSize, hh, hw) / decodeRate
    peakH = hh
    peakW = hw
  }
  const perBatch = cal.textSeconds * cfgCopies + sampling + decode + encode
  const load = r.loaded ? 0 : cal.loadSeconds
  const seconds = load + r.batchCount * perBatch
  const sizes = r.sizes ?? standardSizes(r.family)
  const peak = (lowMemory: boolean, h: number, w: number, draft = r.draftDecode === true): number => {
    const weights = weightBytes(r.family, lowMemory, sizes)
    const running = weights + cal.memoryFactor * activationBytes(r.batchSize * cfgCopies, h, w, sizes, draft)
    return PROCESS_BYTES + Math.max(running, r.firstLoad && !lowMemory ? FIRST_LOAD_WEIGHTS * weights : 0)
  }
  const peakBytes = peak(r.lowMemory, peakH, peakW)
  const availableBytes = memory.totalBytes - (memory.reserveBytes ?? 1.5 * 2 ** 30)
  const fits = peakBytes <= availableBytes
  let suggestion: Estimate['suggestion']
  if (!fits) {
    if (!r.draftDecode && peak(r.lowMemory, peakH, peakW, true) <= availableBytes)
      suggestion = { draftDecode: true }
    else if (!r.lowMemory && peak(true, peakH, peakW) <= availableBytes) suggestion = { lowMemory: true }
    else if (!r.lowMemory && !r.draftDecode && peak(true, peakH, peakW, true) <= availableBytes)
      suggestion = { lowMemory: true, draftDecode: true }
    else {
      // The largest size of the same aspect (multiples of 64) that fits in low-memory mode.
      const scale = peakH / lh
      for (let f = 0.95; f > 0.1; f -= 0.05) {
        const w = Math.max(64, Math.floor((r.width * f) / 64) * 64)
        const h = Math.max(64, Math.floor((r.height * f) / 64) * 64)
        if (peak(true, (h / 8) * scale, (w / 8) * scale) <= availableBytes) {
          suggestion = { lowMemory: true, width: w, height: h }
          break
        }
      }
    }
  }
  return {
    seconds,
    breakdown: {
      load,
      text: r.batchCount * cal.textSeconds * cfgCopies,
      sampling: r.batchCount * sampling,
      decode: r.batchCount * decode,
      encode: r.batchCount * encode,
    },
    stepSeconds,
    stepsRun: n,
    peakBytes,
    availableBytes,
    fits,
    ...(suggestion ? { suggestion } : {}),
    calibrated: cal.measured,
  }
}
