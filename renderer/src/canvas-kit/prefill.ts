/**
 * Preview of the outpaint board's pre-filled new area: the engine's edge-blur fill (`edgeBlurFill`), run
 * on a reduced copy (far colours are blurred anyway, so a few hundred pixels a side look the same once
 * scaled up, and cost milliseconds).
 */
import { edgeBlurFill } from './bleed'
import type { Extension } from './geometry'

export function prefillPreview(
  image: CanvasImageSource,
  width: number,
  height: number,
  ext: Extension,
  maxSide = 320,
): HTMLCanvasElement {
  const k = Math.min(1, maxSide / Math.max(width + ext.left + ext.right, height + ext.top + ext.bottom))
  const w = Math.max(1, Math.round(width * k))
  const h = Math.max(1, Math.round(height * k))
  const small: Extension = {
    left: Math.round(ext.left * k),
    right: Math.round(ext.right * k),
    top: Math.round(ext.top * k),
    bottom: Math.round(ext.bottom * k),
  }
  const src = document.createElement('canvas')
  src.width = w
  src.height = h
  const sctx = src.getContext('2d', { willReadFrequently: true })
  const out = document.createElement('canvas')
  out.width = w + small.left + small.right
  out.height = h + small.top + small.bottom
  const octx = out.getContext('2d')
  if (!sctx || !octx) return out
  sctx.drawImage(image, 0, 0, w, h)
  const filled = edgeBlurFill(sctx.getImageData(0, 0, w, h).data, w, h, small, { maxBlur: 64 * k })
  const img = octx.createImageData(out.width, out.height)
  img.data.set(filled)
  octx.putImageData(img, 0, 0)
  return out
}
