/**
 * Midjourney image prompts in the prompt box, mapped onto IP-Adapter (see README.md):
 *
 *   https://a.png https://b.jpg a castle at dusk --iw 1.5 --ar 2:3
 *   /blend https://a.png gallery-id-2 gallery-id-3 --dimensions portrait
 *
 * - Image references come first, as in Midjourney: http(s) URLs, or ids the caller recognises (gallery
 *   images, library ids, files); the first token that is not one starts the text.
 * - `--iw <w>` (0–3, Midjourney's default 1) becomes the adapter scale through `iwToScale`.
 * - `/blend` takes 2–5 images and no text; they are averaged (the /blend rule) at scale 1.
 * Everything else (the text and the other flags: --ar, --no, --seed, ...) is handed back for the
 * Midjourney text parser (engine/prompt/midjourney.ts).
 */

export interface MidjourneyImages {
  /** Image references in prompt order. */
  images: string[]
  /** The prompt with the image references, `/blend` and `--iw` removed (other flags kept). */
  text: string
  blend: boolean
  /** --iw as written (validated), when given. */
  iw?: number
  /** Adapter scale for the images: iwToScale(iw), 1 for /blend or an image-only prompt without --iw. */
  scale: number
  /** /blend --dimensions as an aspect ratio W:H. */
  aspect?: { width: number; height: number }
  warnings: string[]
}

export class MidjourneyPromptError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MidjourneyPromptError'
  }
}

export const IW_DEFAULT = 1
export const IW_MAX = 3

/**
 * Midjourney --iw (0–3, default 1) -> IP-Adapter scale, piecewise linear through (0, 0), (1, 0.5), (3, 1):
 * the default weight gives 0.5, the scale IP-Adapter's authors recommend for image + text prompts; the
 * maximum gives 1.0, the scale for image-only prompts; 2 gives 0.75.
 */
export function iwToScale(iw: number): number {
  if (!(iw >= 0 && iw <= IW_MAX)) throw new RangeError(`--iw ${iw} is outside Midjourney's range 0–${IW_MAX}`)
  return iw <= 1 ? 0.5 * iw : 0.5 + 0.25 * (iw - 1)
}

/** The inverse of iwToScale (for showing a weight in Midjourney terms). */
export function scaleToIw(scale: number): number {
  const s = Math.min(1, Math.max(0, scale))
  return s <= 0.5 ? s / 0.5 : 1 + (s - 0.5) / 0.25
}

const URL_RE = /^https?:\/\/\S+$/i
const BLEND_DIMENSIONS: Record<string, { width: number; height: number }> = {
  portrait: { width: 2, height: 3 },
  square: { width: 1, height: 1 },
  landscape: { width: 3, height: 2 },
}

/** True when the input uses image prompts, /blend or --iw (the caller then resolves `images`). */
export function hasMidjourneyImages(
  input: string,
  isImageRef: (token: string) => boolean = () => false,
): boolean {
  const t = input.trim()
  if (/^\/blend(\s|$)/i.test(t) || /(^|\s)--iw(\s|$)/i.test(t)) return true
  const first = t.split(/\s+/)[0] ?? ''
  return URL_RE.test(first) || (first !== '' && isImageRef(first))
}

/** Removes one single-value flag (`--name value`) and returns its value. */
function takeFlag(text: string, name: string): { text: string; value?: string; present: boolean } {
  const re = new RegExp(`(^|\\s)--${name}(?:\\s+([^\\s-][^\\s]*|-?[0-9.]+))?(?=\\s|$)`, 'i')
  const m = re.exec(text)
  if (!m) return { text, present: false }
  return {
    text: `${text.slice(0, m.index)}${m[1] ?? ''}${text.slice(m.index + m[0].length)}`
      .replace(/\s+/g, ' ')
      .trim(),
    value: m[2],
    present: true,
  }
}

/**
 * Splits a Midjourney prompt into image references, text and the image weight. `isImageRef` says whether
 * a token (not a URL) names an image (a gallery id, a library id, a file path).
 */
export function parseMidjourneyImages(
  input: string,
  isImageRef: (token: string) => boolean = () => false,
): MidjourneyImages {
  const warnings: string[] = []
  let text = input.trim()
  const blend = /^\/blend(\s|$)/i.test(text)
  if (blend) text = text.slice('/blend'.length).trim()

  const iwFlag = takeFlag(text, 'iw')
  text = iwFlag.text
  let iw: number | undefined
  if (iwFlag.present) {
    const v = Number(iwFlag.value)
    if (iwFlag.value === undefined || !Number.isFinite(v))
      throw new MidjourneyPromptError(
        `--iw expects a number from 0 to ${IW_MAX}, got "${iwFlag.value ?? ''}"`,
      )
    if (v < 0 || v > IW_MAX)
      throw new MidjourneyPromptError(`--iw ${v} is outside Midjourney's range 0–${IW_MAX}`)
    iw = v
  }

  let aspect: MidjourneyImages['aspect']
  if (blend) {
    const dim = takeFlag(text, 'dimensions')
    text = dim.text
    if (dim.present) {
      const a = BLEND_DIMENSIONS[(dim.value ?? '').toLowerCase()]
      if (!a)
        throw new MidjourneyPromptError(
          `/blend --dimensions must be portrait, square or landscape, got "${dim.value ?? ''}"`,
        )
      aspect = a
    }
  }

  const tokens = text.split(/\s+/).filter((t) => t !== '')
  const images: string[] = []
  while (tokens.length && (URL_RE.test(tokens[0] as string) || isImageRef(tokens[0] as string)))
    images.push(tokens.shift() as string)
  text = tokens.join(' ')

  if (blend) {
    if (images.length < 2 || images.length > 5)
      throw new MidjourneyPromptError(`/blend takes 2 to 5 images; got ${images.length}`)
    const rest = text.replace(/(^|\s)--\S+(\s+[^\s-]\S*)?/g, ' ').trim()
    if (rest !== '')
      throw new MidjourneyPromptError(
        `/blend takes only images (and --dimensions); "${rest}" is not an image URL or a known image id`,
      )
    if (iw !== undefined) warnings.push('/blend runs its images at full weight; --iw is ignored.')
    return { images, text: text.trim(), blend, iw, scale: 1, ...(aspect ? { aspect } : {}), warnings }
  }
  if (iw !== undefined && images.length === 0)
    warnings.push('--iw was given without an image prompt; it has no effect.')
  const textOnly = text.replace(/(^|\s)--\S+(\s+[^\s-]\S*)?/g, ' ').trim()
  // Midjourney needs text with a single image; image-only prompts run at full weight unless --iw says otherwise.
  const scale = iw !== undefined ? iwToScale(iw) : textOnly === '' ? 1 : iwToScale(IW_DEFAULT)
  return { images, text, blend, iw, scale, warnings }
}
