/**
 * Preview of how the outpaint board's new area is pre-filled before diffusion: A1111's `masking.fill`
 * (what the engine does for masked content "fill"): the known pixels blurred at radii 256, 64, 16, 4, 2, 0
 * and composited in turn, so colours bleed outwards. Computed on a reduced board (it is a blur) with
 * the canvas filter, so a preview costs milliseconds, not a second.
 */
import type { Extension } from './geometry'

const FILL_LAYERS: readonly (readonly [number, number])[] = [
  [256, 1],
  [64, 1],
  [16, 2],
  [4, 4],
  [2, 2],
  [0, 1],
]

export function prefillPreview(
  image: CanvasImageSource,
  width: number,
  height: number,
  ext: Extension,
  maxSide = 768,
): HTMLCanvasElement {
  const boardW = width + ext.left + ext.right
  const boardH = height + ext.top + ext.bottom
  const k = Math.min(1, maxSide / Math.max(boardW, boardH))
  const w = Math.max(1, Math.round(boardW * k))
  const h = Math.max(1, Math.round(boardH * k))

  const known = document.createElement('canvas')
  known.width = w
  known.height = h
  const kctx = known.getContext('2d')
  const out = document.createElement('canvas')
  out.width = w
  out.height = h
  const octx = out.getContext('2d')
  if (!kctx || !octx) return out
  kctx.drawImage(image, ext.left * k, ext.top * k, width * k, height * k)

  for (const [radius, repeats] of FILL_LAYERS) {
    octx.filter = radius > 0 ? `blur(${Math.max(0.5, radius * k)}px)` : 'none'
    for (let i = 0; i < repeats; i++) octx.drawImage(known, 0, 0)
  }
  octx.filter = 'none'
  return out
}
