/** What the studio says about an input image past the generation limits (pure: unit-tested). */
import {
  generationResize,
  MAX_GENERATION_PIXELS,
  MAX_GENERATION_SIDE,
} from '../../../../preload/image-limits'

const mp = (pixels: number): string => `${(pixels / 1e6).toFixed(1)} MP`

/** The offer's sentence for an oversized input (undefined when it fits). */
export function tooLargeText(width: number, height: number): string | undefined {
  const fit = generationResize(width, height)
  if (!fit) return undefined
  return (
    `This image is ${width}×${height} (${mp(width * height)}); one generation pass takes at most ` +
    `${MAX_GENERATION_SIDE} pixels a side and ${mp(MAX_GENERATION_PIXELS)}. ` +
    `The largest size that fits at this aspect ratio is ${fit.width}×${fit.height}.`
  )
}

/** Generate's error when the offer was ignored. */
export function tooLargeError(width: number, height: number): string | undefined {
  const fit = generationResize(width, height)
  if (!fit) return undefined
  return `${tooLargeText(width, height)} Use “Resize to ${fit.width}×${fit.height}” above the image first.`
}
