import { decodeHTML, replaceCodePoint } from 'entities/decode'

/** Python html.unescape's reference syntax; named references go to an HTML5 decoder (legacy prefixes too). */
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g

/** Code points html.unescape drops from numeric references (its _invalid_codepoints). */
function pyDropsCodePoint(n: number): boolean {
  return (
    (n >= 0x1 && n <= 0x8) ||
    n === 0xb ||
    (n >= 0xe && n <= 0x1f) ||
    n === 0x7f ||
    (n >= 0xfdd0 && n <= 0xfdef) ||
    (n & 0xfffe) === 0xfffe
  )
}

function numericRef(ref: string): string {
  const hex = ref[1] === 'x' || ref[1] === 'X'
  const n = parseInt(ref.slice(hex ? 2 : 1).replace(';', ''), hex ? 16 : 10)
  if (n === 0) return '\ufffd'
  if (n === 0x0d) return '\r'
  if (n >= 0x80 && n <= 0x9f) return String.fromCodePoint(replaceCodePoint(n))
  if ((n >= 0xd800 && n <= 0xdfff) || n > 0x10ffff) return '\ufffd'
  return pyDropsCodePoint(n) ? '' : String.fromCodePoint(n)
}

/** Python's html.unescape. */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text
  return text.replace(CHARREF, (m, ref: string) => (ref.startsWith('#') ? numericRef(ref) : decodeHTML(m)))
}
