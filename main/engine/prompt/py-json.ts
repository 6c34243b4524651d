/**
 * Python's `json.dumps` output for the values `atelier prompt --a1111-pairs` prints (lists, strings, floats),
 * with its defaults: `ensure_ascii=True`, separators `', '` / `': '`, floats as `float.__repr__`
 * (shortest round-trip digits; scientific notation below 1e-4 and from 1e16 on; NaN / Infinity as bare words).
 */

/** `repr(x)` of a Python float. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan'
  if (x === Infinity) return 'inf'
  if (x === -Infinity) return '-inf'
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0'
  // toExponential() without digits gives the shortest digits that round-trip, as Python's repr does.
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(x.toExponential())
  if (!m) throw new Error(`unexpected number format ${x.toExponential()}`)
  const sign = m[1] as string
  const digits = (m[2] as string) + (m[3] ?? '')
  const exp = Number(m[4])
  const decpt = exp + 1 // value = 0.DIGITS x 10^decpt
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`
    if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`
    return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`
  }
  const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits
  const e = exp < 0 ? `-${String(-exp).padStart(2, '0')}` : `+${String(exp).padStart(2, '0')}`
  return `${sign}${mant}e${e}`
}

const SHORT_ESCAPES: Record<number, string> = {
  0x22: '\\"',
  0x5c: '\\\\',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x08: '\\b',
  0x0c: '\\f',
}

/** `json.dumps(s)` of a str (ensure_ascii: everything outside space..tilde escaped, UTF-16 units). */
export function pyJsonString(s: string): string {
  let out = '"'
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const short = SHORT_ESCAPES[c]
    if (short) out += short
    else if (c >= 0x20 && c <= 0x7e) out += s[i]
    else out += `\\u${c.toString(16).padStart(4, '0')}`
  }
  return `${out}"`
}

/** A Python int (written without a decimal point). */
export interface PyInt {
  int: number
}

export type PyJsonValue = string | number | boolean | null | PyInt | readonly PyJsonValue[]

/** `json.dumps(value)`; JavaScript numbers are written as Python floats. */
export function pyJsonDumps(value: PyJsonValue): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return pyJsonString(value)
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN'
    if (value === Infinity) return 'Infinity'
    if (value === -Infinity) return '-Infinity'
    return pyFloatRepr(value)
  }
  if (Array.isArray(value)) return `[${value.map(pyJsonDumps).join(', ')}]`
  return String((value as PyInt).int)
}
