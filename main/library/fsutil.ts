import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { readTextCapped } from '../platform/read-capped'

/**
 * Write a file so that readers see the old or the new content, never a torn one (temp + rename). `fsync`
 * (default on) also makes it survive a power cut; sidecars skip it (a lost one is rebuilt by a rescan).
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  opts: { fsync?: boolean } = {},
): Promise<void> {
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`,
  )
  const fh = await fs.promises.open(tmp, 'w')
  try {
    await fh.writeFile(data)
    if (opts.fsync !== false) await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await renameRetry(tmp, file)
  } catch (err) {
    await fs.promises.rm(tmp, { force: true })
    throw err
  }
}

/** rename(), retried briefly on Windows' transient EPERM/EBUSY (a scanner or viewer holding the file). */
export async function renameRetry(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.promises.rename(from, to)
      return
    } catch (err) {
      const code = errCode(err)
      if (
        attempt < 5 &&
        (code === 'EPERM' || code === 'EBUSY' || code === 'EACCES') &&
        process.platform === 'win32'
      ) {
        await new Promise((r) => setTimeout(r, 50 * (attempt + 1)))
        continue
      }
      throw err
    }
  }
}

/** Move a file or folder; across devices (EXDEV) copy then remove. */
export async function moveAcross(from: string, to: string): Promise<void> {
  try {
    await renameRetry(from, to)
  } catch (err) {
    if (errCode(err) !== 'EXDEV') throw err
    await fs.promises.cp(from, to, {
      recursive: true,
      errorOnExist: true,
      force: false,
      preserveTimestamps: true,
    })
    await fs.promises.rm(from, { recursive: true, force: true })
  }
}

export function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.promises.lstat(p)
    return true
  } catch {
    return false
  }
}

/**
 * Parse a JSON file. With `maxBytes`, the size is checked on the open file before anything is read (a
 * 300 MB sidecar costs nothing), and only regular files are read.
 */
export async function readJsonFile(file: string, maxBytes?: number): Promise<unknown> {
  const text =
    maxBytes === undefined ? await fs.promises.readFile(file, 'utf8') : await readTextCapped(file, maxBytes)
  return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as unknown
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null
}

export function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}

export function strArray(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.trim().length > 0) : []
}

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/i

/** A file stem safe on Windows, macOS and Linux: no separators, reserved characters or trailing dots. */
export function sanitizeName(name: string): string {
  let s = name
    .normalize('NFC')
    .replace(/[<>:"/\\|?*]/g, '_')
    .split('')
    .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
    .join('')
    .trim()
    .replace(/[. ]+$/, '')
    .replace(/^\.+/, '')
  if (Buffer.byteLength(s, 'utf8') > 180) {
    while (Buffer.byteLength(s, 'utf8') > 180) s = s.slice(0, -1)
    s = s.trim()
  }
  if (WINDOWS_RESERVED.test(s)) s = `${s}_`
  return s
}
