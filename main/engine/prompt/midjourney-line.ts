/**
 * The one Midjourney parser every mode, the CLI and the UI use: a prompt line as typed in Discord
 *
 *   /imagine prompt: https://a.png a castle::2 fog::-0.5 --ar 2:3 --no people, text --seed 42 --iw 1.5
 *   /blend https://a.png gallery:abc --dimensions portrait
 *
 * becomes Stable Diffusion settings (see README.md for the table): the image part goes through
 * engine/ipadapter/midjourney.ts (leading images, --iw, /blend), the text part through
 * parseMidjourneyPrompt (--ar, --no, --seed, ::). `original` keeps the line for the infotext's
 * `Midjourney prompt` field; `spans` are for highlighting it; `warnings` name every flag that was not used.
 */
import { hasMidjourneyImages, MidjourneyPromptError, parseMidjourneyImages } from '../ipadapter/midjourney'
import { aspectToSize, looksLikeMidjourney, parseMidjourneyPrompt } from './midjourney'
import type { WeightedPrompt } from './composable'

export { MidjourneyPromptError }

export interface MidjourneyLineOptions {
  negativePrompt?: string
  /** Side of the model's native square (512 SD1, 768 SD2-v, 1024 SDXL). Default 512. */
  baseSize?: number
  /** Whether a leading token (not a URL) names an image: a gallery id, `gallery:<id>`. */
  isImageRef?: (token: string) => boolean
}

export interface MidjourneyLine {
  /** The line as typed; undefined when it uses no Midjourney syntax (then nothing else changed). */
  original?: string
  prompt: string
  negativePrompt: string
  subPrompts: WeightedPrompt[] | null
  width?: number
  height?: number
  aspect?: { width: number; height: number }
  seed?: number
  /** Image references (URLs, gallery ids) in order; empty without image prompts. */
  images: string[]
  blend: boolean
  /** --iw as written. */
  iw?: number
  /** IP-Adapter scale for the images (iwToScale). */
  imageScale: number
  warnings: string[]
}

export type MidjourneySpanKind =
  'text' | 'command' | 'image' | 'flag' | 'value' | 'weight' | 'unsupported' | 'unknown'

export interface MidjourneySpan {
  kind: MidjourneySpanKind
  text: string
  /** For flags: what the flag maps to or why it is not used. */
  title?: string
}

export interface MidjourneyFlagInfo {
  syntax: string
  mapsTo: string
  supported: boolean
}

/** The syntax popover's table (and README's): what each piece of Midjourney syntax does here. */
export const MIDJOURNEY_SYNTAX: readonly MidjourneyFlagInfo[] = [
  { syntax: '/imagine prompt: …', mapsTo: 'optional prefix, removed', supported: true },
  {
    syntax: '--ar W:H, --aspect W:H',
    mapsTo: 'width × height (multiples of 64 at the model’s base area)',
    supported: true,
  },
  { syntax: '--no a, b', mapsTo: 'appended to the negative prompt', supported: true },
  {
    syntax: 'a::2 b::-0.5',
    mapsTo: 'A1111 AND sub-prompts with weights (composable diffusion)',
    supported: true,
  },
  { syntax: '--seed N', mapsTo: 'seed (0 … 4294967295)', supported: true },
  { syntax: 'image URLs / gallery images first', mapsTo: 'image prompts (IP-Adapter)', supported: true },
  { syntax: '--iw N', mapsTo: 'image-prompt weight: 1 → scale 0.5, 2 → 0.75, 3 → 1.0', supported: true },
  {
    syntax: '/blend img img … --dimensions portrait|square|landscape',
    mapsTo: '2–5 images averaged at scale 1, no text; 2:3, 1:1 or 3:2',
    supported: true,
  },
  {
    syntax: '--stylize/--s, --chaos/--c, --quality/--q',
    mapsTo: 'not used (CFG scale, several seeds, steps are the SD knobs)',
    supported: false,
  },
  {
    syntax: '--v, --niji, --style, --tile, --weird, --sref, --cref, …',
    mapsTo: 'not used; named in a warning',
    supported: false,
  },
]

const KNOWN: Record<string, string> = {
  ar: 'aspect ratio → width × height',
  aspect: 'aspect ratio → width × height',
  no: 'appended to the negative prompt',
  seed: 'seed',
  iw: 'image-prompt weight (IP-Adapter scale)',
  dimensions: '/blend size: portrait 2:3, square 1:1, landscape 3:2',
}
const UNSUPPORTED = new Set(['stylize', 's', 'chaos', 'c', 'quality', 'q'])
const IMAGINE = /^\s*\/imagine(?:\s+prompt:)?(?=\s|$)\s*/i
const URL_RE = /^https?:\/\/\S+$/i

/** True when the line uses any Midjourney syntax (then `parseMidjourneyLine` changes the request). */
export function isMidjourneyLine(input: string, isImageRef?: (token: string) => boolean): boolean {
  return IMAGINE.test(input) || looksLikeMidjourney(input) || hasMidjourneyImages(input, isImageRef)
}

/**
 * Parses a Midjourney line. Throws MidjourneyPromptError for input that cannot run (a bad --iw, /blend with
 * the wrong number of images or with text); everything else that is not used becomes a warning.
 */
export function parseMidjourneyLine(input: string, options: MidjourneyLineOptions = {}): MidjourneyLine {
  const negativePrompt = options.negativePrompt ?? ''
  const baseSize = options.baseSize ?? 512
  if (!isMidjourneyLine(input, options.isImageRef))
    return {
      prompt: input,
      negativePrompt,
      subPrompts: null,
      images: [],
      blend: false,
      imageScale: 1,
      warnings: [],
    }
  const original = input.trim()
  const text = input.replace(IMAGINE, '')
  const warnings: string[] = []
  const out: MidjourneyLine = {
    original,
    prompt: text.trim(),
    negativePrompt,
    subPrompts: null,
    images: [],
    blend: false,
    imageScale: 1,
    warnings,
  }
  let rest = text
  if (hasMidjourneyImages(text, options.isImageRef)) {
    const mj = parseMidjourneyImages(text, options.isImageRef)
    warnings.push(...mj.warnings)
    Object.assign(out, { images: mj.images, blend: mj.blend, imageScale: mj.scale })
    if (mj.iw !== undefined) out.iw = mj.iw
    if (mj.aspect) {
      out.aspect = mj.aspect
      Object.assign(out, aspectToSize(mj.aspect.width, mj.aspect.height, baseSize))
    }
    rest = mj.blend ? '' : mj.text
    out.prompt = rest.trim()
  }
  if (rest !== '' && looksLikeMidjourney(rest)) {
    const p = parseMidjourneyPrompt(rest, { negativePrompt, baseSize })
    warnings.push(...p.warnings)
    out.prompt = p.prompt
    out.negativePrompt = p.negativePrompt
    out.subPrompts = p.subPrompts
    if (p.aspect && p.width && p.height)
      Object.assign(out, { aspect: p.aspect, width: p.width, height: p.height })
    if (p.seed !== undefined) out.seed = p.seed
  }
  return out
}

/**
 * Segments of a line for highlighting (they concatenate back to the input): the /imagine or /blend
 * command, leading images, each flag (recognised, not used, unknown) with its value, and `::` weights.
 */
export function midjourneySpans(input: string, isImageRef?: (token: string) => boolean): MidjourneySpan[] {
  const out: MidjourneySpan[] = []
  const push = (kind: MidjourneySpanKind, text: string, title?: string): void => {
    if (text === '') return
    const last = out[out.length - 1]
    if (last && last.kind === 'text' && kind === 'text') last.text += text
    else out.push(title ? { kind, text, title } : { kind, text })
  }
  let i = 0
  const cmd = IMAGINE.exec(input) ?? /^\s*\/blend(?=\s|$)/i.exec(input)
  if (cmd) {
    const lead = /^\s*/.exec(cmd[0])?.[0] ?? ''
    push('text', lead)
    push('command', cmd[0].slice(lead.length).trimEnd(), 'Midjourney command')
    i = lead.length + cmd[0].slice(lead.length).trimEnd().length
  }
  // leading image references
  const tokenRe = /(\s*)(\S+)/y
  for (;;) {
    tokenRe.lastIndex = i
    const m = tokenRe.exec(input)
    if (!m) break
    const tok = m[2] as string
    if (!(URL_RE.test(tok) || (!tok.startsWith('--') && isImageRef?.(tok)))) break
    push('text', m[1] as string)
    push('image', tok, 'image prompt')
    i = tokenRe.lastIndex
  }
  const body = input.slice(i)
  const re = /(^|\s)(--([A-Za-z][\w-]*))|(::-?(?:\d+\.?\d*|\.\d+)?)/g
  let last = 0
  let m: RegExpExecArray | null
  while ((m = re.exec(body)) !== null) {
    const start = (m.index ?? 0) + (m[1]?.length ?? 0)
    if (m[4]) {
      push('text', body.slice(last, start))
      push('weight', m[4], 'Midjourney weight → AND sub-prompt')
      last = start + m[4].length
      continue
    }
    const name = (m[3] as string).toLowerCase()
    push('text', body.slice(last, start))
    const kind: MidjourneySpanKind = KNOWN[name] ? 'flag' : UNSUPPORTED.has(name) ? 'unsupported' : 'unknown'
    push(kind, m[2] as string, KNOWN[name] ?? `--${name} has no Stable Diffusion equivalent; not used`)
    last = start + (m[2] as string).length
    // the value: up to the next flag (--no takes a list), one token for the others
    const next = /\s--[A-Za-z]/.exec(body.slice(last))
    const valueEnd = next ? last + next.index : body.length
    const raw = body.slice(last, valueEnd)
    const valueText = name === 'no' ? raw : (/^\s*\S*/.exec(raw)?.[0] ?? '')
    if (valueText.trim() !== '' && !valueText.trim().startsWith('::')) {
      const lead = /^\s*/.exec(valueText)?.[0] ?? ''
      push('text', lead)
      push(kind === 'flag' ? 'value' : kind, valueText.slice(lead.length))
      last += valueText.length
    }
    re.lastIndex = last
  }
  push('text', body.slice(last))
  return out
}
