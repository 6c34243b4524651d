import { decodeHTMLStrict } from 'entities/decode'
import { htmlUnescape } from './html'

/**
 * ftfy.fix_text with its default configuration (ftfy 6), written from its documentation, for what CLIP's
 * tokenizers run before byte-pair encoding (OpenAI's basic_clean and transformers' CLIPTokenizer both call it).
 * The fixes, repeated until the text stops changing, each line on its own:
 *
 * - unescape_html "auto": `&name;`, `&NAME;` (upper-cased names of lower-case entities) and `&#…;` references,
 *   unless the line contains `<` (then it is taken for HTML and left alone);
 * - fix_encoding: mojibake from UTF-8 read as Windows-1252 / Latin-1 (`cafÃ©` → `café`, `â€™` → `’`), see
 *   `fixMojibake` for the (simpler) rule used here;
 * - fix_c1_controls: U+0080…U+009F read as their Windows-1252 characters;
 * - fix_latin_ligatures: ﬁ → fi, ﬂ → fl, ĳ → ij, ǆ → dž, …;
 * - fix_character_width: full-width and half-width forms (U+FF01…U+FFEF) by NFKC, U+3000 → space;
 * - uncurl_quotes: ‘ ’ ‚ ‛ ʼ → ', “ ” „ ‟ → ";
 * - fix_line_breaks: CRLF, CR, U+2028, U+2029, U+0085 → LF;
 * - fix_surrogates: lone surrogates → U+FFFD;
 * - remove_terminal_escapes: ANSI `ESC [ … letter` sequences removed;
 * - remove_control_chars: U+0000…U+0008, U+000B, U+000E…U+001F, U+007F, U+206A…U+206F, U+FEFF, U+FFF9…U+FFFC;
 * - NFC normalisation.
 */

const SINGLE_QUOTES = /[\u02bc\u2018-\u201b]/g
const DOUBLE_QUOTES = /[\u201c-\u201f]/g
// Built from strings: the characters these match are control characters on purpose.
const ANSI = new RegExp(String.raw`\x1b\[((?:\d|;)*)([a-zA-Z])`, 'g')
const CONTROL = new RegExp(
  String.raw`[\u0000-\u0008\u000b\u000e-\u001f\u007f\u206a-\u206f\ufeff\ufff9-\ufffc]`,
  'g',
)
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
const WIDE = /[\u3000\uff01-\uffef]/g
const HTML_ENTITY = /&#?[0-9A-Za-z]{1,24};/g

const LIGATURES: Record<string, string> = {
  Ĳ: 'IJ',
  ĳ: 'ij',
  ŉ: 'ʼn',
  Ǳ: 'DZ',
  ǲ: 'Dz',
  ǳ: 'dz',
  Ǆ: 'DŽ',
  ǅ: 'Dž',
  ǆ: 'dž',
  Ǉ: 'LJ',
  ǈ: 'Lj',
  ǉ: 'lj',
  Ǌ: 'NJ',
  ǋ: 'Nj',
  ǌ: 'nj',
  ﬀ: 'ff',
  ﬁ: 'fi',
  ﬂ: 'fl',
  ﬃ: 'ffi',
  ﬄ: 'ffl',
  ﬅ: 'ſt',
  ﬆ: 'st',
}
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g')

/** Windows-1252's characters for bytes 0x80…0x9F; the five undefined bytes stay themselves ("sloppy"). */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d,
  0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a,
  0x153, 0x9d, 0x17e, 0x178,
]
const CP1252_BYTE = new Map<number, number>(CP1252_HIGH.map((cp, i) => [cp, 0x80 + i]))

function unescapeEntity(m: string): string {
  const strict = decodeHTMLStrict(m)
  if (!m.startsWith('&#')) {
    if (strict !== m && [...strict].length <= 2) return strict
    const name = m.slice(1, -1)
    if (name === name.toUpperCase() && name !== name.toLowerCase()) {
      const lower = decodeHTMLStrict(`&${name.toLowerCase()};`)
      if (lower !== `&${name.toLowerCase()};`) return lower.toUpperCase()
    }
    return m
  }
  const u = htmlUnescape(m)
  return u.includes(';') ? m : u
}

/**
 * Mojibake: a line whose characters all exist in (sloppy) Windows-1252 / Latin-1, that contains a typical
 * UTF-8-as-1252 sequence (`Ã©`, `â€™`, `Â `…), and whose bytes in that encoding are valid UTF-8, is replaced by that
 * UTF-8 text. ftfy weighs candidates with a "badness" score and also fixes partial and mixed cases; this handles
 * the whole-line case.
 */
const MOJIBAKE_HINT =
  /[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]/
export function fixMojibake(text: string): string {
  if (!MOJIBAKE_HINT.test(text)) return text
  const bytes: number[] = []
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number
    if (cp < 0x100) bytes.push(cp)
    else {
      const b = CP1252_BYTE.get(cp)
      if (b === undefined) return text
      bytes.push(b)
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes))
  } catch {
    return text
  }
}

function fixOnce(line: string, unescape: boolean): string {
  let t = line
  if (unescape) t = t.replace(HTML_ENTITY, unescapeEntity)
  t = fixMojibake(t)
  t = t.replace(/[\u0080-\u009f]/g, (c) =>
    String.fromCodePoint(CP1252_HIGH[c.charCodeAt(0) - 0x80] as number),
  )
  t = t.replace(LIGATURE_RE, (c) => LIGATURES[c] as string)
  t = t.replace(WIDE, (c) => (c === '\u3000' ? ' ' : c.normalize('NFKC')))
  t = t.replace(SINGLE_QUOTES, "'").replace(DOUBLE_QUOTES, '"')
  t = t.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\u0085]/g, '\n')
  t = t.replace(LONE_SURROGATE, '\ufffd')
  t = t.replace(ANSI, '')
  t = t.replace(CONTROL, '')
  return t.normalize('NFC')
}

/** ftfy.fix_text(text) with default settings (see the file header). */
export function ftfyFixText(text: string): string {
  if (text === '') return text
  // fix_text works line by line; "auto" HTML unescaping is switched off at the first line holding '<' (for that
  // line and every later one, as ftfy's loop keeps the changed setting).
  let unescape = true
  return text
    .split(/(?<=\n)/)
    .map((line) => {
      if (line.includes('<')) unescape = false
      let cur = line
      for (let i = 0; i < 8; i++) {
        const next = fixOnce(cur, unescape)
        if (next === cur) break
        cur = next
      }
      return cur
    })
    .join('')
}
