/**
 * A1111 attention syntax (`modules/prompt_parser.py::parse_prompt_attention`), reimplemented token for token:
 *
 *   (abc)      weight x 1.1         [abc]      weight / 1.1
 *   (abc:1.3)  weight x 1.3         \( \) \[ \] \\   literal characters
 *   BREAK      (whole word, upper case) closes the current 75-token chunk
 *
 * Unbalanced brackets apply up to the end of the prompt; runs of equal weights are merged.
 *
 * Deliberate deviations from upstream (all in corner cases where upstream misbehaves):
 * - BREAK markers are never multiplied by enclosing brackets and never merged with neighbours. Upstream stores a
 *   BREAK as the pair ["BREAK", -1] and multiplies it like text, so `(a BREAK b)` turns the marker into the literal
 *   word "BREAK" with weight -1.1, and "BREAK BREAK" merges into the word "BREAKBREAK".
 * - `(a:1.2.3)` makes Python's float() raise (the whole prompt fails upstream); here the unparsable weight is kept as
 *   literal text and the `)` closes the bracket with the default 1.1.
 * - `\b` in upstream's BREAK regex is Python's Unicode word boundary; it is reproduced with Unicode lookarounds.
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

// Same alternatives, same order as upstream's re_attention.
const RE_ATTENTION = /\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:([+-]?[.\d]+)\)|\)|]|[^\\()[\]:]+|:/g

// Python's `\s*\bBREAK\b\s*` with a Unicode-aware word boundary.
const RE_BREAK = /\s*(?<![\p{L}\p{N}_])BREAK(?![\p{L}\p{N}_])\s*/su

function isNumericLiteral(s: string): boolean {
  // What Python's float() accepts for strings matched by [+-]?[.\d]+
  return /^[+-]?(\d+\.?\d*|\.\d+)$/.test(s)
}

/** Parse a prompt into weighted text segments and BREAK markers (A1111 "emphasis: Original" parsing). */
export function parsePromptAttention(text: string): PromptSegment[] {
  const res: PromptSegment[] = []
  const roundBrackets: number[] = []
  const squareBrackets: number[] = []

  const multiplyRange = (start: number, multiplier: number): void => {
    for (let p = start; p < res.length; p++) {
      const seg = res[p]
      if (seg && seg.type === 'text') seg.weight *= multiplier
    }
  }
  const pushText = (t: string): void => {
    const parts = t.split(RE_BREAK)
    parts.forEach((part, i) => {
      if (i > 0) res.push({ type: 'break' })
      res.push({ type: 'text', text: part, weight: 1.0 })
    })
  }

  for (const m of text.matchAll(RE_ATTENTION)) {
    const tok = m[0]
    const weight = m[1]
    if (tok.startsWith('\\')) {
      res.push({ type: 'text', text: tok.slice(1), weight: 1.0 })
    } else if (tok === '(') {
      roundBrackets.push(res.length)
    } else if (tok === '[') {
      squareBrackets.push(res.length)
    } else if (weight !== undefined && roundBrackets.length > 0) {
      const start = roundBrackets.pop() as number
      if (isNumericLiteral(weight)) {
        multiplyRange(start, Number(weight))
      } else {
        pushText(`:${weight}`)
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

  if (res.length === 0) res.push({ type: 'text', text: '', weight: 1.0 })

  // merge runs of identical weights (text only)
  let i = 0
  while (i + 1 < res.length) {
    const a = res[i] as PromptSegment
    const b = res[i + 1] as PromptSegment
    if (a.type === 'text' && b.type === 'text' && a.weight === b.weight) {
      a.text += b.text
      res.splice(i + 1, 1)
    } else {
      i++
    }
  }
  return res
}

/** The upstream doctest representation: [text, weight] pairs, BREAK as ["BREAK", -1]. */
export function toA1111Pairs(segments: readonly PromptSegment[]): [string, number][] {
  return segments.map((s) => (s.type === 'break' ? ['BREAK', -1] : [s.text, s.weight]))
}
