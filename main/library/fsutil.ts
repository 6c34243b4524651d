import fs from 'node:fs'
import { renameRetry } from '../platform/atomic-write'
import { readTextCapped } from '../platform/read-capped'

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
