import { decodeImageWithAlpha } from '../image/codec'
import { pilResize } from '../image/pil'
import type { RawImage } from '../image/types'

/**
 * transformers CLIPImageProcessor.preprocess, step for step (IP-Adapter's `clip_image_processor`):
 *
 * 1. convert('RGB'): alpha is dropped (not composited), greyscale replicated;
 * 2. resize so the shortest edge is S: (S, int(S * long / short)), PIL BICUBIC on the uint8 image
 *    (Pillow-exact resampler, engine/image/pil.ts);
 * 3. center crop S x S at top = (h - S) // 2, left = (w - S) // 2;
 * 4. x.astype(float64) * rescale_factor, cast to float32;
 * 5. (x - mean) / std in float32, mean/std rounded to float32; HWC -> CHW.
 */

export interface ClipPreprocessConfig {
  /** shortest_edge of the resize. */
  size: number
  /** Crop size (height, width). */
  cropHeight: number
  cropWidth: number
  rescaleFactor: number
  mean: [number, number, number]
  std: [number, number, number]
}

/** OpenAI CLIP normalisation (CLIPImageProcessor defaults). */
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073]
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711]

/** CLIPImageProcessor defaults with the resize and crop set to the encoder's image size. */
export function clipPreprocessConfig(imageSize: number): ClipPreprocessConfig {
  return {
    size: imageSize,
    cropHeight: imageSize,
    cropWidth: imageSize,
    rescaleFactor: 1 / 255,
    mean: [...CLIP_MEAN],
    std: [...CLIP_STD],
  }
}

/** A preprocessor_config.json (CLIPImageProcessor) over the defaults; sizes default to the encoder's. */
export function configFromPreprocessorJson(json: unknown, imageSize: number): ClipPreprocessConfig {
  const base = clipPreprocessConfig(imageSize)
  if (!json || typeof json !== 'object') return base
  const j = json as Record<string, unknown>
  const num = (v: unknown): number | undefined =>
    typeof v === 'number' && Number.isFinite(v) ? v : undefined
  const triple = (v: unknown): [number, number, number] | undefined =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number')
      ? (v as [number, number, number])
      : undefined
  const size = j.size
  const crop = j.crop_size
  const shortest =
    num(size) ??
    (size && typeof size === 'object' ? num((size as Record<string, unknown>).shortest_edge) : undefined)
  const cropObj = crop && typeof crop === 'object' ? (crop as Record<string, unknown>) : undefined
  return {
    size: shortest ?? base.size,
    cropHeight: num(crop) ?? num(cropObj?.height) ?? base.cropHeight,
    cropWidth: num(crop) ?? num(cropObj?.width) ?? base.cropWidth,
    rescaleFactor: num(j.rescale_factor) ?? base.rescaleFactor,
    mean: triple(j.image_mean) ?? base.mean,
    std: triple(j.image_std) ?? base.std,
  }
}

/** RGB uint8 (alpha dropped, greyscale replicated), as PIL's convert('RGB') does. */
export function toRgbDropAlpha(img: RawImage): RawImage & { channels: 3 } {
  if (img.channels === 3) return img as RawImage & { channels: 3 }
  const n = img.width * img.height
  const out = new Uint8Array(n * 3)
  for (let i = 0; i < n; i++)
    for (let c = 0; c < 3; c++)
      out[i * 3 + c] = img.data[i * img.channels + (img.channels === 1 ? 0 : c)] as number
  return { data: out, width: img.width, height: img.height, channels: 3 }
}

/** transformers get_resize_output_image_size(default_to_square=False) for `shortest_edge` = size: (h, w). */
export function resizeOutputSize(height: number, width: number, size: number): [number, number] {
  const short = Math.min(height, width)
  const long = Math.max(height, width)
  const newLong = Math.trunc((size * long) / short)
  return height <= width ? [size, newLong] : [newLong, size]
}

/** The resized image (PIL bicubic) before cropping; exported for the trace of the reference case. */
export function clipResize(img: RawImage, cfg: ClipPreprocessConfig): RawImage & { channels: 3 } {
  const rgb = toRgbDropAlpha(img)
  const [h, w] = resizeOutputSize(rgb.height, rgb.width, cfg.size)
  if (h === rgb.height && w === rgb.width) return rgb
  return pilResize(rgb, w, h, 'bicubic') as RawImage & { channels: 3 }
}

/**
 * One image -> pixel_values [3, cropH, cropW] float32. transformers' center_crop pads with zeros when the
 * image is smaller than the crop (only possible when crop > size); that is reproduced too.
 */
export function clipPixelValues(img: RawImage, cfg: ClipPreprocessConfig): Float32Array {
  const r = clipResize(img, cfg)
  const H = cfg.cropHeight
  const W = cfg.cropWidth
  const top = Math.floor((r.height - H) / 2)
  const left = Math.floor((r.width - W) / 2)
  const f = Math.fround
  const mean = cfg.mean.map(f)
  const std = cfg.std.map(f)
  const out = new Float32Array(3 * H * W)
  for (let c = 0; c < 3; c++) {
    const m = mean[c] as number
    const s = std[c] as number
    // a padded (zero) pixel: 0 * factor = 0
    const zero = f(f(0 - m) / s)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const sy = y + top
        const sx = x + left
        let v = zero
        if (sy >= 0 && sy < r.height && sx >= 0 && sx < r.width) {
          const u = r.data[(sy * r.width + sx) * 3 + c] as number
          v = f(f(f(u * cfg.rescaleFactor) - m) / s)
        }
        out[(c * H + y) * W + x] = v
      }
  }
  return out
}

/** Several images -> pixel_values [N, 3, H, W]. */
export function clipPreprocess(images: RawImage[], cfg: ClipPreprocessConfig): Float32Array {
  const per = 3 * cfg.cropHeight * cfg.cropWidth
  const out = new Float32Array(images.length * per)
  images.forEach((img, i) => out.set(clipPixelValues(img, cfg), i * per))
  return out
}

/** Decodes an encoded image (PNG/JPEG/WebP) the way the processor sees it: RGB, alpha dropped. */
export async function decodeForClip(bytes: Uint8Array, name = 'reference image'): Promise<RawImage> {
  return toRgbDropAlpha(await decodeImageWithAlpha(bytes, { name }))
}
