/**
 * A1111 "infotext" (the PNG `parameters` text): writer and reader.
 *
 *   <prompt lines>
 *   Negative prompt: <negative lines>
 *   Steps: 30, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: …, …
 *
 * Writer: A1111 `processing.create_infotext` — `key: value` pairs joined by ", ", values containing ',', ':' or a
 * newline JSON-quoted (`infotext_utils.quote`), negative line only when non-empty. Civitai's extensions
 * (`Hashes: {json}`, `Civitai resources: [json]`) are appended raw at the end, as civitai's own A1111 extension does,
 * so civitai.com's parser (`automaticMetadataProcessor`) finds them.
 *
 * Reader: A1111 `infotext_utils.parse_generation_parameters` — the last line is the parameter line when it has at
 * least 3 `key: value` matches of `re_param`; earlier lines are the prompt until a line starting with
 * "Negative prompt:". Also accepted: Civitai's raw `Hashes`/`Civitai resources` JSON, and Dynamic Prompts'
 * `Template:` / `Negative Template:` lines after the parameter line.
 */

export interface LoraHash {
  name: string
  hash: string
}

export interface CivitaiResource {
  type: string
  modelVersionId?: number
  air?: string
  weight?: number
}

export interface OutpaintExtents {
  left: number
  top: number
  right: number
  bottom: number
}

export interface GenerationParameters {
  prompt: string
  negativePrompt: string
  steps?: number
  sampler?: string
  scheduleType?: string
  cfgScale?: number
  seed?: number
  width?: number
  height?: number
  modelHash?: string
  model?: string
  vaeHash?: string
  vae?: string
  denoisingStrength?: number
  /** A1111 "exact steps" (img2img_fix_steps); false = diffusers semantics. Key "Strength mode". */
  exactSteps?: boolean
  clipSkip?: number
  rng?: string
  maskMode?: string
  maskBlur?: number
  /** 'fill' | 'original' | 'latent noise' | 'latent nothing' */
  maskedContent?: string
  /** 'Whole picture' | 'Only masked' */
  inpaintArea?: string
  maskedAreaPadding?: number
  conditionalMaskWeight?: number
  outpaint?: OutpaintExtents
  outpaintOverlap?: number
  loraHashes?: LoraHash[]
  /** Civitai `Hashes: {"model": "…", "lora:name": "…"}`. */
  hashes?: Record<string, string>
  civitaiResources?: CivitaiResource[]
  version?: string
  /** Every other key, value unquoted, in the order found. */
  extra: Record<string, string>
}

/** What A1111 assumes for keys missing from an infotext (parse_generation_parameters). */
export const A1111_DEFAULTS = Object.freeze({
  clipSkip: 1,
  rng: 'GPU',
  scheduleType: 'Automatic',
  maskMode: 'Inpaint masked',
  maskedContent: 'original',
  inpaintArea: 'Whole picture',
  maskedAreaPadding: 32,
})

export function withA1111Defaults(p: GenerationParameters): GenerationParameters {
  return { ...A1111_DEFAULTS, ...stripUndefined(p) } as GenerationParameters
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

// ---------------------------------------------------------------------------------------------------------------
// quoting

/** A1111 `quote`: JSON string when the value contains ',', ':' or a newline. */
export function quote(value: string): string {
  if (!value.includes(',') && !value.includes('\n') && !value.includes(':')) return value
  return JSON.stringify(value)
}

/** A1111 `unquote`. */
export function unquote(text: string): string {
  if (text.length === 0 || text[0] !== '"' || text[text.length - 1] !== '"') return text
  try {
    const v: unknown = JSON.parse(text)
    return typeof v === 'string' ? v : text
  } catch {
    return text
  }
}

// ---------------------------------------------------------------------------------------------------------------
// writer

function fmtNumber(n: number): string {
  return String(n)
}

function cleanLoraName(name: string): string {
  return name.replaceAll(':', '').replaceAll(',', '')
}

function formatOutpaint(o: OutpaintExtents): string {
  return `left ${o.left} top ${o.top} right ${o.right} bottom ${o.bottom}`
}

/** The `parameters` text for a PNG. Keys appear in A1111's order; `extra` keys before Version. */
export function formatInfotext(p: GenerationParameters): string {
  const pairs: [string, string | undefined][] = []
  const num = (key: string, v: number | undefined): void => {
    pairs.push([key, v === undefined ? undefined : fmtNumber(v)])
  }
  num('Steps', p.steps)
  pairs.push(['Sampler', p.sampler])
  pairs.push(['Schedule type', p.scheduleType])
  num('CFG scale', p.cfgScale)
  num('Seed', p.seed)
  if (p.width !== undefined && p.height !== undefined) pairs.push(['Size', `${p.width}x${p.height}`])
  pairs.push(['Model hash', p.modelHash])
  pairs.push(['Model', p.model])
  pairs.push(['VAE hash', p.vaeHash])
  pairs.push(['VAE', p.vae])
  num('Denoising strength', p.denoisingStrength)
  pairs.push([
    'Strength mode',
    p.exactSteps === undefined ? undefined : p.exactSteps ? 'exact steps' : 'diffusers',
  ])
  num('Clip skip', p.clipSkip)
  pairs.push(['RNG', p.rng])
  num('Conditional mask weight', p.conditionalMaskWeight)
  pairs.push(['Mask mode', p.maskMode])
  num('Mask blur', p.maskBlur)
  pairs.push(['Inpaint area', p.inpaintArea])
  num('Masked area padding', p.maskedAreaPadding)
  pairs.push(['Masked content', p.maskedContent])
  pairs.push(['Outpaint', p.outpaint ? formatOutpaint(p.outpaint) : undefined])
  num('Outpaint overlap', p.outpaintOverlap)
  if (p.loraHashes && p.loraHashes.length > 0) {
    pairs.push(['Lora hashes', p.loraHashes.map((l) => `${cleanLoraName(l.name)}: ${l.hash}`).join(', ')])
  }
  for (const [k, v] of Object.entries(p.extra)) pairs.push([k, v])
  pairs.push(['Version', p.version])

  let line = pairs
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => (k === v ? k : `${k}: ${quote(v)}`))
    .join(', ')

  // Civitai extensions, raw JSON, at the end (civitai.com matches `, Hashes: {…}` and `, Civitai resources: […]`)
  const tail: string[] = []
  if (p.hashes && Object.keys(p.hashes).length > 0) {
    const h = Object.fromEntries(Object.entries(p.hashes).map(([k, v]) => [k.replace(/[{}]/g, ''), v]))
    tail.push(`Hashes: ${JSON.stringify(h)}`)
  }
  if (p.civitaiResources && p.civitaiResources.length > 0) {
    const list = p.civitaiResources.map((r) => {
      const o: Record<string, unknown> = { type: r.type }
      if (r.weight !== undefined) o.weight = r.weight
      if (r.modelVersionId !== undefined) o.modelVersionId = r.modelVersionId
      if (r.air !== undefined) o.air = r.air
      return o
    })
    tail.push(`Civitai resources: ${JSON.stringify(list)}`)
  }
  if (tail.length > 0) line = line === '' ? tail.join(', ') : `${line}, ${tail.join(', ')}`

  const negative = p.negativePrompt ? `\nNegative prompt: ${p.negativePrompt}` : ''
  return `${p.prompt}${negative}\n${line}`.trim()
}

// ---------------------------------------------------------------------------------------------------------------
// reader

// The reader is linear in the text's length: A1111's regexes (`re_param`, the Hashes / Civitai resources
// patterns) backtrack quadratically on long lines (a 32 KB line took 1.5 s), so they are re-implemented as
// scanners that return exactly what the regexes match.
//   re_param = \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)
const RE_IMAGESIZE = /^(\d+)x(\d+)$/
const TEMPLATE_KEYS = ['Template: ', 'Negative Template: ']
/** Numbers longer than this are not numbers (and would make the number regexes slow). */
const MAX_NUMBER_CHARS = 64

/** JS `\s`: WhiteSpace and LineTerminator. */
const isSpace = (c: string): boolean => {
  const x = c.charCodeAt(0)
  if (x < 128) return x === 32 || (x >= 9 && x <= 13)
  return (
    x === 0xa0 ||
    x === 0x1680 ||
    (x >= 0x2000 && x <= 0x200a) ||
    x === 0x2028 ||
    x === 0x2029 ||
    x === 0x202f ||
    x === 0x205f ||
    x === 0x3000 ||
    x === 0xfeff
  )
}
/** JS `\w` (no `u` flag): [A-Za-z0-9_]. */
const isWord = (c: string): boolean => {
  const x = c.charCodeAt(0)
  return (x >= 48 && x <= 57) || (x >= 65 && x <= 90) || (x >= 97 && x <= 122) || x === 95
}
const isKeyChar = (c: string): boolean => isWord(c) || c === ' ' || c === '-' || c === '/'
const isLineTerminator = (c: string): boolean => c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029'

/** Every `key: value` of a parameter line, as `[...line.matchAll(re_param)]` finds them, in O(n). */
export function findParams(line: string): [string, string][] {
  const n = line.length
  // end of the whitespace run / key-character run starting at i; where a quoted value opened before i closes
  const spaceEnd = new Int32Array(n + 1)
  const keyEnd = new Int32Array(n + 1)
  const quoteEnd = new Int32Array(n + 2)
  spaceEnd[n] = n
  keyEnd[n] = n
  quoteEnd[n] = -1
  quoteEnd[n + 1] = -1
  for (let i = n - 1; i >= 0; i--) {
    const c = line[i] as string
    spaceEnd[i] = isSpace(c) ? (spaceEnd[i + 1] as number) : i
    keyEnd[i] = isKeyChar(c) ? (keyEnd[i + 1] as number) : i
    if (c === '"') quoteEnd[i] = i
    else if (c === '\\')
      quoteEnd[i] = i + 1 < n && !isLineTerminator(line[i + 1] as string) ? (quoteEnd[i + 2] as number) : -1
    else quoteEnd[i] = quoteEnd[i + 1] as number
  }
  const out: [string, string][] = []
  let p = 0
  while (p < n) {
    const k = spaceEnd[p] as number
    const ke = keyEnd[k] as number
    if (k >= n || !isWord(line[k] as string) || ke - k < 2 || line[ke] !== ':') {
      p++
      continue
    }
    const v = spaceEnd[ke + 1] as number
    let end = -1
    if (line[v] === '"' && v + 1 < n && line[v + 1] !== '"') {
      const close = quoteEnd[v + 1] as number
      if (close > v + 1 && (close + 1 === n || line[close + 1] === ',')) end = close + 1
    }
    if (end < 0) {
      const comma = line.indexOf(',', v)
      end = comma < 0 ? n : comma
    }
    out.push([line.slice(k, ke), line.slice(v, end)])
    p = end < n ? end + 1 : n
  }
  return out
}

/**
 * The first match of `, <label>:\s*(<open>[^<close>]+<close>)` in O(n): `[start, end)` of the whole match and
 * the bracketed group, or undefined.
 */
function findBracketed(
  line: string,
  label: string,
  open: string,
  close: string,
): { start: number; end: number; group: string } | undefined {
  const needle = `, ${label}:`
  let closeAt = -1 // the first `close` after the last bracket looked at; searches never overlap
  for (let at = line.indexOf(needle); at >= 0; at = line.indexOf(needle, at + 1)) {
    let b = at + needle.length
    while (b < line.length && isSpace(line[b] as string)) b++
    if (line[b] !== open) continue
    if (closeAt <= b) {
      closeAt = line.indexOf(close, b + 1)
      if (closeAt < 0) return undefined // no `close` after this bracket, so none after any later one
    }
    if (closeAt > b + 1) return { start: at, end: closeAt + 1, group: line.slice(b, closeAt + 1) }
  }
  return undefined
}

function pyStrip(s: string): string {
  return s.trim() // JS trim() removes exactly the characters of \s, without a backtracking regex
}

function toInt(v: string): number | undefined {
  const t = v.trim()
  if (t.length > MAX_NUMBER_CHARS) return undefined
  if (!/^[-+]?\d+$/.test(t)) return undefined
  const n = Number(t)
  return Number.isSafeInteger(n) ? n : undefined
}

function toFloat(v: string): number | undefined {
  const t = v.trim()
  if (t.length > MAX_NUMBER_CHARS) return undefined
  if (t === '' || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return undefined
  return Number(t)
}

function parseLoraHashes(v: string): LoraHash[] {
  // A1111 lora_script.infotext_pasted: split on ',', then on the first ':'
  const out: LoraHash[] = []
  for (const item of v.split(',')) {
    const i = item.indexOf(':')
    if (i < 0) continue
    const name = item.slice(0, i).trim()
    const hash = item.slice(i + 1).trim()
    if (name !== '') out.push({ name, hash })
  }
  return out
}

function parseOutpaint(v: string): OutpaintExtents | undefined {
  const m = /^left (\d+) top (\d+) right (\d+) bottom (\d+)$/.exec(v.trim())
  if (!m) return undefined
  return { left: Number(m[1]), top: Number(m[2]), right: Number(m[3]), bottom: Number(m[4]) }
}

function parseCivitaiResources(json: string): CivitaiResource[] | undefined {
  try {
    const v: unknown = JSON.parse(json)
    if (!Array.isArray(v)) return undefined
    const out: CivitaiResource[] = []
    for (const item of v as unknown[]) {
      if (typeof item !== 'object' || item === null) continue
      const o = item as Record<string, unknown>
      const r: CivitaiResource = { type: typeof o.type === 'string' ? o.type : 'unknown' }
      if (typeof o.modelVersionId === 'number') r.modelVersionId = o.modelVersionId
      if (typeof o.air === 'string') r.air = o.air
      if (typeof o.weight === 'number') r.weight = o.weight
      out.push(r)
    }
    return out
  } catch {
    return undefined
  }
}

function parseHashes(json: string): Record<string, string> | undefined {
  try {
    const v: unknown = JSON.parse(json)
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>).filter(
        (e): e is [string, string] => typeof e[1] === 'string',
      ),
    )
  } catch {
    return undefined
  }
}

/** Dynamic Prompts / older tools write `Template: …` lines after the parameter line; peel them off. */
function peelTemplates(lines: string[], extra: Record<string, string>): string[] {
  const last = lines[lines.length - 1] ?? ''
  if (findParams(last).length >= 3) return lines
  for (let p = lines.length - 2; p >= 0; p--) {
    const next = lines[p + 1] as string
    if (findParams(lines[p] as string).length >= 3 && TEMPLATE_KEYS.some((k) => next.startsWith(k))) {
      let key: string | undefined
      for (const l of lines.slice(p + 1)) {
        const k = TEMPLATE_KEYS.find((t) => l.startsWith(t))
        if (k) {
          key = k.slice(0, -2)
          extra[key] = l.slice(k.length)
        } else if (key) {
          extra[key] += `\n${l}`
        }
      }
      return lines.slice(0, p + 1)
    }
  }
  return lines
}

/** Parse an A1111-style `parameters` text into typed parameters (unknown keys go to `extra`). */
export function parseInfotext(text: string): GenerationParameters {
  const extra: Record<string, string> = {}
  const result: GenerationParameters = { prompt: '', negativePrompt: '', extra }

  let lines = pyStrip(text).split('\n')
  lines = peelTemplates(lines, extra)
  let lastline = lines.pop() ?? ''
  if (findParams(lastline).length < 3) {
    lines.push(lastline)
    lastline = ''
  }

  let prompt = ''
  let negative = ''
  let doneWithPrompt = false
  for (let line of lines) {
    line = pyStrip(line)
    if (line.startsWith('Negative prompt:')) {
      doneWithPrompt = true
      line = pyStrip(line.slice(16))
    }
    if (doneWithPrompt) negative += (negative === '' ? '' : '\n') + line
    else prompt += (prompt === '' ? '' : '\n') + line
  }
  result.prompt = prompt
  result.negativePrompt = negative

  const hashes = findBracketed(lastline, 'Hashes', '{', '}')
  if (hashes) {
    const h = parseHashes(hashes.group)
    if (h) {
      result.hashes = h
      lastline = lastline.slice(0, hashes.start) + lastline.slice(hashes.end)
    }
  }
  const resources = findBracketed(lastline, 'Civitai resources', '[', ']')
  if (resources) {
    const r = parseCivitaiResources(resources.group)
    if (r) {
      result.civitaiResources = r
      lastline = lastline.slice(0, resources.start) + lastline.slice(resources.end)
    }
  }

  for (const [k, raw] of findParams(lastline)) {
    const v = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? unquote(raw) : raw
    if (!assignKnown(result, k, v)) extra[k] = v
  }
  return result
}

/** Set a typed field; false when the key is unknown or the value does not convert. */
function assignKnown(r: GenerationParameters, key: string, v: string): boolean {
  const setInt = (f: (n: number) => void): boolean => {
    const n = toInt(v)
    if (n === undefined) return false
    f(n)
    return true
  }
  const setFloat = (f: (n: number) => void): boolean => {
    const n = toFloat(v)
    if (n === undefined) return false
    f(n)
    return true
  }
  switch (key) {
    case 'Steps':
      return setInt((n) => (r.steps = n))
    case 'Sampler':
      r.sampler = v
      return true
    case 'Schedule type':
      r.scheduleType = v
      return true
    case 'CFG scale':
      return setFloat((n) => (r.cfgScale = n))
    case 'Seed':
      return setInt((n) => (r.seed = n))
    case 'Size': {
      const m = RE_IMAGESIZE.exec(v)
      if (!m) return false
      r.width = Number(m[1])
      r.height = Number(m[2])
      return true
    }
    case 'Model hash':
      r.modelHash = v
      return true
    case 'Model':
      r.model = v
      return true
    case 'VAE hash':
      r.vaeHash = v
      return true
    case 'VAE':
      r.vae = v
      return true
    case 'Denoising strength':
      return setFloat((n) => (r.denoisingStrength = n))
    case 'Strength mode':
      if (v === 'exact steps') r.exactSteps = true
      else if (v === 'diffusers') r.exactSteps = false
      else return false
      return true
    case 'Clip skip':
      return setInt((n) => (r.clipSkip = n))
    case 'RNG':
      r.rng = v
      return true
    case 'Conditional mask weight':
      return setFloat((n) => (r.conditionalMaskWeight = n))
    case 'Mask mode':
      r.maskMode = v
      return true
    case 'Mask blur':
      return setFloat((n) => (r.maskBlur = n))
    case 'Inpaint area':
      r.inpaintArea = v
      return true
    case 'Masked area padding':
      return setInt((n) => (r.maskedAreaPadding = n))
    case 'Masked content':
      r.maskedContent = v
      return true
    case 'Outpaint': {
      const o = parseOutpaint(v)
      if (!o) return false
      r.outpaint = o
      return true
    }
    case 'Outpaint overlap':
      return setInt((n) => (r.outpaintOverlap = n))
    case 'Lora hashes':
      r.loraHashes = parseLoraHashes(v)
      return true
    case 'Version':
      r.version = v
      return true
    default:
      return false
  }
}
