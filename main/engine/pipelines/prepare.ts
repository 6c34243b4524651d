/**
 * Image-side preparation of the studio modes (sizes, resize modes, masks, crops, prefill) and the
 * paste-back of generated pixels, composed from engine/image.
 */
import { decodeImage, resizeLanczos } from '../image/codec'
import type { Mask, RawImage } from '../image/types'
import type { StudioRequest } from './generate'

/** A canvas ready for one inpainting pass, and how its result goes back into the output image. */
export interface PreparedInpaint {
  /** Processing image (multiple of 8), masked content already applied. */
  image: RawImage
  /** Binarisable mask at the processing size (255 = repaint) for 9-channel models. */
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

/** img2img: decode, then fit to the requested size with the resize mode. */
export async function prepareImg2Img(req: StudioRequest): Promise<RawImage> {
  const img = await decodeImage(bytesOf(req.image, 'the input image'), { name: 'input image' })
  const W = req.width ?? img.width - (img.width % 8)
  const H = req.height ?? img.height - (img.height % 8)
  return resizeLanczos(img, W, H)
}

export async function prepareInpaint(_req: StudioRequest, _inpaintModel: boolean): Promise<PreparedInpaint> {
  throw new Error('inpaint: not wired yet')
}

export async function prepareOutpaint(
  _req: StudioRequest,
  _current: RawImage | undefined,
  _inpaintModel: boolean,
): Promise<PreparedInpaint> {
  throw new Error('outpaint: not wired yet')
}
