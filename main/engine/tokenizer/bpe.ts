import { ftfyFixText } from './ftfy'
import { htmlUnescape } from './html'

export { htmlUnescape } from './html'

/**
 * The pieces of OpenAI CLIP's simple_tokenizer.py (commit d05afc4), reproduced exactly:
 * bytes_to_unicode, basic_clean (ftfy.fix_text as ftfy.ts reproduces it, html.unescape twice, strip), whitespace_clean,
 * the pre-tokenizer pattern and byte-pair merging with `</w>` marking the end of a word.
 */

/** Python's str.isspace() set (whitespace_clean uses `re` \s, strip() uses isspace). */
const PY_SPACE = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
const SPACE_RUN = new RegExp(`[${PY_SPACE}]+`, 'gu')
const EDGE_SPACE = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'gu')

/** The tokenizer's pattern with Python's \s (not JS's, which also matches U+FEFF); `i` as re.IGNORECASE. */
export const CLIP_PATTERN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${PY_SPACE}\\p{L}\\p{N}]+`,
  'giu',
)

export const START_TOKEN = '<|startoftext|>'
export const END_TOKEN = '<|endoftext|>'
export const END_OF_WORD = '</w>'

function pyStrip(text: string): string {
  return text.replace(EDGE_SPACE, '')
}

/** whitespace_clean(basic_clean(text)).lower(); basic_clean = ftfy.fix_text, html.unescape twice, strip. */
export function cleanText(text: string): string {
  const unescaped = htmlUnescape(htmlUnescape(ftfyFixText(text)))
  return pyStrip(pyStrip(unescaped).replace(SPACE_RUN, ' ')).toLowerCase()
}

/** Printable bytes map to themselves; the rest to U+0100.. in byte order, so every token is visible text. */
export function bytesToUnicode(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
  const table: string[] = new Array<string>(256)
  let n = 0
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : 256 + n++)
  return table
}

/** bytes_to_unicode().values() in Python's dict order: the printable bytes first, then the remapped ones. */
export function byteAlphabet(): string[] {
  const table = bytesToUnicode()
  const printable: string[] = []
  const rest: string[] = []
  table.forEach((ch) => (ch.charCodeAt(0) < 256 ? printable : rest).push(ch))
  return [...printable, ...rest]
}

const pairKey = (a: string, b: string) => `${a} ${b}`

/** Byte-pair merges by rank (lower merges first). Tokens never contain spaces (space is a remapped byte). */
export class BytePairEncoder {
  private readonly ranks: Map<string, number>
  private readonly cache = new Map<string, string[]>()
  private static readonly CACHE_LIMIT = 100_000

  constructor(merges: readonly (readonly [string, string])[]) {
    this.ranks = new Map(merges.map(([a, b], i) => [pairKey(a, b), i]))
  }

  /** Split one byte-encoded pre-token into vocabulary symbols (the last carries `</w>`). */
  encodeWord(token: string): string[] {
    if (token === START_TOKEN || token === END_TOKEN) return [token]
    const hit = this.cache.get(token)
    if (hit) return hit
    const chars = Array.from(token)
    let word = [...chars.slice(0, -1), chars[chars.length - 1] + END_OF_WORD]
    while (word.length > 1) {
      let best = Infinity
      let first = ''
      let second = ''
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(pairKey(word[i]!, word[i + 1]!))
        if (r !== undefined && r < best) [best, first, second] = [r, word[i]!, word[i + 1]!]
      }
      if (best === Infinity) break
      const merged: string[] = []
      for (let i = 0; i < word.length;) {
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
          merged.push(first + second)
          i += 2
        } else {
          merged.push(word[i]!)
          i += 1
        }
      }
      word = merged
    }
    if (this.cache.size >= BytePairEncoder.CACHE_LIMIT) this.cache.clear()
    this.cache.set(token, word)
    return word
  }
}
