import { imageToTensor, tensorToImage } from '../image/tensor'
import type { RawImage } from '../image/types'
import { checkPixels, MAX_GENERATION_PIXELS, MAX_OUTPUT_PIXELS } from '../image/limits'
import type { CoreOptions } from '../pipelines/core'
import { coreImg2Img, decodeLatents } from '../pipelines/core'
import { runK } from '../pipelines/ksampling'
import { denoise } from '../pipelines/denoise'
import type { StepPlan } from '../pipelines/strength'
import { planSteps } from '../pipelines/strength'
import type { LatentShape } from '../pipelines/types'
import { throwIfAborted } from '../pipelines/types'
import type { UpscaleRequest, UpscalerChoice } from './service'
import { resolveUpscaler, upscaleService } from './service'

/**
 * A1111's two upscaling workflows on top of the studio pipelines:
 *
 * - Hires fix (txt2img): generate at the base size, upscale (in latent space, or the decoded picture with
 *   Lanczos / an upscaler model, then re-encoded), then an img2img pass at the target size with its own
 *   denoising strength and steps. A1111 passes the second pass's step count explicitly, so it runs exactly
 *   that many steps of a longer schedule (`steps / strength`), with fresh noise from the same seeds.
 * - SD upscale (img2img script): upscale the picture, cut it into tiles of the model's size overlapping by
 *   `overlap` (images.split_grid), img2img every tile (seed + tile index), and blend the tiles back with
 *   linear ramps over the overlap (images.combine_grid), so no seam shows.
 */

// ------------------------------------------------------------------------------------------ hires fix

export interface HiresOptions {
  /** Upscale factor of the base size (A1111 "Upscale by", default 2). */
  scale?: number
  /** Target size instead of the factor (A1111 "Resize width/height to"; one of them keeps the aspect). */
  width?: number
  height?: number
  /** 'Latent' (default), 'Latent (nearest)', 'Latent (nearest-exact)', 'Latent (bicubic)', 'Lanczos', 'Nearest', or an upscaler model. */
  upscaler?: string
  /** Denoising strength of the second pass (A1111 default 0.7). */
  strength?: number
  /** Steps of the second pass; 0 / absent = the first pass's steps. */
  steps?: number
}

export const HIRES_DEFAULTS = { scale: 2, upscaler: 'Latent', strength: 0.7, steps: 0 } as const

export type LatentMode = 'bilinear' | 'nearest' | 'nearest-exact' | 'bicubic'

/** A1111 latent upscale modes by name (the antialiased variants only differ when shrinking). */
export function latentMode(name: string): LatentMode | null {
  const n = name.trim().toLowerCase()
  if (!n.startsWith('latent')) return null
  if (n.includes('nearest-exact')) return 'nearest-exact'
  if (n.includes('nearest')) return 'nearest'
  if (n.includes('bicubic')) return 'bicubic'
  return 'bilinear'
}

/** A1111 hr_upscale_to_x/y: int(size * scale), or the given width/height; rounded down to a multiple of 8. */
export function hiresTarget(
  width: number,
  height: number,
  o: HiresOptions,
): { width: number; height: number } {
  let w: number
  let h: number
  if (o.width && o.height) {
    w = o.width
    h = o.height
  } else if (o.width) {
    w = o.width
    h = Math.floor((o.width * height) / width)
  } else if (o.height) {
    w = Math.floor((o.height * width) / height)
    h = o.height
  } else {
    const s = o.scale ?? HIRES_DEFAULTS.scale
    if (!(s >= 1) || !Number.isFinite(s)) throw new Error(`hires fix: upscale factor ${s} must be at least 1`)
    w = Math.floor(width * s)
    h = Math.floor(height * s)
  }
  w -= w % 8
  h -= h % 8
  if (w < 8 || h < 8) throw new Error(`hires fix: target size ${w}x${h} is too small`)
  checkPixels(w, h, 'hires fix', MAX_GENERATION_PIXELS, 8)
  return { width: w, height: h }
}

function cubic(t: number, A = -0.75): [number, number, number, number] {
  const c1 = (x: number): number => ((A + 2) * x - (A + 3)) * x * x + 1
  const c2 = (x: number): number => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
  return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]
}

/** torch.nn.functional.interpolate of NCHW latents to (H, W), align_corners=False. */
export function interpolateLatents(
  x: Float32Array,
  shape: LatentShape,
  H: number,
  W: number,
  mode: LatentMode,
): Float32Array {
  const { batch, channels: C, height: h, width: w } = shape
  const out = new Float32Array(batch * C * H * W)
  const sy = h / H
  const sx = w / W
  const planes = batch * C
  const clampI = (v: number, n: number): number => (v < 0 ? 0 : v >= n ? n - 1 : v)
  for (let p = 0; p < planes; p++) {
    const src = p * h * w
    const dst = p * H * W
    for (let Y = 0; Y < H; Y++)
      for (let X = 0; X < W; X++) {
        let v: number
        if (mode === 'nearest' || mode === 'nearest-exact') {
          const off = mode === 'nearest' ? 0 : 0.5
          const iy = Math.min(Math.floor((Y + off) * sy), h - 1)
          const ix = Math.min(Math.floor((X + off) * sx), w - 1)
          v = x[src + iy * w + ix] as number
        } else if (mode === 'bilinear') {
          const fy = Math.max((Y + 0.5) * sy - 0.5, 0)
          const fx = Math.max((X + 0.5) * sx - 0.5, 0)
          const y0 = Math.floor(fy)
          const x0 = Math.floor(fx)
          const y1 = Math.min(y0 + 1, h - 1)
          const x1 = Math.min(x0 + 1, w - 1)
          const ly = fy - y0
          const lx = fx - x0
          v =
            (1 - ly) * ((1 - lx) * (x[src + y0 * w + x0] as number) + lx * (x[src + y0 * w + x1] as number)) +
            ly * ((1 - lx) * (x[src + y1 * w + x0] as number) + lx * (x[src + y1 * w + x1] as number))
        } else {
          const fy = (Y + 0.5) * sy - 0.5
          const fx = (X + 0.5) * sx - 0.5
          const y0 = Math.floor(fy)
          const x0 = Math.floor(fx)
          const wy = cubic(fy - y0)
          const wx = cubic(fx - x0)
          v = 0
          for (let i = 0; i < 4; i++) {
            const row = src + clampI(y0 - 1 + i, h) * w
            let r = 0
            for (let j = 0; j < 4; j++) r += (wx[j] as number) * (x[row + clampI(x0 - 1 + j, w)] as number)
            v += (wy[i] as number) * r
          }
        }
        out[dst + Y * W + X] = v
      }
  }
  return out
}

export interface HiresEnv {
  /** Core options for a latent shape: the request's sampler, cfg, conditioning, fresh seeded noise. */
  core(shape: LatentShape): CoreOptions
  scalingFactor: number
  signal?: AbortSignal
  /** Resolves a pixel upscaler name (library names included); default: keywords and file paths only. */
  resolveUpscaler?: (name: string) => UpscalerChoice
  /** Pixel upscaling (default: the shared UpscaleService). */
  upscale?: (img: RawImage, req: UpscaleRequest) => Promise<RawImage>
}

export interface HiresResult {
  latents: Float32Array
  shape: LatentShape
  plan: StepPlan
  /** Wall time of the parts, ms. */
  timings: { upscale: number; secondPass: number }
}

/** The hires second pass on first-pass latents [B, 4, h, w]; returns the final latents at the target size. */
export async function hiresFix(
  latents: Float32Array,
  shape: LatentShape,
  o: HiresOptions,
  env: HiresEnv,
): Promise<HiresResult> {
  const target = hiresTarget(shape.width * 8, shape.height * 8, o)
  const next: LatentShape = { ...shape, height: target.height / 8, width: target.width / 8 }
  const strength = o.strength ?? HIRES_DEFAULTS.strength
  const name = o.upscaler ?? HIRES_DEFAULTS.upscaler
  const base = env.core(next)
  const steps = o.steps && o.steps > 0 ? o.steps : base.steps
  const core: CoreOptions = { ...base, steps }
  const mode = latentMode(name)
  const t0 = performance.now()
  throwIfAborted(env.signal)
  if (mode) {
    const init = interpolateLatents(latents, shape, next.height, next.width, mode)
    const t1 = performance.now()
    if (core.sampling) {
      // A1111's hires pass: sample_img2img with explicit steps, i.e. the fix-steps rule.
      const r = await runK({
        model: core.model,
        shape: next,
        context: core.context,
        guidanceScale: core.guidanceScale,
        condWeights: core.condWeights,
        withUncond: core.withUncond,
        contextAt: core.contextAt,
        sampling: core.sampling,
        steps,
        noise: core.noise,
        init,
        strength,
        fixSteps: true,
        signal: core.signal,
        onStep: core.onStep,
        trace: core.trace,
      })
      return {
        latents: r.latents,
        shape: next,
        plan: r.plan,
        timings: { upscale: t1 - t0, secondPass: performance.now() - t1 },
      }
    }
    const plan = planSteps(core.scheduler, steps, strength, true)
    const noise = core.noise.randn([next.batch, next.channels, next.height, next.width], 'pipeline')
    const start = core.scheduler.addNoise(init, noise, plan.timesteps[0] as number)
    const out = await denoise({
      model: core.model,
      scheduler: core.scheduler,
      timesteps: plan.timesteps,
      latents: start,
      shape: next,
      context: core.context,
      guidanceScale: core.guidanceScale,
      condWeights: core.condWeights,
      withUncond: core.withUncond,
      noise: core.noise,
      contextAt: core.contextAt,
      signal: core.signal,
      onStep: core.onStep,
      trace: core.trace,
    })
    return {
      latents: out,
      shape: next,
      plan,
      timings: { upscale: t1 - t0, secondPass: performance.now() - t1 },
    }
  }
  // Pixel upscaler: decode, upscale to the target, img2img (which re-encodes) with exact steps.
  const choice = (env.resolveUpscaler ?? ((n: string) => resolveUpscaler(n)))(name)
  const upscale = env.upscale ?? ((img, req) => upscaleService().upscale(img, req))
  const px = await decodeLatents(core.model, latents, shape, env.scalingFactor, env.signal)
  const H = shape.height * 8
  const W = shape.width * 8
  const per = 3 * H * W
  const big = new Float32Array(next.batch * 3 * target.height * target.width)
  const bigPer = 3 * target.height * target.width
  for (let b = 0; b < shape.batch; b++) {
    const img = tensorToImage(px.subarray(b * per, (b + 1) * per), W, H)
    const up = await upscale(img, {
      upscaler: choice,
      width: target.width,
      height: target.height,
      signal: env.signal,
    })
    big.set(imageToTensor(up), b * bigPer)
  }
  const t1 = performance.now()
  const r = await coreImg2Img({ ...core, shape: next, image: big, strength, exactSteps: true })
  return {
    latents: r.latents,
    shape: next,
    plan: r.plan,
    timings: { upscale: t1 - t0, secondPass: performance.now() - t1 },
  }
}

// ------------------------------------------------------------------------------------------ SD upscale

export interface SdUpscaleOptions {
  /** Upscale factor (A1111 default 2). */
  scale?: number
  /** Pixel upscaler: 'Lanczos' (default), 'Nearest' or an upscaler model. */
  upscaler?: string
  /** Tile overlap in pixels (A1111 default 64). */
  tileOverlap?: number
}

export const SD_UPSCALE_DEFAULTS = { scale: 2, upscaler: 'Lanczos', tileOverlap: 64 } as const

export interface GridTile {
  x: number
  y: number
}

export interface Grid {
  tileW: number
  tileH: number
  imageW: number
  imageH: number
  overlap: number
  /** Rows (top to bottom), each with its y and its tiles' x (left to right). */
  rows: { y: number; xs: number[] }[]
}

/** A1111 images.split_grid: tile positions covering the image with at least `overlap` px between tiles. */
export function splitGrid(
  imageW: number,
  imageH: number,
  tileW: number,
  tileH: number,
  overlap: number,
): Grid {
  if (tileW > imageW || tileH > imageH)
    throw new Error(`SD upscale: the ${tileW}x${tileH} tile is larger than the ${imageW}x${imageH} picture`)
  if (overlap < 0 || overlap >= Math.min(tileW, tileH))
    throw new Error(`SD upscale: overlap ${overlap} must be at least 0 and below the tile size`)
  const cols = Math.max(1, Math.ceil((imageW - overlap) / (tileW - overlap)))
  const rowsN = Math.max(1, Math.ceil((imageH - overlap) / (tileH - overlap)))
  const dx = cols > 1 ? (imageW - tileW) / (cols - 1) : 0
  const dy = rowsN > 1 ? (imageH - tileH) / (rowsN - 1) : 0
  const rows: Grid['rows'] = []
  for (let r = 0; r < rowsN; r++) {
    let y = Math.floor(r * dy)
    if (y + tileH >= imageH) y = imageH - tileH
    const xs: number[] = []
    for (let c = 0; c < cols; c++) {
      let x = Math.floor(c * dx)
      if (x + tileW >= imageW) x = imageW - tileW
      xs.push(x)
    }
    rows.push({ y, xs })
  }
  return { tileW, tileH, imageW, imageH, overlap, rows }
}

function crop(img: RawImage, x: number, y: number, w: number, h: number): RawImage {
  const c = img.channels
  const out = new Uint8Array(w * h * c)
  for (let r = 0; r < h; r++)
    out.set(img.data.subarray(((y + r) * img.width + x) * c, ((y + r) * img.width + x + w) * c), r * w * c)
  return { data: out, width: w, height: h, channels: img.channels }
}

/** PIL paste of src into dst at (x, y) through an optional L mask of src's size (PIL's rounding). */
function paste(dst: RawImage, src: RawImage, x: number, y: number, mask?: Uint8Array): void {
  const c = dst.channels
  for (let r = 0; r < src.height; r++) {
    const dy = y + r
    if (dy < 0 || dy >= dst.height) continue
    for (let k = 0; k < src.width; k++) {
      const dx = x + k
      if (dx < 0 || dx >= dst.width) continue
      const m = mask ? (mask[r * src.width + k] as number) : 255
      if (m === 0) continue
      const d = (dy * dst.width + dx) * c
      const s = (r * src.width + k) * c
      for (let i = 0; i < c; i++) {
        if (m === 255) dst.data[d + i] = src.data[s + i] as number
        else {
          const tmp = (dst.data[d + i] as number) * (255 - m) + (src.data[s + i] as number) * m + 128
          dst.data[d + i] = ((tmp >> 8) + tmp) >> 8
        }
      }
    }
  }
}

/** A1111 images.combine_grid: tiles blended left-to-right and rows top-to-bottom with linear ramps. */
export function combineGrid(grid: Grid, tiles: RawImage[][]): RawImage {
  const { overlap: ov, imageW, tileH } = grid
  const ramp = (i: number): number => Math.floor((i * 255) / ov) & 0xff
  const maskW = new Uint8Array(ov * tileH)
  for (let y = 0; y < tileH; y++) for (let i = 0; i < ov; i++) maskW[y * ov + i] = ramp(i)
  const maskH = new Uint8Array(ov * imageW)
  for (let i = 0; i < ov; i++) maskH.fill(ramp(i), i * imageW, (i + 1) * imageW)
  const channels = tiles[0]?.[0]?.channels ?? 3
  const out: RawImage = {
    data: new Uint8Array(grid.imageW * grid.imageH * channels),
    width: grid.imageW,
    height: grid.imageH,
    channels,
  }
  grid.rows.forEach((row, ri) => {
    const h = tileH
    const line: RawImage = { data: new Uint8Array(imageW * h * channels), width: imageW, height: h, channels }
    row.xs.forEach((x, ci) => {
      const tile = tiles[ri]?.[ci]
      if (!tile) throw new Error(`SD upscale: tile ${ri},${ci} is missing`)
      if (x === 0 || ov === 0) {
        paste(line, tile, x, 0)
        return
      }
      paste(line, crop(tile, 0, 0, ov, h), x, 0, maskW)
      paste(line, crop(tile, ov, 0, tile.width - ov, h), x + ov, 0)
    })
    if (row.y === 0 || ov === 0) {
      paste(out, line, 0, row.y)
      return
    }
    paste(out, crop(line, 0, 0, imageW, ov), 0, row.y, maskH)
    paste(out, crop(line, 0, ov, imageW, h - ov), 0, row.y + ov)
  })
  return out
}

export interface SdUpscaleEnv {
  /** Tile size (the model's native size, or the request's width / height). */
  tileWidth: number
  tileHeight: number
  signal?: AbortSignal
  resolveUpscaler?: (name: string) => UpscalerChoice
  upscale?: (img: RawImage, req: UpscaleRequest) => Promise<RawImage>
  /** img2img of one tile (at the tile size) with a seed; returns the generated tile. */
  img2img(tile: RawImage, seed: number, index: number, count: number): Promise<RawImage>
}

/** A1111's Upscaler.upscale target: int(size * scale) rounded down to a multiple of 8. */
export function sdUpscaleTarget(
  width: number,
  height: number,
  scale: number,
): { width: number; height: number } {
  if (!(scale >= 1) || !Number.isFinite(scale))
    throw new Error(`SD upscale: factor ${scale} must be at least 1`)
  const w = Math.floor((width * scale) / 8) * 8
  const h = Math.floor((height * scale) / 8) * 8
  checkPixels(w, h, 'SD upscale', MAX_OUTPUT_PIXELS, 8)
  return { width: w, height: h }
}

/** SD upscale of one picture: upscale, img2img tile by tile (tile i gets seed + i), blend. */
export async function sdUpscale(
  source: RawImage,
  seed: number,
  o: SdUpscaleOptions,
  env: SdUpscaleEnv,
): Promise<RawImage> {
  const scale = o.scale ?? SD_UPSCALE_DEFAULTS.scale
  const overlap = o.tileOverlap ?? SD_UPSCALE_DEFAULTS.tileOverlap
  const target = sdUpscaleTarget(source.width, source.height, scale)
  const choice = (env.resolveUpscaler ?? ((n: string) => resolveUpscaler(n)))(
    o.upscaler ?? SD_UPSCALE_DEFAULTS.upscaler,
  )
  const upscale = env.upscale ?? ((img, req) => upscaleService().upscale(img, req))
  const rgb: RawImage = source.channels === 3 ? source : { ...source, channels: 3, data: dropAlpha(source) }
  const big = await upscale(rgb, {
    upscaler: choice,
    width: target.width,
    height: target.height,
    signal: env.signal,
  })
  // A picture smaller than a tile is processed as one tile of its own size.
  const tileW = Math.min(env.tileWidth, big.width - (big.width % 8))
  const tileH = Math.min(env.tileHeight, big.height - (big.height % 8))
  const grid = splitGrid(
    big.width,
    big.height,
    tileW,
    tileH,
    Math.min(overlap, Math.max(0, Math.min(tileW, tileH) - 8)),
  )
  const count = grid.rows.reduce((n, r) => n + r.xs.length, 0)
  const tiles: RawImage[][] = []
  let i = 0
  for (const row of grid.rows) {
    const done: RawImage[] = []
    for (const x of row.xs) {
      throwIfAborted(env.signal)
      const out = await env.img2img(crop(big, x, row.y, tileW, tileH), seed + i, i, count)
      if (out.width !== tileW || out.height !== tileH)
        throw new Error(`SD upscale: a ${tileW}x${tileH} tile came back ${out.width}x${out.height}`)
      done.push(out)
      i++
    }
    tiles.push(done)
  }
  return combineGrid(grid, tiles)
}

function dropAlpha(img: RawImage): Uint8Array {
  const n = img.width * img.height
  const out = new Uint8Array(n * 3)
  for (let p = 0; p < n; p++)
    for (let k = 0; k < 3; k++)
      out[p * 3 + k] =
        img.channels === 1 ? (img.data[p] as number) : (img.data[p * img.channels + k] as number)
  return out
}
