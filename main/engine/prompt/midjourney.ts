import type { WeightedPrompt } from './composable'
import { formatComposablePrompt } from './composable'

/**
 * Midjourney-style input mapped onto Stable Diffusion settings (see README.md for the table).
 *
 *   a castle::2 fog::-0.5 --no people, text --ar 2:3 --seed 42 --stylize 250
 *
 * - `--no x, y`            appended to the negative prompt
 * - `--ar W:H`/`--aspect`  width/height: multiples of 64 near the model's base area (aspectToSize)
 * - `--seed N`             seed (0 … 4294967295)
 * - `a::2 b::-0.5`         composable-diffusion sub-prompts with weights (negative allowed)
 * - `--stylize/--s` and every other flag: ignored, with a warning naming the flag
 */

export interface MidjourneyOptions {
  /** The negative prompt already entered; `--no` items are appended to it. */
  negativePrompt?: string
  /** Side of the model's native square: 512 (SD1), 768 (SD2-v), 1024 (SDXL). Default 512. */
  baseSize?: number
  /** Dimension granularity. Default 64. */
  multiple?: number
}

export interface MidjourneyPrompt {
  /** Positive prompt with the flags removed; for `::` input, the A1111 `AND` form of `subPrompts`. */
  prompt: string
  negativePrompt: string
  /** Set when the input used `::` weights. */
  subPrompts: WeightedPrompt[] | null
  aspect?: { width: number; height: number }
  width?: number
  height?: number
  seed?: number
  warnings: string[]
}

const FLAG = /(^|\s)--([A-Za-z][\w-]*)/g
const IGNORED_WITH_REASON: Record<string, string> = {
  stylize:
    'Midjourney --stylize has no Stable Diffusion equivalent; ignored (use CFG scale to trade prompt adherence).',
  s: 'Midjourney --s (stylize) has no Stable Diffusion equivalent; ignored (use CFG scale to trade prompt adherence).',
  chaos: 'Midjourney --chaos is ignored (generate several seeds instead).',
  c: 'Midjourney --c (chaos) is ignored (generate several seeds instead).',
  quality: 'Midjourney --quality is ignored (use the step count).',
  q: 'Midjourney --q (quality) is ignored (use the step count).',
  iw: 'Midjourney --iw (image weight) is ignored here; use an image prompt / img2img strength.',
}

/** True when the text uses Midjourney flags or `::` weights. */
export function looksLikeMidjourney(text: string): boolean {
  return /(^|\s)--[A-Za-z]/.test(text) || /::/.test(text)
}

/**
 * Width/height for an aspect ratio: each side is the exact side for the base area (baseSize²) at that ratio,
 * rounded to the nearest multiple of `multiple` (at least one multiple).
 *   SD1 (512): 1:1 → 512×512, 2:3 → 448×640, 3:2 → 640×448, 16:9 → 704×384, 9:16 → 384×704
 *   SDXL (1024): 16:9 → 1344×768, 2:3 → 832×1280
 */
export function aspectToSize(
  aspectW: number,
  aspectH: number,
  baseSize = 512,
  multiple = 64,
): { width: number; height: number } {
  if (!(aspectW > 0 && aspectH > 0))
    throw new RangeError(`aspect ratio ${aspectW}:${aspectH} must be positive`)
  const area = baseSize * baseSize
  const snap = (v: number): number => Math.max(multiple, Math.round(v / multiple) * multiple)
  return {
    width: snap(Math.sqrt((area * aspectW) / aspectH)),
    height: snap(Math.sqrt((area * aspectH) / aspectW)),
  }
}

const RE_MULTI = /::(-?(?:\d+\.?\d*|\.\d+))?/g

/** Split `a::2 b::-0.5 c` into weighted parts (the last part has weight 1). Empty parts are dropped. */
export function parseMultiPrompt(text: string): WeightedPrompt[] {
  const parts: WeightedPrompt[] = []
  let last = 0
  for (const m of text.matchAll(RE_MULTI)) {
    const seg = text.slice(last, m.index).trim()
    if (seg !== '') parts.push({ text: seg, weight: m[1] !== undefined ? Number(m[1]) : 1 })
    last = (m.index ?? 0) + m[0].length
  }
  const tail = text.slice(last).trim()
  if (tail !== '') parts.push({ text: tail, weight: 1 })
  return parts
}

export function parseMidjourneyPrompt(input: string, options: MidjourneyOptions = {}): MidjourneyPrompt {
  const warnings: string[] = []
  const result: MidjourneyPrompt = {
    prompt: '',
    negativePrompt: options.negativePrompt ?? '',
    subPrompts: null,
    warnings,
  }

  // Split into the leading text and the flags (each flag's value runs to the next flag).
  const flags: { name: string; value: string }[] = []
  const matches = [...input.matchAll(FLAG)]
  const firstFlag = matches[0]
  let text = firstFlag ? input.slice(0, firstFlag.index) : input
  matches.forEach((m, i) => {
    const start = (m.index ?? 0) + m[0].length
    const next = matches[i + 1]
    const end = next ? (next.index ?? input.length) : input.length
    flags.push({ name: (m[2] as string).toLowerCase(), value: input.slice(start, end).trim() })
  })

  const negatives: string[] = []
  for (const { name, value } of flags) {
    if (name === 'no') {
      const items = value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
      if (items.length === 0) warnings.push('--no was given without anything to exclude; ignored.')
      negatives.push(...items)
      continue
    }
    // flags taking one value: anything after the value goes back into the prompt
    const [first = '', ...rest] = value.split(/\s+/).filter((s) => s !== '')
    if (rest.length > 0 && (name === 'ar' || name === 'aspect' || name === 'seed')) {
      warnings.push(`Text after --${name} ${first} was kept in the prompt: "${rest.join(' ')}".`)
      text = `${text} ${rest.join(' ')}`
    }
    if (name === 'ar' || name === 'aspect') {
      const m = /^(\d+(?:\.\d+)?)\s*[:x]\s*(\d+(?:\.\d+)?)$/.exec(first)
      const w = m ? Number(m[1]) : NaN
      const h = m ? Number(m[2]) : NaN
      if (!(w > 0 && h > 0)) {
        warnings.push(`--${name} expects W:H (e.g. --ar 2:3), got "${first}"; ignored.`)
        continue
      }
      result.aspect = { width: w, height: h }
      const size = aspectToSize(w, h, options.baseSize ?? 512, options.multiple ?? 64)
      result.width = size.width
      result.height = size.height
    } else if (name === 'seed') {
      const n = /^\d+$/.test(first) ? Number(first) : NaN
      if (!(Number.isSafeInteger(n) && n >= 0 && n <= 4294967295)) {
        warnings.push(`--seed expects an integer 0…4294967295, got "${first}"; ignored.`)
        continue
      }
      result.seed = n
    } else {
      warnings.push(
        IGNORED_WITH_REASON[name] ?? `Midjourney flag --${name} has no Stable Diffusion equivalent; ignored.`,
      )
    }
  }

  if (negatives.length > 0) {
    const joined = negatives.join(', ')
    result.negativePrompt =
      result.negativePrompt.trim() === '' ? joined : `${result.negativePrompt}, ${joined}`
  }

  text = text.trim()
  if (text.includes('::')) {
    const parts = parseMultiPrompt(text)
    const total = parts.reduce((s, p) => s + p.weight, 0)
    if (total <= 0) {
      warnings.push(`The :: weights add up to ${total}; Midjourney requires a positive total.`)
    }
    result.subPrompts = parts
    result.prompt = formatComposablePrompt(parts)
  } else {
    result.prompt = text
  }
  return result
}
