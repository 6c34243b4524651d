import sharp from 'sharp'
import type { Mask, RawImage } from './types'
import { checkImage, checkSize } from './types'
import { checkPixels, ImageSizeError, MAX_INPUT_PIXELS, MAX_OUTPUT_PIXELS } from './limits'

/**
 * Decoding, PNG encoding and Lanczos resizing through sharp (libvips). Everything else in this module is pure TS.
 */

export class ImageDecodeError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ImageDecodeError'
  }
}

/** Fixed PNG options: same pixels → same bytes (no timestamps or metadata are written by sharp). */
export const PNG_OPTIONS = Object.freeze({
  compressionLevel: 6,
  adaptiveFiltering: false,
  palette: false,
  progressive: false,
})

export interface DecodeOptions {
  /** Colour transparent pixels are composited onto (A1111 img2img_background_color, default white). */
  background?: { r: number; g: number; b: number }
  /** Name used in error messages (e.g. the file path). */
  name?: string
}

async function decode(bytes: Uint8Array, keepAlpha: boolean, opts: DecodeOptions): Promise<RawImage> {
  const name = opts.name ?? 'image'
  try {
    // The header first: a 249 KB PNG can declare 16000x16000 (4.7 GB decoded).
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata()
    checkPixels(meta.width ?? 0, meta.height ?? 0, name, MAX_INPUT_PIXELS)
    let pipeline = sharp(bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS })
      .autoOrient()
      .toColourspace('srgb')
    const hasAlpha = meta.hasAlpha === true
    if (keepAlpha && hasAlpha) pipeline = pipeline.ensureAlpha()
    else if (hasAlpha)
      pipeline = pipeline.flatten({ background: opts.background ?? { r: 255, g: 255, b: 255 } })
    else pipeline = pipeline.removeAlpha()
    const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true })
    const channels = info.channels
    if (channels !== 3 && channels !== 4) {
      throw new ImageDecodeError(`${name}: unexpected channel count ${channels} after decoding`)
    }
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      channels,
    }
  } catch (err) {
    if (err instanceof ImageDecodeError || err instanceof ImageSizeError) throw err
    const msg = err instanceof Error ? err.message : String(err)
    throw new ImageDecodeError(`${name}: cannot decode image (${msg})`)
  }
}

/** Decode any image sharp reads (PNG, JPEG, WebP, …) to RGB uint8, EXIF-oriented, alpha flattened onto white. */
export async function decodeImage(
  bytes: Uint8Array,
  opts: DecodeOptions = {},
): Promise<RawImage & { channels: 3 }> {
  return (await decode(bytes, false, opts)) as RawImage & { channels: 3 }
}

/** Decode keeping transparency: RGBA when the file has alpha, otherwise RGB. */
export async function decodeImageWithAlpha(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<RawImage> {
  return decode(bytes, true, opts)
}

/** Encode RGB / RGBA / grey uint8 to PNG with fixed options (deterministic bytes). */
export async function encodePng(img: RawImage): Promise<Buffer> {
  checkImage(img, 'encodePng')
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .png(PNG_OPTIONS)
    .toBuffer()
}

/** Lanczos-3 resize to exactly width×height (stretching). Works for 1, 3 and 4 channels. */
export async function resizeLanczos<T extends RawImage>(img: T, width: number, height: number): Promise<T> {
  checkImage(img, 'resizeLanczos')
  checkSize(width, height)
  checkPixels(width, height, 'resize', MAX_OUTPUT_PIXELS)
  if (width === img.width && height === img.height) return { ...img, data: img.data.slice() }
  const { data, info } = await sharp(img.data, {
    raw: { width: img.width, height: img.height, channels: img.channels },
  })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .toColourspace(img.channels === 1 ? 'b-w' : 'srgb')
    .raw()
    .toBuffer({ resolveWithObject: true })
  if (info.channels !== img.channels || info.width !== width || info.height !== height) {
    throw new Error(
      `resizeLanczos: sharp returned ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x${img.channels}`,
    )
  }
  return { ...img, data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height }
}

/** Nearest-neighbour upscale through sharp (used for previews). */
export async function resizeNearest<T extends RawImage>(img: T, width: number, height: number): Promise<T> {
  checkImage(img, 'resizeNearest')
  checkPixels(width, height, 'resize', MAX_OUTPUT_PIXELS)
  const { data } = await sharp(img.data, {
    raw: { width: img.width, height: img.height, channels: img.channels },
  })
    .resize(width, height, { fit: 'fill', kernel: 'nearest' })
    .toColourspace(img.channels === 1 ? 'b-w' : 'srgb')
    .raw()
    .toBuffer({ resolveWithObject: true })
  return { ...img, data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height }
}

export type { Mask }
