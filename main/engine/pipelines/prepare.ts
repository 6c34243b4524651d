/**
 * Image-side preparation of the studio modes (sizes, resize modes, masks, crops, prefill) and the
 * paste-back of generated pixels, composed from engine/image.
 */
import {
  applyMaskedContent,
  blurMask,
  cropImage,
  decodeImage,
  isMaskEmpty,
  loadMask,
  pasteBack,
  pasteOutpaint,
  prepareInpaint as prepareInpaintImage,
  prepareOutpaint as prepareOutpaintImage,
  resizeImage,
  toLatentMask,
} from '../image'
import type { Extents, Mask, RawImage } from '../image'
import type { GenerateRequest } from '../../../preload/contract-types'

/** What preparing the source image reads of a studio request (generate.ts StudioRequest, defaults filled in). */
export type PrepareRequest = Required<
  Pick<
    GenerateRequest,
    'resizeMode' | 'maskBlur' | 'maskedContent' | 'inpaintArea' | 'onlyMaskedPadding' | 'invertMask'
  >
> &
  Pick<GenerateRequest, 'width' | 'height' | 'image' | 'mask'> & {
    outpaint: Required<NonNullable<GenerateRequest['outpaint']>>
  }

/** A canvas ready for one inpainting pass, and how its result goes back into the output image. */
export interface PreparedInpaint {
  /** Processing image (multiple of 8), pixel-space masked content already applied. */
  image: RawImage
  /** Mask at the processing size (255 = repaint); 9-channel models binarise it at 128. */
  binaryMask: Mask
  /** Latent-size plane, 1 = keep, 0 = generate (ordinary models' per-step blend). */
  latentKeep: Float32Array
  /** Generated processing-size RGB -> the final output image. */
  paste(generated: RawImage): Promise<RawImage>
}

function bytesOf(b: Uint8Array | undefined, what: string): Uint8Array {
  if (!b) throw new Error(`${what} is missing`)
  return b
}

const floor8 = (v: number): number => Math.max(8, v - (v % 8))
const ceil8 = (v: number): number => Math.ceil(v / 8) * 8

/** 1 - A1111 latent mask (PIL bicubic to latent size, rounded): 1 = keep. */
function latentKeep(mask: Mask): Float32Array {
  const m = toLatentMask(mask, 'a1111', { latentWidth: mask.width / 8, latentHeight: mask.height / 8 })
  return Float32Array.from(m.data, (v) => 1 - v)
}

/** img2img: decode, then fit to the requested size (default: the image's, rounded down to 8) with the resize mode. */
export async function prepareImg2Img(req: PrepareRequest): Promise<RawImage> {
  const img = await decodeImage(bytesOf(req.image, 'the input image'), { name: 'input image' })
  const W = req.width ?? floor8(img.width)
  const H = req.height ?? floor8(img.height)
  return resizeImage(img, W, H, req.resizeMode)
}

/**
 * A1111 inpainting: mask (white = repaint, optionally inverted) blurred; whole picture at the requested
 * size (default the image's, rounded down to 8) or only the masked region + padding at the requested size
 * (default 512x512); the result composited back through the blurred mask, so pixels outside the mask and
 * its blur keep their exact input bytes.
 */
export async function prepareInpaint(req: PrepareRequest, _inpaintModel: boolean): Promise<PreparedInpaint> {
  const image = await decodeImage(bytesOf(req.image, 'the input image'), { name: 'input image' })
  const mask = await loadMask(bytesOf(req.mask, 'the mask image'), { name: 'mask image' })
  const onlyMasked = req.inpaintArea === 'only-masked'
  const W = req.width ?? (onlyMasked ? 512 : floor8(image.width))
  const H = req.height ?? (onlyMasked ? 512 : floor8(image.height))
  const prep = await prepareInpaintImage(image, mask, {
    width: W,
    height: H,
    maskBlur: req.maskBlur,
    invert: req.invertMask,
    onlyMasked,
    padding: req.onlyMaskedPadding,
    resizeMode: req.resizeMode,
  })
  if (!prep || isMaskEmpty(prep.mask))
    throw new Error('inpaint: the mask is empty (nothing is white); paint the area to repaint in white')
  const pixelContent = req.maskedContent === 'fill' ? 'fill' : 'original'
  return {
    image: applyMaskedContent(prep.image, prep.mask, pixelContent),
    binaryMask: prep.mask,
    latentKeep: latentKeep(prep.mask),
    paste: (g) => pasteBack(prep, g),
  }
}

/** The outpaint input image. */
export function decodeOutpaintSource(req: PrepareRequest): Promise<RawImage> {
  return decodeImage(bytesOf(req.image, 'the input image'), { name: 'input image' })
}

/** Extends every side by whole multiples of 8 (the canvas must stay divisible by 8); crops back later. */
function snap(e: Extents): Extents {
  return { left: ceil8(e.left), top: ceil8(e.top), right: ceil8(e.right), bottom: ceil8(e.bottom) }
}

/** Pads an image / mask on the right and bottom by edge replication (mask: `fill`) to the given size. */
function padTo<T extends RawImage>(img: T, W: number, H: number, fill?: number): T {
  if (img.width === W && img.height === H) return img
  const c = img.channels
  const out = new Uint8Array(W * H * c)
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const inside = x < img.width && y < img.height
      const sx = Math.min(x, img.width - 1)
      const sy = Math.min(y, img.height - 1)
      for (let k = 0; k < c; k++)
        out[(y * W + x) * c + k] =
          !inside && fill !== undefined ? fill : (img.data[(sy * img.width + sx) * c + k] as number)
    }
  return { ...img, data: out, width: W, height: H }
}

/**
 * Outpainting one step: the image extended by the request's sides (any px; processed on a canvas rounded up
 * to multiples of 8 and cropped back), the new area pre-filled, generated with the new area + an overlap
 * band of the original repainted, then pasted through a ramp across the band. The output is exactly
 * input + extension; original pixels outside the band keep their bytes.
 */
export async function prepareOutpaint(
  req: PrepareRequest,
  current: RawImage | undefined,
  _inpaintModel: boolean,
  extents: Extents = req.outpaint,
): Promise<PreparedInpaint> {
  const src = current ?? (await decodeOutpaintSource(req))
  const e = snap(extents)
  const prep = prepareOutpaintImage(src, e, { overlap: req.outpaint.overlap })
  const W = ceil8(prep.image.width)
  const H = ceil8(prep.image.height)
  const genMask = padTo(req.maskBlur > 0 ? blurMask(prep.mask, req.maskBlur) : prep.mask, W, H, 255)
  // the binary mask must cover the band fully: blur only grows it (max with the unblurred one)
  for (let y = 0; y < prep.mask.height; y++)
    for (let x = 0; x < prep.mask.width; x++) {
      const i = y * W + x
      genMask.data[i] = Math.max(genMask.data[i] as number, prep.mask.data[y * prep.mask.width + x] as number)
    }
  const canvas = padTo(prep.image, W, H)
  const crop = {
    x1: e.left - extents.left,
    y1: e.top - extents.top,
    x2: prep.image.width - (e.right - extents.right),
    y2: prep.image.height - (e.bottom - extents.bottom),
  }
  return {
    // the pre-fill is the pixel-space content of the new area; latent modes act on the latents
    image: canvas,
    binaryMask: genMask,
    latentKeep: latentKeep(genMask),
    paste: async (g) => {
      const generated =
        g.width === prep.image.width && g.height === prep.image.height
          ? g
          : cropImage(g, { x1: 0, y1: 0, x2: prep.image.width, y2: prep.image.height })
      const full = pasteOutpaint(prep, generated)
      const exact = crop.x1 === 0 && crop.y1 === 0 && crop.x2 === full.width && crop.y2 === full.height
      return exact ? full : cropImage(full, crop)
    },
  }
}
