import { inflateSync } from 'node:zlib'
import { crc32 } from '../../model-formats/crc32'

export { crc32 }

/**
 * Minimal PNG chunk reader/writer for text metadata. sharp cannot write arbitrary tEXt/iTXt chunks, so PNGs are
 * encoded by sharp and the text chunks are spliced in right after IHDR; the IDAT bytes are never touched.
 */

export const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

export class PngFormatError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'PngFormatError'
  }
}

export interface PngChunk {
  type: string
  data: Uint8Array
  /** Byte offset of the chunk's length field in the file. */
  offset: number
}

export interface PngTextEntry {
  keyword: string
  text: string
  /** Chunk it came from. */
  chunk: 'tEXt' | 'zTXt' | 'iTXt'
}

function isPng(bytes: Uint8Array): boolean {
  if (bytes.length < PNG_SIGNATURE.length) return false
  return PNG_SIGNATURE.every((b, i) => bytes[i] === b)
}

/** Split a PNG into its chunks. Throws PngFormatError on a bad signature or a truncated chunk. */
export function readChunks(bytes: Uint8Array, name = 'image'): PngChunk[] {
  if (!isPng(bytes)) throw new PngFormatError(`${name} is not a PNG file (bad signature)`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const chunks: PngChunk[] = []
  let pos = PNG_SIGNATURE.length
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) throw new PngFormatError(`${name}: truncated PNG chunk at byte ${pos}`)
    const len = view.getUint32(pos)
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8))
    if (pos + 12 + len > bytes.length) {
      throw new PngFormatError(`${name}: PNG chunk ${type} at byte ${pos} runs past the end of the file`)
    }
    chunks.push({ type, data: bytes.subarray(pos + 8, pos + 8 + len), offset: pos })
    pos += 12 + len
    if (type === 'IEND') break
  }
  if (chunks[0]?.type !== 'IHDR') throw new PngFormatError(`${name}: PNG does not start with IHDR`)
  return chunks
}

export function encodeChunk(type: string, data: Uint8Array): Uint8Array {
  if (!/^[A-Za-z]{4}$/.test(type)) throw new RangeError(`invalid PNG chunk type "${type}"`)
  const out = new Uint8Array(12 + data.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, data.length)
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i)
  out.set(data, 8)
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)))
  return out
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false
  return true
}

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

function checkKeyword(keyword: string): void {
  if (keyword.length < 1 || keyword.length > 79 || !isLatin1(keyword) || keyword.includes('\0')) {
    throw new RangeError(`invalid PNG text keyword "${keyword}" (1-79 Latin-1 characters)`)
  }
}

/**
 * A text chunk the way Pillow's PngInfo.add_text (what A1111 uses) writes it: tEXt when the text is Latin-1,
 * otherwise an uncompressed iTXt with empty language tag and translated keyword.
 */
export function textChunk(keyword: string, text: string): Uint8Array {
  checkKeyword(keyword)
  const kw = latin1Bytes(keyword)
  if (isLatin1(text)) {
    const body = latin1Bytes(text)
    const data = new Uint8Array(kw.length + 1 + body.length)
    data.set(kw, 0)
    data.set(body, kw.length + 1)
    return encodeChunk('tEXt', data)
  }
  const body = new TextEncoder().encode(text)
  // keyword \0 compression-flag compression-method language \0 translated-keyword \0 text
  const data = new Uint8Array(kw.length + 5 + body.length)
  data.set(kw, 0)
  data.set(body, kw.length + 5)
  return encodeChunk('iTXt', data)
}

function decodeLatin1(b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192))
  return s
}

/** Most text one compressed chunk may inflate to (zTXt/iTXt); a 1 MB chunk could otherwise become 1 GiB. */
export const MAX_PNG_TEXT_CHUNK = 4 * 1024 * 1024
/** Most text read from one PNG, all chunks together; chunks past it are skipped. */
export const MAX_PNG_TEXT_TOTAL = 8 * 1024 * 1024

function decodeTextChunk(chunk: PngChunk, budget = MAX_PNG_TEXT_CHUNK): PngTextEntry | undefined {
  const d = chunk.data
  const inflate = (raw: Uint8Array): Buffer =>
    inflateSync(raw, { maxOutputLength: Math.max(1, Math.min(budget, MAX_PNG_TEXT_CHUNK)) })
  const nul = d.indexOf(0)
  if (nul < 1) return undefined
  const keyword = decodeLatin1(d.subarray(0, nul))
  try {
    if (chunk.type !== 'zTXt' && d.length - nul > budget) return undefined
    if (chunk.type === 'tEXt') return { keyword, text: decodeLatin1(d.subarray(nul + 1)), chunk: 'tEXt' }
    if (chunk.type === 'zTXt') {
      return { keyword, text: decodeLatin1(inflate(d.subarray(nul + 2))), chunk: 'zTXt' }
    }
    if (chunk.type === 'iTXt') {
      const compressed = d[nul + 1] === 1
      const langEnd = d.indexOf(0, nul + 3)
      if (langEnd < 0) return undefined
      const transEnd = d.indexOf(0, langEnd + 1)
      if (transEnd < 0) return undefined
      const raw = d.subarray(transEnd + 1)
      const body = compressed ? inflate(raw) : raw
      return { keyword, text: new TextDecoder('utf-8').decode(body), chunk: 'iTXt' }
    }
  } catch {
    // corrupt compressed text, or text past the size limit: skip the chunk, the image itself is fine
    return undefined
  }
  return undefined
}

/**
 * Every tEXt / zTXt / iTXt entry of a PNG, in file order. Compressed text is inflated with a cap
 * (MAX_PNG_TEXT_CHUNK) and all text together is capped (MAX_PNG_TEXT_TOTAL): entries past the caps are
 * skipped, so an untrusted PNG costs milliseconds and a few MB.
 */
export function readPngText(bytes: Uint8Array, name = 'image'): PngTextEntry[] {
  const out: PngTextEntry[] = []
  let budget = MAX_PNG_TEXT_TOTAL
  for (const c of readChunks(bytes, name)) {
    if (budget <= 0) break
    if (c.type === 'tEXt' || c.type === 'zTXt' || c.type === 'iTXt') {
      const e = decodeTextChunk(c, budget)
      if (e) {
        out.push(e)
        budget -= e.text.length
      }
    }
  }
  return out
}

/**
 * Insert text chunks right after IHDR (existing text chunks with the same keywords are removed). Every other byte of
 * the PNG, IDAT included, is copied unchanged.
 */
export function insertPngText(
  png: Uint8Array,
  entries: readonly { keyword: string; text: string }[],
  name = 'image',
): Buffer {
  const chunks = readChunks(png, name)
  const keywords = new Set(entries.map((e) => e.keyword))
  const parts: Uint8Array[] = [PNG_SIGNATURE]
  for (const c of chunks) {
    const raw = png.subarray(c.offset, c.offset + 12 + c.data.length)
    if (c.type === 'tEXt' || c.type === 'zTXt' || c.type === 'iTXt') {
      const nul = c.data.subarray(0, 80).indexOf(0) // keywords are 1-79 bytes
      if (nul > 0 && keywords.has(decodeLatin1(c.data.subarray(0, nul)))) continue
    }
    parts.push(raw)
    if (c.type === 'IHDR') for (const e of entries) parts.push(textChunk(e.keyword, e.text))
  }
  return Buffer.concat(parts)
}
