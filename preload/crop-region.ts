/** A crop in pixels: [x1, x2) x [y1, y2). */
export interface CropRect {
  x1: number
  y1: number
  x2: number
  y2: number
}

/**
 * A1111 `masking.expand_crop_region`: grow the short side of the crop symmetrically until it has the
 * processing aspect, shift it back inside the image when it overflows, then clamp. Shared by the engine
 * ("Only masked" inpainting) and the renderer (the area preview on the mask canvas).
 */
export function expandCropRegion(
  region: CropRect,
  processingWidth: number,
  processingHeight: number,
  imageWidth: number,
  imageHeight: number,
): CropRect {
  let { x1, y1, x2, y2 } = region
  const ratioCrop = (x2 - x1) / (y2 - y1)
  const ratioProcessing = processingWidth / processingHeight
  if (ratioCrop > ratioProcessing) {
    const desiredHeight = (x2 - x1) / ratioProcessing
    const diff = Math.trunc(desiredHeight - (y2 - y1))
    y1 -= Math.floor(diff / 2)
    y2 += diff - Math.floor(diff / 2)
    if (y2 >= imageHeight) {
      const d = y2 - imageHeight
      y2 -= d
      y1 -= d
    }
    if (y1 < 0) {
      y2 -= y1
      y1 -= y1
    }
    if (y2 >= imageHeight) y2 = imageHeight
  } else {
    const desiredWidth = (y2 - y1) * ratioProcessing
    const diff = Math.trunc(desiredWidth - (x2 - x1))
    x1 -= Math.floor(diff / 2)
    x2 += diff - Math.floor(diff / 2)
    if (x2 >= imageWidth) {
      const d = x2 - imageWidth
      x2 -= d
      x1 -= d
    }
    if (x1 < 0) {
      x2 -= x1
      x1 -= x1
    }
    if (x2 >= imageWidth) x2 = imageWidth
  }
  return { x1, y1, x2, y2 }
}
