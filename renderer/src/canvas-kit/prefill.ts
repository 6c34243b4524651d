/**
 * Preview of how the outpaint board's new area is pre-filled before diffusion: A1111's `masking.fill`
 * (what the engine does for masked content "fill"), computed by `bleedFill` on a reduced board (it is
 * a blur, so a few hundred pixels a side look the same once scaled up, and cost milliseconds).
 */
import { bleedFill } from './bleed'
import type { Extension } from './geometry'

export function prefillPreview(
  image: CanvasImageSource,
  width: number,
  height: number,
  ext: Extension,
  maxSide = 320,
): HTMLCanvasElement {
  const boardW = width + ext.left + ext.right
  const boardH = height + ext.top + ext.bottom
  const k = Math.min(1, maxSide / Math.max(boardW, boardH))
  const w = Math.max(1, Math.round(boardW * k))
  const h = Math.max(1, Math.round(boardH * k))
  const out = document.createElement('canvas')
  out.width = w
  out.height = h
  const ctx = out.getContext('2d', { willReadFrequently: true })
  if (!ctx) return out
  ctx.drawImage(image, ext.left * k, ext.top * k, width * k, height * k)
  const img = ctx.getImageData(0, 0, w, h)
  img.data.set(bleedFill(img.data, w, h, k))
  ctx.putImageData(img, 0, 0)
  return out
}
