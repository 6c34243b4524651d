import { describe, expect, it } from 'vitest'
import { a1111PairsLine } from './pairs'
import { pyFloatRepr, pyJsonDumps } from './py-json'

/**
 * `atelier prompt --a1111-pairs` against A1111's parse_prompt_attention (v1.7+ regex).
 *
 * 1. Lines printed by upstream's own function under CPython 3.11 (json.dumps of its result).
 * 2. A few thousand generated prompts against an independent re-implementation of upstream's algorithm written
 *    here as a character scanner (no regular expressions for the tokens), with its own float formatting.
 */

// [prompt, the line CPython printed for json.dumps(parse_prompt_attention(prompt))]
const PYTHON_LINES: [string, string][] = [
  ['normal text', '[["normal text", 1.0]]'],
  ['an (important) word', '[["an ", 1.0], ["important", 1.1], [" word", 1.0]]'],
  [
    'a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).',
    '[["a ", 1.0], ["house", 1.5730000000000004], [" ", 1.1], ["on", 1.0], [" a ", 1.1], ["hill", 0.55], ' +
      '[", sun, ", 1.1], ["sky", 1.4641000000000006], [".", 1.1]]',
  ],
  ['(chibi: 1.2)', '[["chibi", 1.2]]'],
  ['(masterpiece:1.2 )', '[["masterpiece", 1.2]]'],
  ['((a))', '[["a", 1.2100000000000002]]'],
  ['[a]', '[["a", 0.9090909090909091]]'],
  ['(a BREAK b)', '[["a", 1.1], ["BREAK", -1.1], ["b", 1.1]]'],
  ['a BREAK BREAK b', '[["a", 1.0], ["BREAK", -1], ["", 1.0], ["BREAK", -1], ["b", 1.0]]'],
  ['(a:1.2.3)', '{"error": "ValueError: could not convert string to float: \'1.2.3\'"}'],
  [']\\\\:\n(\\[0.5\\]2.2.:.)\\(', '{"error": "ValueError: could not convert string to float: \'.\'"}'],
  [
    '\u00e9\u00a0( BREAK x0.5axBREAK( BREAK \u65e5\u672c\u00e9:1.2.3)a',
    '{"error": "ValueError: could not convert string to float: \'1.2.3\'"}',
  ],
  ['xxBREAK:1.2.3)(:1e5).5:1e5)x(:.)', '{"error": "ValueError: could not convert string to float: \'.\'"}'],
  [
    '\\[\u65e5\u672c).5:1.2.3)(\\)0.5:.)',
    '{"error": "ValueError: could not convert string to float: \'.\'"}',
  ],
  [
    'BREAK\\[(\\((:1e5)\u00a0:] BREAK \ufeff:.)',
    '{"error": "ValueError: could not convert string to float: \'.\'"}',
  ],
  [')(0.5:1.2.3)2.[\u00e9\ufeffx', '{"error": "ValueError: could not convert string to float: \'1.2.3\'"}'],
  [' BREAK ', '[["", 1.0], ["BREAK", -1], ["", 1.0]]'],
  ['\u2003:1.2.3)0.5xBREAK', '[["\\u2003:1.2.3)0.5xBREAK", 1.0]]'],
  [
    '-2\u65e5\u672c BREAK \\[\ud835\udfd9BREAK',
    '[["-2\\u65e5\\u672c", 1.0], ["BREAK", -1], ["[\\ud835\\udfd9BREAK", 1.0]]',
  ],
  ['BREAK1.2)BREAK: 1.3 )x', '[["BREAK1.2)", 1.0], ["BREAK", -1], [": 1.3 )x", 1.0]]'],
  ['.5-2\u65e5\u672c1.5BREAK(\u2003\u00a0', '[[".5-2\\u65e5\\u672c1.5BREAK", 1.0], ["\\u2003\\u00a0", 1.1]]'],
  [
    'BREAK:00)\ud835\udfd9:0.0001).51.2\t\\)\ufeff',
    '[["", 1.0], ["BREAK", -1], [":00)\\ud835\\udfd9:0.0001).51.2\\t)\\ufeff", 1.0]]',
  ],
  ['-2: 1.3 ):1e5)\u00a0: 1.3 )\u2003:.)):1e5)', '[["-2: 1.3 ):1e5)\\u00a0: 1.3 )\\u2003:.)):1e5)", 1.0]]'],
  ['])\u00a0:.)AND+4', '[["])\\u00a0:.)AND+4", 1.0]]'],
  ['0.5:00)(\ufeffb c]\ud835\udfd9', '[["0.5:00)", 1.0], ["\\ufeffb c]\\ud835\\udfd9", 1.1]]'],
  [
    '\u2003AND\u65e5\u672c+4]\\[b c\u00e9\\)-2\ufeff',
    '[["\\u2003AND\\u65e5\\u672c+4][b c\\u00e9)-2\\ufeff", 1.0]]',
  ],
  ['\u2003:1.2.3)0.5xBREAK', '[["\\u2003:1.2.3)0.5xBREAK", 1.0]]'],
  [
    '-2\u65e5\u672c BREAK \\[\ud835\udfd9BREAK',
    '[["-2\\u65e5\\u672c", 1.0], ["BREAK", -1], ["[\\ud835\\udfd9BREAK", 1.0]]',
  ],
  ['-2', '[["-2", 1.0]]'],
  ['\\\\', '[["\\\\", 1.0]]'],
  [
    'a\\(\\:99999999999999999999999999)\\\\.5 BREAK [)',
    '[["a(:99999999999999999999999999)\\\\.5", 1.0], ["BREAK", -1], ["", 1.0], [")", 0.9090909090909091]]',
  ],
  ['\u00a0', '[["\\u00a0", 1.0]]'],
  ['x).5]', '[["x).5]", 1.0]]'],
  [
    ' : 1.3 ):99999999999999999999999999)\\)BREAK',
    '[[" : 1.3 ):99999999999999999999999999))", 1.0], ["BREAK", -1], ["", 1.0]]',
  ],
  [
    '\\\\\\]:.)\\\\\\\\b c\\]\u0663 BREAK \u00e9 BREAK (',
    '[["\\\\]:.)\\\\\\\\b c]\\u0663", 1.0], ["BREAK", -1], ["\\u00e9", 1.0], ["BREAK", -1], ["", 1.0]]',
  ],
  [
    '0.5[\\(\t\u00a0\u65e5\u672c:)\\)+4x: ',
    '[["0.5", 1.0], ["(\\t\\u00a0\\u65e5\\u672c:))+4x: ", 0.9090909090909091]]',
  ],
  ['AND0.5]', '[["AND0.5]", 1.0]]'],
  [')\u00e9', '[[")\\u00e9", 1.0]]'],
  ['\u00a0\\]\\( ', '[["\\u00a0]( ", 1.0]]'],
  ['\u0663\\)\u00a0:00) BREAK \u2003\u00a0x', '[["\\u0663)\\u00a0:00)", 1.0], ["BREAK", -1], ["x", 1.0]]'],
  [
    'AND[:1.2.3)\n\\\\\ufeff1.5\u00a0\\[:00)\u65e5\u672c',
    '[["AND", 1.0], [":1.2.3)\\n\\\\\\ufeff1.5\\u00a0[:00)\\u65e5\\u672c", 0.9090909090909091]]',
  ],
  ['\u65e5\u672c\\\\:.):1.2.3)ANDb c2.\u00e9', '[["\\u65e5\\u672c\\\\:.):1.2.3)ANDb c2.\\u00e9", 1.0]]'],
]

describe('atelier prompt --a1111-pairs: lines CPython printed', () => {
  it.each(PYTHON_LINES)('%j', (prompt, line) => {
    expect(a1111PairsLine(JSON.stringify(prompt))).toBe(line)
  })
})

describe('Python float repr and json.dumps', () => {
  it.each([
    [1, '1.0'],
    [1.1, '1.1'],
    [1.1 * 1.1, '1.2100000000000002'],
    [1e16, '1e+16'],
    [1e15, '1000000000000000.0'],
    [123456789012345680, '1.2345678901234568e+17'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [-0, '-0.0'],
    [1 / 1.1, '0.9090909090909091'],
    [2.5e-7, '2.5e-07'],
    [-1.5e300, '-1.5e+300'],
  ])('repr(%d) = %s', (x, s) => expect(pyFloatRepr(x)).toBe(s))

  it('NaN and infinities as json.dumps writes them; strings ensure_ascii', () => {
    expect(pyJsonDumps([Number.NaN, Infinity, -Infinity])).toBe('[NaN, Infinity, -Infinity]')
    expect(pyJsonDumps('é"\\\n\u0001\u007f😀')).toBe('"\\u00e9\\"\\\\\\n\\u0001\\u007f\\ud83d\\ude00"')
    expect(pyJsonDumps([{ int: -1 }, 'x'])).toBe('[-1, "x"]')
  })

  it('bad input lines give an error line', () => {
    expect(a1111PairsLine('not json')).toMatch(/^\{"error": "input is not JSON/)
    expect(a1111PairsLine('42')).toBe('{"error": "input is not a JSON string"}')
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Independent reference: upstream's algorithm as a hand-written scanner.

/** Python str.isspace() code points. */
const PY_SPACES = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002,
  0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
])
/** The non-ASCII decimal digits the generator uses, with their values. */
const OTHER_DIGITS: Record<string, string> = { '٣': '3', '𝟙': '1', '５': '5' }

const isSpace = (ch: string): boolean => PY_SPACES.has(ch.codePointAt(0) as number)
const isDigit = (ch: string): boolean => (ch >= '0' && ch <= '9') || ch in OTHER_DIGITS
const isWord = (ch: string | undefined): boolean => ch !== undefined && /[\p{L}\p{N}_]/u.test(ch)

type Tok = { kind: 'esc' | 'open' | 'close' | 'weight' | 'text'; text: string; num?: string }

function scan(s: string): Tok[] {
  const cs = Array.from(s) // code points, as Python indexes
  const out: Tok[] = []
  let i = 0
  while (i < cs.length) {
    const c = cs[i] as string
    if (c === '\\') {
      const n = cs[i + 1]
      if (n !== undefined && '()[]\\'.includes(n)) {
        out.push({ kind: 'esc', text: n })
        i += 2
      } else {
        out.push({ kind: 'esc', text: '' })
        i += 1
      }
    } else if (c === '(' || c === '[') {
      out.push({ kind: 'open', text: c })
      i++
    } else if (c === ')' || c === ']') {
      out.push({ kind: 'close', text: c })
      i++
    } else if (c === ':') {
      let j = i + 1
      while (j < cs.length && isSpace(cs[j] as string)) j++
      let num = ''
      if (cs[j] === '+' || cs[j] === '-') num += cs[j++]
      const digitsFrom = j
      while (j < cs.length && (cs[j] === '.' || isDigit(cs[j] as string))) num += cs[j++]
      while (j < cs.length && isSpace(cs[j] as string)) j++
      if (j > digitsFrom && cs[j] === ')') {
        out.push({ kind: 'weight', text: cs.slice(i, j + 1).join(''), num })
        i = j + 1
      } else {
        out.push({ kind: 'text', text: ':' })
        i++
      }
    } else {
      let j = i
      while (j < cs.length && !'\\()[]:'.includes(cs[j] as string)) j++
      out.push({ kind: 'text', text: cs.slice(i, j).join('') })
      i = j
    }
  }
  return out
}

/** re.split(r"\s*\bBREAK\b\s*", text) */
function splitBreak(text: string): string[] {
  const cs = Array.from(text)
  const parts: string[] = []
  let from = 0
  let i = 0
  while (i < cs.length) {
    let j = i
    while (j < cs.length && isSpace(cs[j] as string)) j++
    const word = cs.slice(j, j + 5).join('')
    if (word === 'BREAK' && !isWord(cs[j - 1]) && !isWord(cs[j + 5])) {
      let k = j + 5
      while (k < cs.length && isSpace(cs[k] as string)) k++
      parts.push(cs.slice(from, i).join(''))
      from = k
      i = k
      continue
    }
    i++
  }
  parts.push(cs.slice(from).join(''))
  return parts
}

function pyFloat(num: string): number | undefined {
  const ascii = Array.from(num)
    .map((c) => OTHER_DIGITS[c] ?? c)
    .join('')
  const [intPart = '', frac, more] = ascii.replace(/^[+-]/, '').split('.')
  if (more !== undefined || (intPart === '' && (frac ?? '') === '')) return undefined
  return Number(ascii)
}

type RefPair = [string, number, boolean]

function reference(prompt: string): RefPair[] | string {
  const res: RefPair[] = []
  const round: number[] = []
  const square: number[] = []
  const mul = (from: number, m: number): void => {
    for (let p = from; p < res.length; p++) {
      const e = res[p] as RefPair
      e[1] *= m
      e[2] = false
    }
  }
  for (const t of scan(prompt)) {
    if (t.kind === 'esc') res.push([t.text, 1, false])
    else if (t.kind === 'open') (t.text === '(' ? round : square).push(res.length)
    else if (t.kind === 'weight' && round.length) {
      const w = pyFloat(t.num as string)
      if (w === undefined) return `ValueError: could not convert string to float: '${t.num}'`
      mul(round.pop() as number, w)
    } else if (t.kind === 'close' && t.text === ')' && round.length) mul(round.pop() as number, 1.1)
    else if (t.kind === 'close' && t.text === ']' && square.length) mul(square.pop() as number, 1 / 1.1)
    else
      splitBreak(t.text).forEach((part, k) => {
        if (k > 0) res.push(['BREAK', -1, true])
        res.push([part, 1, false])
      })
  }
  for (const p of round) mul(p, 1.1)
  for (const p of square) mul(p, 1 / 1.1)
  if (res.length === 0) res.push(['', 1, false])
  for (let i = 0; i + 1 < res.length;) {
    const a = res[i] as RefPair
    const b = res[i + 1] as RefPair
    if (a[1] === b[1]) {
      a[0] += b[0]
      res.splice(i + 1, 1)
    } else i++
  }
  return res
}

/** repr(float) the long way: the fewest significant digits that read back, then Python's layout rule. */
function refRepr(x: number): string {
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0'
  let p = 1
  while (Number(x.toPrecision(p)) !== x) p++
  const [mant = '', expText = '0'] = x.toExponential(p - 1).split('e')
  const exp = Number(expText)
  const neg = mant.startsWith('-')
  const digits = mant.replace('-', '').replace('.', '')
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits
    return `${neg ? '-' : ''}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`
  }
  let s: string
  if (exp < 0) s = `0.${'0'.repeat(-exp - 1)}${digits}`
  else if (digits.length <= exp + 1) s = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`
  else s = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`
  return `${neg ? '-' : ''}${s}`
}

function refNumber(x: number, isInt: boolean): string {
  if (isInt) return String(x)
  if (Number.isNaN(x)) return 'NaN'
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity'
  return refRepr(x)
}

function refString(s: string): string {
  return JSON.stringify(s).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

function referenceLine(prompt: string): string {
  const r = reference(prompt)
  if (typeof r === 'string') return `{"error": ${refString(r)}}`
  return `[${r.map(([t, w, i]) => `[${refString(t)}, ${refNumber(w, i)}]`).join(', ')}]`
}

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ATOMS = [
  '(',
  ')',
  '[',
  ']',
  ':',
  '\\',
  '\\(',
  '\\)',
  '\\[',
  '\\]',
  '\\\\',
  ' ',
  '  ',
  '\t',
  '\n',
  '\u00a0',
  '\u3000',
  '\ufeff',
  'a',
  'cat',
  'b c',
  'BREAK',
  ' BREAK ',
  'xBREAK',
  'BREAKy',
  '_BREAK',
  'é',
  '日本',
  '😀',
  '1.2',
  '0.5',
  '.5',
  '2.',
  '-2',
  '+4',
  '٣',
  '𝟙',
  '５',
  ': 1.3 )',
  ':1.2.3)',
  ':.)',
  ':00)',
  ':0.0001)',
  ':1e5)',
  ':+)',
  ':99999999999999999999999)',
  ':-0.5 )',
  ',',
  'AND',
  '|',
  '<lora:x:0.5>',
]

describe('atelier prompt --a1111-pairs: generated prompts against a re-implementation', () => {
  it('agrees on 4000 prompts', () => {
    const r = rng(20261207)
    const mismatches: string[] = []
    for (let n = 0; n < 4000; n++) {
      const len = 1 + Math.floor(r() * 16)
      let p = ''
      for (let k = 0; k < len; k++) p += ATOMS[Math.floor(r() * ATOMS.length)]
      const mine = a1111PairsLine(JSON.stringify(p))
      const ref = referenceLine(p)
      if (mine !== ref) mismatches.push(`${JSON.stringify(p)}\n  mine ${mine}\n  ref  ${ref}`)
    }
    expect(mismatches.slice(0, 5).join('\n')).toBe('')
  })
})
