import fs from 'node:fs'
import path from 'node:path'
import { resizeLanczos, resizeNearest } from '../image/codec'
import type { RawImage } from '../image/types'
import { checkImage, toRgb } from '../image/types'
import { checkPixels, ImageSizeError, MAX_OUTPUT_PIXELS, MAX_UNTILED_PIXELS } from '../image/limits'
import type { SessionConfig } from '../runtime/session'
import { UpscalerModel } from './model'
import { abortError, enhanceUint8, fromUint8Hwc, modScaleFor, planTiles } from './tiling'

/**
 * Upscaling a picture: with an upscaler model (tiled for large images, RealESRGANer rules), or with
 * Lanczos (sharp) when no model is chosen. A model whose factor differs from the requested one runs as
 * many passes as needed (at most 3, like A1111) and the result is resized (Lanczos) to the exact size.
 * Alpha is resized with Lanczos beside the model's RGB.
 */

export type UpscalerChoice = { kind: 'model'; file: string } | { kind: 'lanczos' } | { kind: 'nearest' }

export interface UpscaleProgress {
  /** Tiles done / total over all model passes (Lanczos: 0/1 then 1/1). */
  done: number
  total: number
  pass: number
  passes: number
}

export interface UpscaleRequest {
  upscaler: UpscalerChoice
  /** Target factor; ignored when width and height are given. */
  scale?: number
  width?: number
  height?: number
  /** Tile size in input pixels (0: the whole image at once). Default 512. */
  tile?: number
  /** Context around each tile (input pixels). Default 10. */
  tilePad?: number
  session?: SessionConfig
  signal?: AbortSignal
  onProgress?: (p: UpscaleProgress) => void
}

export const DEFAULT_TILE = 512
export const DEFAULT_TILE_PAD = 10
export const MAX_MODEL_PASSES = 3

export class UpscaleError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UpscaleError'
  }
}

function targetSize(img: RawImage, req: UpscaleRequest): { width: number; height: number } {
  if (req.width !== undefined || req.height !== undefined) {
    const width = req.width ?? Math.round((img.width * (req.height ?? img.height)) / img.height)
    const height = req.height ?? Math.round((img.height * (req.width ?? img.width)) / img.width)
    if (!(width >= 1 && height >= 1)) throw new UpscaleError(`bad target size ${width}x${height}`)
    return { width, height }
  }
  const s = req.scale ?? 2
  if (!(s > 0) || !Number.isFinite(s))
    throw new UpscaleError(`bad scale ${String(req.scale)}; use a number above 0`)
  return { width: Math.max(1, Math.round(img.width * s)), height: Math.max(1, Math.round(img.height * s)) }
}

function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m
}

/** How many model passes reach a factor: passes until the size is reached, at least one, at most 3. */
export function modelPasses(modelScale: number, want: number): number {
  if (modelScale <= 1) return 1
  let n = 1
  let f = modelScale
  while (f < want - 1e-6 && n < MAX_MODEL_PASSES) {
    f *= modelScale
    n++
  }
  return n
}

/** Keeps the last model loaded (switching releases the previous one). */
export class UpscaleService {
  private current: { key: string; model: Promise<UpscalerModel> } | undefined

  constructor(private session: SessionConfig = {}) {}

  /** The session settings (execution provider) for models loaded from now on without their own. */
  setSession(session: SessionConfig): void {
    this.session = session
  }

  async model(file: string, session: SessionConfig = this.session): Promise<UpscalerModel> {
    const key = `${path.resolve(file)}#${session.preference ?? 'auto'}`
    if (this.current?.key !== key) {
      const prev = this.current
      this.current = undefined
      if (prev) await (await prev.model.catch(() => null))?.release()
      const model = UpscalerModel.load(file, session)
      this.current = { key, model }
      model.catch(() => {
        if (this.current?.key === key) this.current = undefined
      })
    }
    return this.current.model
  }

  async release(): Promise<void> {
    const c = this.current
    this.current = undefined
    if (c) await (await c.model.catch(() => null))?.release()
  }

  /** Upscales `img` (1, 3 or 4 channels) to the requested size; the result has img's channel count (1 -> 3). */
  async upscale(img: RawImage, req: UpscaleRequest): Promise<RawImage> {
    checkImage(img, 'upscale input')
    const { width, height } = targetSize(img, req)
    checkPixels(width, height, 'upscale', MAX_OUTPUT_PIXELS)
    const report = req.onProgress
    if (req.signal?.aborted) throw abortError(req.signal)
    if (req.upscaler.kind !== 'model') {
      report?.({ done: 0, total: 1, pass: 1, passes: 1 })
      const out =
        req.upscaler.kind === 'lanczos'
          ? await resizeLanczos(img, width, height)
          : await resizeNearest(img, width, height)
      report?.({ done: 1, total: 1, pass: 1, passes: 1 })
      return out
    }
    if (!fs.existsSync(req.upscaler.file))
      throw new UpscaleError(`upscaler model not found: ${req.upscaler.file}`)
    if (req.tile === 0 && img.width * img.height > MAX_UNTILED_PIXELS)
      throw new ImageSizeError(
        `upscale: tile 0 (the whole picture at once) is limited to ${MAX_UNTILED_PIXELS} input pixels ` +
          `(1024x1024); this picture is ${img.width}x${img.height}: give a tile size (default ${DEFAULT_TILE})`,
      )
    const model = await this.model(req.upscaler.file, req.session ?? this.session)
    const rgb = img.channels === 3 ? img : toRgb(img)
    const want = Math.max(width / img.width, height / img.height)
    const passes = modelPasses(model.scale, want)
    const m = model.multiple
    const tile = req.tile === undefined ? DEFAULT_TILE : req.tile > 0 ? roundUp(req.tile, Math.max(1, m)) : 0
    const tilePad = roundUp(req.tilePad ?? DEFAULT_TILE_PAD, Math.max(1, m))
    // Tiles of every pass, for one progress bar.
    const counts: number[] = []
    let h = rgb.height
    let w = rgb.width
    for (let p = 0; p < passes; p++) {
      const mod = modScaleFor(model.scale, m)
      const ph = h + (mod > 1 && h % mod ? mod - (h % mod) : 0)
      const pw = w + (mod > 1 && w % mod ? mod - (w % mod) : 0)
      counts.push(planTiles(ph, pw, tile, tilePad).length)
      h *= model.scale
      w *= model.scale
      checkPixels(w, h, `upscale (model pass ${p + 1} of ${passes}, x${model.scale})`, MAX_OUTPUT_PIXELS)
    }
    const total = counts.reduce((a, b) => a + b, 0)
    let before = 0
    let cur: RawImage = rgb
    for (let p = 0; p < passes; p++) {
      const base = before
      const r = await enhanceUint8(model, fromUint8Hwc(cur.data, cur.height, cur.width, 3), {
        tile,
        tilePad,
        prePad: 0,
        signal: req.signal,
        onTile: (d) => report?.({ done: base + d, total, pass: p + 1, passes }),
      })
      before += counts[p] ?? 0
      cur = { data: r.data, width: r.width, height: r.height, channels: 3 }
    }
    if (cur.width !== width || cur.height !== height) cur = await resizeLanczos(cur, width, height)
    if (img.channels !== 4) return cur
    const alpha = await resizeLanczos(
      { data: alphaOf(img), width: img.width, height: img.height, channels: 1 },
      width,
      height,
    )
    const out = new Uint8Array(width * height * 4)
    for (let i = 0; i < width * height; i++) {
      out[i * 4] = cur.data[i * 3] as number
      out[i * 4 + 1] = cur.data[i * 3 + 1] as number
      out[i * 4 + 2] = cur.data[i * 3 + 2] as number
      out[i * 4 + 3] = alpha.data[i] as number
    }
    return { data: out, width, height, channels: 4 }
  }
}

function alphaOf(img: RawImage): Uint8Array {
  const n = img.width * img.height
  const a = new Uint8Array(n)
  for (let i = 0; i < n; i++) a[i] = img.data[i * 4 + 3] as number
  return a
}

/** The process-wide service (the CLI, the generation worker and the UI share one loaded model). */
let shared: UpscaleService | undefined
export function upscaleService(): UpscaleService {
  shared ??= new UpscaleService()
  return shared
}

/**
 * What a user-given upscaler name means: "lanczos" / "nearest" / "none", a path to a model file, or a
 * library name resolved by `lookup` (which returns the file, or undefined).
 */
export function resolveUpscaler(
  name: string | undefined,
  lookup?: (name: string) => string | undefined,
): UpscalerChoice {
  const n = (name ?? 'lanczos').trim()
  const low = n.toLowerCase()
  if (low === '' || low === 'lanczos' || low === 'none') return { kind: 'lanczos' }
  if (low === 'nearest') return { kind: 'nearest' }
  if (fs.existsSync(n) && fs.statSync(n).isFile()) return { kind: 'model', file: path.resolve(n) }
  const found = lookup?.(n)
  if (found) return { kind: 'model', file: found }
  throw new UpscaleError(
    `unknown upscaler "${n}": give "lanczos", a model file (.pth / .safetensors), or the name of an upscaler in the library`,
  )
}
