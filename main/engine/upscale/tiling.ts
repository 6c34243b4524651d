import type { FloatImage, TileRunner } from './model'

/**
 * Real-ESRGAN's `RealESRGANer.enhance`: uint8 -> float32 / 255, reflect pre-pad (right/bottom), a reflect
 * "mod pad" to a multiple of 2 (x2 models) or 4 (x1 models), the model run whole or tile by tile
 * (`tile_process`: tiles of tile_size, each grown by tile_pad of real context and clipped to the image,
 * only the unpadded part of each tile's output kept, no blending), then the pads cropped away. Output
 * tiles are written straight into the final-size output (float or uint8), so memory is bounded by one
 * tile plus the input and the result.
 */

export interface EnhanceOptions {
  /** Tile size in input pixels; 0 runs the whole image at once. */
  tile: number
  /** Context added on every side of a tile (input pixels). */
  tilePad: number
  /** Reflect padding added right/bottom before the model and cropped after (RealESRGANer pre_pad). */
  prePad: number
  signal?: AbortSignal
  /** After each tile: tiles done / total. */
  onTile?: (done: number, total: number) => void
}

export interface TileRect {
  /** Tile rectangle in the (padded) model input, without context: [y0, y1) x [x0, x1). */
  y0: number
  y1: number
  x0: number
  x1: number
  /** With context, clipped to the image. */
  py0: number
  py1: number
  px0: number
  px1: number
}

/** RealESRGANer.tile_process's tiles, row by row. */
export function planTiles(height: number, width: number, tile: number, pad: number): TileRect[] {
  if (tile <= 0) return [{ y0: 0, y1: height, x0: 0, x1: width, py0: 0, py1: height, px0: 0, px1: width }]
  const tilesX = Math.ceil(width / tile)
  const tilesY = Math.ceil(height / tile)
  const out: TileRect[] = []
  for (let y = 0; y < tilesY; y++)
    for (let x = 0; x < tilesX; x++) {
      const x0 = x * tile
      const y0 = y * tile
      const x1 = Math.min(x0 + tile, width)
      const y1 = Math.min(y0 + tile, height)
      out.push({
        y0,
        y1,
        x0,
        x1,
        py0: Math.max(y0 - pad, 0),
        py1: Math.min(y1 + pad, height),
        px0: Math.max(x0 - pad, 0),
        px1: Math.min(x1 + pad, width),
      })
    }
  return out
}

/** numpy/PyTorch 'reflect' index (edge not repeated), mirrored as often as needed; 0 for a 1-pixel side. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0
  const period = 2 * (n - 1)
  let m = i % period
  if (m < 0) m += period
  return m < n ? m : period - m
}

/** The model input after pre_pad and mod pad (both reflect, right/bottom). */
export function padForModel(
  img: FloatImage,
  prePad: number,
  modScale: number,
): { padded: FloatImage; modPadH: number; modPadW: number } {
  const h1 = img.height + prePad
  const w1 = img.width + prePad
  const modPadH = modScale > 1 && h1 % modScale ? modScale - (h1 % modScale) : 0
  const modPadW = modScale > 1 && w1 % modScale ? modScale - (w1 % modScale) : 0
  if (prePad === 0 && modPadH === 0 && modPadW === 0) return { padded: img, modPadH, modPadW }
  // Two reflect passes, as upstream (the mod pad reflects the pre-padded image).
  const first = reflectPad(img, prePad, prePad)
  return { padded: reflectPad(first, modPadH, modPadW), modPadH, modPadW }
}

function reflectPad(img: FloatImage, padH: number, padW: number): FloatImage {
  if (padH === 0 && padW === 0) return img
  const { channels: c, height: h, width: w } = img
  const H = h + padH
  const W = w + padW
  const out = new Float32Array(c * H * W)
  for (let k = 0; k < c; k++)
    for (let y = 0; y < H; y++) {
      const sy = reflectIndex(y, h)
      const src = (k * h + sy) * w
      const dst = (k * H + y) * W
      out.set(img.data.subarray(src, src + w), dst)
      for (let x = w; x < W; x++) out[dst + x] = img.data[src + reflectIndex(x, w)] as number
    }
  return { data: out, channels: c, height: H, width: W }
}

function crop(img: FloatImage, y0: number, y1: number, x0: number, x1: number): FloatImage {
  const c = img.channels
  const h = y1 - y0
  const w = x1 - x0
  const out = new Float32Array(c * h * w)
  for (let k = 0; k < c; k++)
    for (let y = 0; y < h; y++) {
      const src = (k * img.height + y0 + y) * img.width + x0
      out.set(img.data.subarray(src, src + w), (k * h + y) * w)
    }
  return { data: out, channels: c, height: h, width: w }
}

/** RealESRGANer's mod_scale: x2 models pad to even sizes, x1 models to multiples of 4. */
export function modScaleFor(scale: number, multiple: number): number {
  return Math.max(multiple, scale === 2 ? 2 : scale === 1 ? 4 : 1)
}

/** Receives output tile pixels: channel k, output row y, columns [x0, x0 + n) from src at srcOffset. */
export type TileSink = (
  k: number,
  y: number,
  x0: number,
  src: Float32Array,
  srcOffset: number,
  n: number,
) => void

/**
 * Runs the model over the image with RealESRGANer's padding and tiling, handing every kept output row
 * segment to `sink` in final (cropped) coordinates. Returns the output size.
 */
export async function enhanceInto(
  model: TileRunner,
  img: FloatImage,
  opts: EnhanceOptions,
  sink: TileSink,
): Promise<{ height: number; width: number }> {
  const s = model.scale
  const { padded } = padForModel(img, opts.prePad, modScaleFor(s, model.multiple))
  const outH = img.height * s
  const outW = img.width * s
  const tiles = planTiles(padded.height, padded.width, opts.tile, opts.tilePad)
  let done = 0
  for (const t of tiles) {
    if (opts.signal?.aborted) throw abortError(opts.signal)
    const input =
      t.py0 === 0 && t.px0 === 0 && t.py1 === padded.height && t.px1 === padded.width
        ? padded
        : crop(padded, t.py0, t.py1, t.px0, t.px1)
    const out = await model.run(input)
    if (out.height !== input.height * s || out.width !== input.width * s)
      throw new Error(
        `the upscaler returned ${out.width}x${out.height} for a ${input.width}x${input.height} tile (scale ${s})`,
      )
    const cy = (t.y0 - t.py0) * s
    const cx = (t.x0 - t.px0) * s
    const rows = Math.min((t.y1 - t.y0) * s, outH - t.y0 * s)
    const cols = Math.min((t.x1 - t.x0) * s, outW - t.x0 * s)
    if (rows > 0 && cols > 0)
      for (let k = 0; k < out.channels; k++)
        for (let y = 0; y < rows; y++)
          sink(k, t.y0 * s + y, t.x0 * s, out.data, (k * out.height + cy + y) * out.width + cx, cols)
    done++
    opts.onTile?.(done, tiles.length)
  }
  return { height: outH, width: outW }
}

/** The float result (NCHW), not clamped: what RealESRGANer.post_process returns. */
export async function enhanceFloat(
  model: TileRunner,
  img: FloatImage,
  opts: EnhanceOptions,
): Promise<FloatImage> {
  const c = img.channels
  const H = img.height * model.scale
  const W = img.width * model.scale
  const out = new Float32Array(c * H * W)
  await enhanceInto(model, img, opts, (k, y, x0, src, off, n) => {
    out.set(src.subarray(off, off + n), (k * H + y) * W + x0)
  })
  return { data: out, channels: c, height: H, width: W }
}

/** round half to even (numpy round). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x)
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/** RealESRGANer's float -> uint8: clamp to [0, 1], times 255 as a float32 product, round half to even. */
export function toUint8(v: number): number {
  const c = v > 1 ? 1 : v >= 0 ? v : 0
  return roundHalfEven(Math.fround(c * 255))
}

/** uint8 HWC -> float32 NCHW / 255 (float32 division). */
export function fromUint8Hwc(data: Uint8Array, height: number, width: number, channels: number): FloatImage {
  const out = new Float32Array(channels * height * width)
  const plane = height * width
  for (let i = 0; i < plane; i++)
    for (let k = 0; k < channels; k++)
      out[k * plane + i] = Math.fround((data[i * channels + k] as number) / 255)
  return { data: out, channels, height, width }
}

/** float NCHW -> uint8 HWC with toUint8. */
export function toUint8Hwc(img: FloatImage): Uint8Array {
  const { channels: c, height: h, width: w } = img
  const out = new Uint8Array(c * h * w)
  const plane = h * w
  for (let i = 0; i < plane; i++)
    for (let k = 0; k < c; k++) out[i * c + k] = toUint8(img.data[k * plane + i] as number)
  return out
}

/** The uint8 HWC result, converted tile by tile (no full-size float buffer). */
export async function enhanceUint8(
  model: TileRunner,
  img: FloatImage,
  opts: EnhanceOptions,
): Promise<{ data: Uint8Array; height: number; width: number; channels: number }> {
  const c = img.channels
  const H = img.height * model.scale
  const W = img.width * model.scale
  const out = new Uint8Array(c * H * W)
  await enhanceInto(model, img, opts, (k, y, x0, src, off, n) => {
    let d = (y * W + x0) * c + k
    for (let i = 0; i < n; i++, d += c) out[d] = toUint8(src[off + i] as number)
  })
  return { data: out, height: H, width: W, channels: c }
}

export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  if (reason instanceof Error) return reason
  const e = new Error('cancelled')
  e.name = 'AbortError'
  return e
}
