import { pilResize } from './pil'
import type { Mask } from './types'
import { checkImage } from './types'

/**
 * Mask (pixel size) → latent-size mask [h, w] (1 = repaint), three conventions:
 *
 * - 'pil-nearest' — diffusers StableDiffusionInpaintPipelineLegacy (`preprocess_mask`): PIL NEAREST resize to
 *   (W//8, H//8) of the multiple-of-8 size, values /255 (greys kept). PIL samples pixel centres:
 *   src = floor((x + 0.5)·in/out).
 * - 'torch-nearest' — diffusers StableDiffusionInpaintPipeline (9-channel UNet): mask/255 binarised at 0.5, then
 *   torch.nn.functional.interpolate(mode='nearest'): src = floor(x·in/out) (float32 scale), i.e. the top-left
 *   pixel of each 8×8 block. Differs from PIL for masks that are not 8-aligned.
 * - 'a1111' — A1111: PIL default (bicubic, antialiased) resize to latent size, /255, rounded to 0/1
 *   (np.around, half to even) unless round=false.
 */
export type LatentMaskMethod = 'pil-nearest' | 'torch-nearest' | 'a1111'

export interface LatentMask {
  data: Float32Array
  width: number
  height: number
}

export function latentMaskSize(width: number, height: number, factor = 8): { width: number; height: number } {
  return {
    width: Math.floor((width - (width % 8)) / factor),
    height: Math.floor((height - (height % 8)) / factor),
  }
}

function pilNearestIndex(inSize: number, outSize: number): Int32Array {
  // ImagingScaleAffine: xo = a2 + a0·0.5, then xo += a0 per output pixel; COORD = (int)
  const a0 = inSize / outSize
  const idx = new Int32Array(outSize)
  let xo = a0 * 0.5
  for (let x = 0; x < outSize; x++) {
    idx[x] = Math.min(inSize - 1, Math.trunc(xo))
    xo += a0
  }
  return idx
}

function torchNearestIndex(inSize: number, outSize: number): Int32Array {
  const scale = Math.fround(inSize / outSize)
  const idx = new Int32Array(outSize)
  for (let x = 0; x < outSize; x++) idx[x] = Math.min(inSize - 1, Math.floor(Math.fround(x * scale)))
  return idx
}

function roundHalfEven(x: number): number {
  const r = Math.round(x)
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/** Latent mask of size `latentWidth`×`latentHeight` (default: latentMaskSize of the mask). */
export function toLatentMask(
  mask: Mask,
  method: LatentMaskMethod,
  opts: { latentWidth?: number; latentHeight?: number; round?: boolean } = {},
): LatentMask {
  checkImage(mask, 'mask')
  const size = latentMaskSize(mask.width, mask.height)
  const lw = opts.latentWidth ?? size.width
  const lh = opts.latentHeight ?? size.height
  if (lw < 1 || lh < 1)
    throw new RangeError(`mask ${mask.width}x${mask.height} is too small for a latent mask`)
  const out = new Float32Array(lw * lh)
  if (method === 'a1111') {
    const small = pilResize(mask, lw, lh, 'bicubic')
    const round = opts.round ?? true
    for (let i = 0; i < out.length; i++) {
      const v = Math.fround((small.data[i] as number) / 255)
      out[i] = round ? roundHalfEven(v) : v
    }
    return { data: out, width: lw, height: lh }
  }
  const xi = method === 'pil-nearest' ? pilNearestIndex(mask.width, lw) : torchNearestIndex(mask.width, lw)
  const yi = method === 'pil-nearest' ? pilNearestIndex(mask.height, lh) : torchNearestIndex(mask.height, lh)
  for (let y = 0; y < lh; y++) {
    for (let x = 0; x < lw; x++) {
      const v = mask.data[(yi[y] as number) * mask.width + (xi[x] as number)] as number
      out[y * lw + x] = method === 'pil-nearest' ? Math.fround(v / 255) : binarised(v)
    }
  }
  return { data: out, width: lw, height: lh }
}

/** VaeImageProcessor binarize of v/255: < 0.5 → 0, else 1 (v ≥ 128). */
function binarised(v: number): number {
  return Math.fround(v / 255) < 0.5 ? 0 : 1
}

/** The 9-channel pipeline's processed mask at pixel size: mask/255 binarised, float32 [H·W]. */
export function binariseMask(mask: Mask): Float32Array {
  const out = new Float32Array(mask.data.length)
  for (let i = 0; i < out.length; i++) out[i] = binarised(mask.data[i] as number)
  return out
}

/**
 * 9-channel inpaint `masked_image = image · (mask < 0.5)`: image tensor [1, 3, H, W] in [-1, 1] with the
 * repainted pixels set to 0 (grey).
 */
export function maskedImageTensor(imageTensor: Float32Array, mask: Mask): Float32Array {
  const plane = mask.width * mask.height
  if (imageTensor.length !== 3 * plane) {
    throw new RangeError(
      `maskedImageTensor: image tensor of ${imageTensor.length} values does not match the mask`,
    )
  }
  const bin = binariseMask(mask)
  const out = new Float32Array(imageTensor.length)
  // multiply like torch (a negative value times 0 gives -0)
  for (let i = 0; i < out.length; i++)
    out[i] = (imageTensor[i] as number) * ((bin[i % plane] as number) < 0.5 ? 1 : 0)
  return out
}
