/**
 * File names for downloads: parse Content-Disposition (RFC 6266 / RFC 5987 `filename*`), fall back to the
 * signed-URL query (`response-content-disposition`, `b2ContentDisposition`) and the URL path, then sanitise so
 * a hostile server cannot escape the destination folder or produce an unusable name on any OS.
 */
import path from 'node:path'

/** Parameters of a Content-Disposition value, keys lower-cased; quoted strings unescaped. */
function dispositionParams(value: string): Map<string, string> {
  const params = new Map<string, string>()
  let i = value.indexOf(';')
  if (i < 0) return params
  while (i < value.length) {
    // skip ';' and whitespace
    while (i < value.length && (value[i] === ';' || value[i] === ' ' || value[i] === '\t')) i++
    const eq = value.indexOf('=', i)
    if (eq < 0) break
    const key = value.slice(i, eq).trim().toLowerCase()
    i = eq + 1
    while (value[i] === ' ') i++
    let v = ''
    if (value[i] === '"') {
      i++
      while (i < value.length && value[i] !== '"') {
        if (value[i] === '\\' && i + 1 < value.length) i++
        v += value[i]
        i++
      }
      i++ // closing quote
      const semi = value.indexOf(';', i)
      i = semi < 0 ? value.length : semi
    } else {
      const semi = value.indexOf(';', i)
      const end = semi < 0 ? value.length : semi
      v = value.slice(i, end).trim()
      i = end
    }
    if (key && !params.has(key)) params.set(key, v)
  }
  return params
}

/** RFC 5987 ext-value: charset'lang'pct-encoded. */
function decodeExtValue(v: string): string | undefined {
  const m = /^([^']*)'[^']*'(.*)$/.exec(v)
  if (!m) return undefined
  const charset = (m[1] ?? '').toLowerCase()
  const encoded = m[2] ?? ''
  try {
    if (charset === 'utf-8' || charset === '') return decodeURIComponent(encoded)
    if (charset === 'iso-8859-1') {
      return encoded.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    }
  } catch {
    return undefined
  }
  return undefined
}

/** The raw (unsanitised) file name of a Content-Disposition header; `filename*` wins over `filename`. */
export function parseContentDisposition(value: string | undefined): string | undefined {
  if (!value) return undefined
  const params = dispositionParams(value)
  const ext = params.get('filename*')
  if (ext !== undefined) {
    const decoded = decodeExtValue(ext)
    if (decoded) return decoded
  }
  const plain = params.get('filename')
  if (plain === undefined || plain === '') return undefined
  // Some servers percent-encode plain filename= values; decode only when it is clearly that.
  if (/%[0-9a-f]{2}/i.test(plain) && !/[^\x20-\x7e]/.test(plain)) {
    try {
      return decodeURIComponent(plain)
    } catch {
      return plain
    }
  }
  return plain
}

/** Name from a (signed) URL: disposition query params first, then the last path segment. */
export function nameFromUrl(url: string): string | undefined {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return undefined
  }
  for (const key of ['response-content-disposition', 'b2ContentDisposition']) {
    const v = u.searchParams.get(key)
    const name = v ? parseContentDisposition(v) : undefined
    if (name) return name
  }
  const last = u.pathname.split('/').filter(Boolean).pop()
  if (!last) return undefined
  try {
    return decodeURIComponent(last)
  } catch {
    return last
  }
}

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i
export const MAX_NAME_BYTES = 200

/**
 * A safe single path component: no separators, no `..`, no control or Windows-invalid characters, not a
 * reserved device name, no leading dot (hidden) or trailing dot/space, at most 200 UTF-8 bytes (extension kept).
 * Returns undefined when nothing usable is left.
 */
export function sanitizeFileName(raw: string): string | undefined {
  let name = raw.normalize('NFC')
  // eslint-disable-next-line no-control-regex
  name = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '')
  name = name.replace(/[/\\]/g, '_').replace(/[<>:"|?*]/g, '_')
  name = name.replace(/\.{2,}/g, '.')
  name = name.replace(/^[\s.]+/, '').replace(/[\s.]+$/, '')
  name = name.replace(/\s+/g, ' ')
  if (!name || /^_+$/.test(name)) return undefined
  if (WINDOWS_RESERVED.test(name)) name = `_${name}`
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    const ext = path.extname(name)
    const keepExt = ext.length > 0 && ext.length <= 16 ? ext : ''
    let stem = keepExt ? name.slice(0, -keepExt.length) : name
    while (Buffer.byteLength(stem + keepExt, 'utf8') > MAX_NAME_BYTES) stem = [...stem].slice(0, -1).join('')
    name = stem.replace(/[\s.]+$/, '') + keepExt
  }
  return name
}

/** `dir/name`, asserting that it stays directly inside `dir` (defence in depth after sanitising). */
export function containedPath(dir: string, name: string): string {
  const root = path.resolve(dir)
  const full = path.resolve(root, name)
  if (path.dirname(full) !== root || path.basename(full) !== name) {
    throw new Error(`Refusing file name "${name}": it would be written outside ${root}.`)
  }
  return full
}

/** First usable name: explicit, Content-Disposition, URL query/path, fallback. */
export function chooseFileName(candidates: (string | undefined)[], fallback = 'download.bin'): string {
  for (const c of candidates) {
    const safe = c ? sanitizeFileName(c) : undefined
    if (safe) return safe
  }
  return fallback
}
