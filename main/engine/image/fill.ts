import { alphaCompositeInPlace, pasteWithMask, pilGaussianBlur, unpremultiply } from './pil'
import type { Mask, RawImage } from './types'
import { checkImage, toRgb } from './types'

/**
 * "Masked content" before VAE encoding (A1111 `inpainting_fill`):
 *   'fill'           masked pixels replaced by blurred colours of their surroundings (masking.fill)
 *   'original'       nothing
 *   'latent noise'   pixels filled as 'fill' too, then after encoding the latent is replaced by noise under the mask
 *   'latent nothing' pixels filled as 'fill' too, then after encoding the latent is zeroed under the mask
 * (A1111 runs masking.fill for every mode except 'original'.)
 */

export type MaskedContent = 'fill' | 'original' | 'latent noise' | 'latent nothing'

/** (blur radius, composite repeats) of masking.fill, composited in this order. */
export const FILL_LAYERS: readonly (readonly [number, number])[] = [
  [256, 1],
  [64, 1],
  [16, 2],
  [4, 4],
  [2, 2],
  [0, 1],
]

/**
 * A1111 `masking.fill(image, mask)`: the unmasked pixels (premultiplied by 255−mask) are Gaussian-blurred at
 * radii 256, 64, 16, 4, 2, 0 and alpha-composited in that order, so colour bleeds into the hole from its
 * surroundings. Pillow's integer arithmetic is reproduced (premultiply, box-blur Gaussian, alpha_composite).
 * Unmasked pixels (mask 0) come out unchanged.
 */
export function fillMaskedArea(image: RawImage, mask: Mask): RawImage {
  checkImage(image, 'image')
  if (mask.width !== image.width || mask.height !== image.height) {
    throw new RangeError(
      `fillMaskedArea: mask ${mask.width}x${mask.height} does not match image ${image.width}x${image.height}`,
    )
  }
  const rgb = toRgb(image)
  const n = rgb.width * rgb.height
  const src = new Uint8Array(n * 4)
  const inv = new Uint8Array(n)
  for (let p = 0; p < n; p++) {
    src[p * 4] = rgb.data[p * 3] as number
    src[p * 4 + 1] = rgb.data[p * 3 + 1] as number
    src[p * 4 + 2] = rgb.data[p * 3 + 2] as number
    src[p * 4 + 3] = 255
    inv[p] = 255 - (mask.data[p] as number)
  }
  const masked = new Uint8Array(n * 4) // transparent RGBa
  pasteWithMask(masked, src, inv, 4)
  const mod = new Uint8Array(n * 4)
  for (const [radius, repeats] of FILL_LAYERS) {
    const blurred = pilGaussianBlur(
      { data: masked, width: rgb.width, height: rgb.height, channels: 4 },
      radius,
    )
    const straight = unpremultiply(blurred.data)
    for (let r = 0; r < repeats; r++) alphaCompositeInPlace(mod, straight)
  }
  const out = new Uint8Array(n * 3)
  for (let p = 0; p < n; p++) {
    out[p * 3] = mod[p * 4] as number
    out[p * 3 + 1] = mod[p * 4 + 1] as number
    out[p * 3 + 2] = mod[p * 4 + 2] as number
  }
  return { data: out, width: rgb.width, height: rgb.height, channels: 3 }
}

/** Pixel-space part of a masked-content mode: fill unless 'original'. */
export function applyMaskedContent(image: RawImage, mask: Mask, mode: MaskedContent): RawImage {
  return mode === 'original' ? toRgb(image) : fillMaskedArea(image, mask)
}

function checkLatent(latents: Float32Array, latentMask: Float32Array): number {
  const plane = latentMask.length
  if (plane === 0 || latents.length % plane !== 0) {
    throw new RangeError(`latent mask of ${plane} values does not tile latents of ${latents.length} values`)
  }
  return plane
}

/**
 * 'latent noise': init·(1−m) + noise·m per channel, m = latent mask (1 = repaint), latents [1, C, h, w],
 * latentMask [h, w], noise like latents.
 */
export function applyLatentNoise(
  latents: Float32Array,
  latentMask: Float32Array,
  noise: Float32Array,
): Float32Array {
  const plane = checkLatent(latents, latentMask)
  if (noise.length !== latents.length) throw new RangeError('applyLatentNoise: noise must match the latents')
  const out = new Float32Array(latents.length)
  for (let i = 0; i < latents.length; i++) {
    const m = latentMask[i % plane] as number
    out[i] = Math.fround((latents[i] as number) * (1 - m) + (noise[i] as number) * m)
  }
  return out
}

/** 'latent nothing': init·(1−m). */
export function applyLatentNothing(latents: Float32Array, latentMask: Float32Array): Float32Array {
  const plane = checkLatent(latents, latentMask)
  const out = new Float32Array(latents.length)
  for (let i = 0; i < latents.length; i++) {
    out[i] = Math.fround((latents[i] as number) * (1 - (latentMask[i % plane] as number)))
  }
  return out
}
