import { encodePng, resizeLanczos } from './codec'
import type { RawImage } from './types'
import { checkImage } from './types'

/**
 * uint8 HWC ↔ float32 NCHW conversions with diffusers' exact float32 arithmetic, and the cheap latent preview.
 */

/** uint8 RGB(A) HWC → float32 [1, 3, H, W] in [-1, 1]: `x/255*2-1` (VaeImageProcessor.preprocess). */
export function imageToTensor(img: RawImage): Float32Array {
  checkImage(img, 'imageToTensor')
  if (img.channels === 1) throw new RangeError('imageToTensor expects an RGB or RGBA image, got a mask')
  const { width: w, height: h, channels: ch } = img
  const plane = w * h
  const out = new Float32Array(3 * plane)
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.fround((img.data[p * ch + c] as number) / 255)
      out[c * plane + p] = Math.fround(2 * v - 1)
    }
  }
  return out
}

/** float32 [1, 3, H, W] in [-1, 1] → [0, 1]: `clamp(x/2 + 0.5, 0, 1)` (VaeImageProcessor.denormalize). */
export function denormalize(t: Float32Array): Float32Array {
  const out = new Float32Array(t.length)
  for (let i = 0; i < t.length; i++) {
    const v = Math.fround(Math.fround((t[i] as number) / 2) + 0.5)
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v
  }
  return out
}

/** numpy's round(): half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x)
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/**
 * VAE output float32 [1, 3, H, W] in [-1, 1] → uint8 RGB: denormalize, then `(x*255).round()` like diffusers'
 * numpy_to_pil (float32 multiply, round half to even).
 */
export function tensorToImage(t: Float32Array, width: number, height: number): RawImage & { channels: 3 } {
  const plane = width * height
  if (t.length < 3 * plane) {
    throw new RangeError(`tensorToImage: ${t.length} values cannot hold a 3x${height}x${width} image`)
  }
  const d = denormalize(t.subarray(0, 3 * plane))
  const data = new Uint8Array(3 * plane)
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++)
      data[p * 3 + c] = roundHalfEven(Math.fround((d[c * plane + p] as number) * 255))
  }
  return { data, width, height, channels: 3 }
}

/**
 * A1111 "Approx cheap" latent → RGB factors (`sd_vae_approx.cheap_approximation`), applied to UNet-space latents
 * (not divided by the VAE scaling factor): rgb[r] = Σ_l latent[l] · coef[l][r].
 */
export const LATENT_RGB_FACTORS = {
  sd1: [
    [0.298, 0.207, 0.208],
    [0.187, 0.286, 0.173],
    [-0.158, 0.189, 0.264],
    [-0.184, -0.271, -0.473],
  ],
  sdxl: [
    [0.3448, 0.4168, 0.4395],
    [-0.1953, -0.029, 0.025],
    [0.1074, 0.0886, -0.0163],
    [-0.373, -0.2499, -0.2088],
  ],
} as const

export type LatentFamily = keyof typeof LATENT_RGB_FACTORS

/** Latents [1, 4, h, w] → RGB uint8 h×w: factors above, then `clamp((x+1)/2)·255` rounded. */
export function latentPreview(
  latents: Float32Array,
  width: number,
  height: number,
  family: LatentFamily = 'sd1',
): RawImage & { channels: 3 } {
  const plane = width * height
  if (latents.length < 4 * plane) {
    throw new RangeError(`latentPreview: ${latents.length} values cannot hold 4x${height}x${width} latents`)
  }
  const f = LATENT_RGB_FACTORS[family]
  const data = new Uint8Array(3 * plane)
  for (let p = 0; p < plane; p++) {
    for (let r = 0; r < 3; r++) {
      let v = 0
      for (let l = 0; l < 4; l++)
        v += (latents[l * plane + p] as number) * ((f[l] as readonly number[])[r] as number)
      const u = (v + 1) / 2
      data[p * 3 + r] = Math.round((u < 0 ? 0 : u > 1 ? 1 : u) * 255)
    }
  }
  return { data, width, height, channels: 3 }
}

/** Preview PNG: latentPreview upscaled `scale`× (Lanczos). Default 4× (64×64 latents → 256×256). */
export async function latentPreviewPng(
  latents: Float32Array,
  width: number,
  height: number,
  opts: { family?: LatentFamily; scale?: number } = {},
): Promise<Buffer> {
  const scale = opts.scale ?? 4
  const small = latentPreview(latents, width, height, opts.family ?? 'sd1')
  const big = scale === 1 ? small : await resizeLanczos(small, width * scale, height * scale)
  return encodePng(big)
}
