/**
 * A1111 attention syntax (`modules/prompt_parser.py::parse_prompt_attention`, v1.7+ regex), token for token:
 *
 *   (abc)      weight x 1.1         [abc]      weight / 1.1
 *   (abc:1.3)  weight x 1.3 (spaces allowed around the number: `(abc: 1.3 )`)
 *   \( \) \[ \] \\   literal characters
 *   BREAK      (whole word, upper case) closes the current 75-token chunk
 *
 * Unbalanced brackets apply up to the end of the prompt; runs of equal weights are merged.
 *
 * Two entry points:
 * - `parseA1111Pairs` is upstream exactly (what `atelier prompt --a1111-pairs` prints): BREAK markers are
 *   ["BREAK", -1] pairs that brackets multiply and merging joins, and an unparsable weight (`(a:1.2.3)`) throws
 *   like Python's float().
 * - `parsePromptAttention` is what the pipeline uses, with deliberate deviations in corner cases where upstream
 *   misbehaves: BREAK markers are never multiplied or merged (upstream turns `(a BREAK b)` into the literal word
 *   "BREAK" with weight -1.1 and "BREAK BREAK" into "BREAKBREAK"), and `(a:1.2.3)` keeps the weight text literal and
 *   closes the bracket with 1.1 instead of failing the generation.
 *
 * Python's `\s`, `\d` and `\b` are Unicode-aware; they are reproduced with the same character sets.
 */

export interface TextSegment {
  type: 'text'
  text: string
  weight: number
}

export interface BreakSegment {
  type: 'break'
}

export type PromptSegment = TextSegment | BreakSegment

export const ROUND_BRACKET_MULTIPLIER = 1.1
export const SQUARE_BRACKET_MULTIPLIER = 1 / 1.1

/** Python's str.isspace() set, which `re`'s \s matches for str patterns. */
export const PY_SPACE_CLASS =
  '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
const S = `[${PY_SPACE_CLASS}]`

// Same alternatives, same order as upstream's re_attention; Python \d = any Unicode decimal digit.
const RE_ATTENTION = new RegExp(
  String.raw`\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:${S}*([+-]?[.\p{Nd}]+)${S}*\)|\)|\]|[^\\()[\]:]+|:`,
  'gu',
)

// Python's `\s*\bBREAK\b\s*` (re.S) with a Unicode word boundary (word = letters, numbers, underscore).
const RE_BREAK = new RegExp(`${S}*(?<![\\p{L}\\p{N}_])BREAK(?![\\p{L}\\p{N}_])${S}*`, 'u')

/** A weight Python's float() refuses (upstream fails the whole prompt). */
export class PromptWeightError extends Error {
  constructor(readonly weightText: string) {
    super(`could not convert string to float: '${weightText}'`)
    this.name = 'ValueError'
  }
}

/**
 * Python float() for strings matched by `[+-]?[.\d]+` (Unicode digits are read by their value, as Python does);
 * undefined where float() raises.
 */
export function pyFloatOfWeight(s: string): number | undefined {
  const ascii = s.replace(/\p{Nd}/gu, (d) => {
    const cp = d.codePointAt(0) as number
    if (cp >= 0x30 && cp <= 0x39) return d
    // Unicode assigns decimal digits only in runs of ten (0..9, ascending), runs of several scripts sometimes back
    // to back: the value is the distance from the start of the contiguous range, modulo 10.
    let start = cp
    while (start > 0 && /\p{Nd}/u.test(String.fromCodePoint(start - 1))) start--
    return String((cp - start) % 10)
  })
  if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(ascii)) return undefined
  return Number(ascii)
}

interface Entry {
  text: string
  weight: number
  /** A BREAK marker made by the parser (kept apart from text unless upstream quirks are wanted). */
  marker: boolean
  /** The weight is still Python's int -1 of a marker (no bracket multiplied it yet). */
  int?: boolean
}

function parseEntries(text: string, exact: boolean): Entry[] {
  const res: Entry[] = []
  const roundBrackets: number[] = []
  const squareBrackets: number[] = []

  const multiplyRange = (start: number, multiplier: number): void => {
    for (let p = start; p < res.length; p++) {
      const e = res[p] as Entry
      if (exact || !e.marker) {
        e.weight *= multiplier
        e.int = false
      }
    }
  }
  const pushText = (t: string): void => {
    const parts = t.split(RE_BREAK)
    parts.forEach((part, i) => {
      if (i > 0) res.push({ text: 'BREAK', weight: -1, marker: true, int: true })
      res.push({ text: part, weight: 1.0, marker: false })
    })
  }

  for (const m of text.matchAll(RE_ATTENTION)) {
    const tok = m[0]
    const weight = m[1]
    if (tok.startsWith('\\')) {
      res.push({ text: tok.slice(1), weight: 1.0, marker: false })
    } else if (tok === '(') {
      roundBrackets.push(res.length)
    } else if (tok === '[') {
      squareBrackets.push(res.length)
    } else if (weight !== undefined && roundBrackets.length > 0) {
      const start = roundBrackets.pop() as number
      const w = pyFloatOfWeight(weight)
      if (w !== undefined) {
        multiplyRange(start, w)
      } else if (exact) {
        throw new PromptWeightError(weight)
      } else {
        pushText(tok.slice(0, -1))
        multiplyRange(start, ROUND_BRACKET_MULTIPLIER)
      }
    } else if (tok === ')' && roundBrackets.length > 0) {
      multiplyRange(roundBrackets.pop() as number, ROUND_BRACKET_MULTIPLIER)
    } else if (tok === ']' && squareBrackets.length > 0) {
      multiplyRange(squareBrackets.pop() as number, SQUARE_BRACKET_MULTIPLIER)
    } else {
      pushText(tok)
    }
  }

  for (const pos of roundBrackets) multiplyRange(pos, ROUND_BRACKET_MULTIPLIER)
  for (const pos of squareBrackets) multiplyRange(pos, SQUARE_BRACKET_MULTIPLIER)

  if (res.length === 0) res.push({ text: '', weight: 1.0, marker: false })

  // merge runs of identical weights
  let i = 0
  while (i + 1 < res.length) {
    const a = res[i] as Entry
    const b = res[i + 1] as Entry
    if (a.weight === b.weight && (exact || (!a.marker && !b.marker))) {
      a.text += b.text
      res.splice(i + 1, 1)
    } else {
      i++
    }
  }
  return res
}

/**
 * Upstream's result exactly: [text, weight] pairs, BREAK as ["BREAK", -1] (multiplied and merged as upstream
 * does). Throws PromptWeightError where upstream's float() raises.
 */
export function parseA1111Pairs(text: string): [string, number][] {
  return parseEntries(text, true).map((e) => [e.text, e.weight])
}

/** parseA1111Pairs with, per pair, whether Python holds the weight as an int (an unmultiplied BREAK's -1). */
export function parseA1111PairsTyped(text: string): { text: string; weight: number; int: boolean }[] {
  return parseEntries(text, true).map((e) => ({ text: e.text, weight: e.weight, int: e.int === true }))
}

/** Parse a prompt into weighted text segments and BREAK markers (A1111 "emphasis: Original" parsing). */
export function parsePromptAttention(text: string): PromptSegment[] {
  return parseEntries(text, false).map((e) =>
    e.marker ? { type: 'break' } : { type: 'text', text: e.text, weight: e.weight },
  )
}

/** The upstream doctest representation of segments: [text, weight] pairs, BREAK as ["BREAK", -1]. */
export function toA1111Pairs(segments: readonly PromptSegment[]): [string, number][] {
  return segments.map((s) => (s.type === 'break' ? ['BREAK', -1] : [s.text, s.weight]))
}
