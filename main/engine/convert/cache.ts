import fs from 'node:fs'
import path from 'node:path'
import { sha256File } from '../../model-formats/hash'
import { writeFileAtomicSync } from '../../platform/atomic-write'

/**
 * The conversion cache: one folder per (source content, converter version, precision), written atomically
 * (built in a temp folder, then renamed). Source identity is the SHA-256 of the weight files; hashing a
 * multi-GB file is slow, so hashes are remembered per path + size + mtime.
 */

/** Bump when graphs or their layout change: old entries are then ignored (and pruned). */
export const CONVERTER_VERSION = 4

export type Precision = 'fp16' | 'fp32'

interface HashRecord {
  size: number
  mtimeMs: number
  sha256: string
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T
  } catch {
    return undefined
  }
}

/** Writes JSON atomically (temp file + rename) so readers never see half a file. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomicSync(file, JSON.stringify(value, null, 2), { mkdir: true })
}

export interface HashProgress {
  signal?: AbortSignal
  onProgress?: (bytes: number, total: number) => void
}

/** SHA-256 of a file, from the index when path, size and mtime are unchanged. */
export async function cachedSha256(
  cacheRoot: string,
  file: string,
  opts: HashProgress = {},
): Promise<string> {
  const abs = path.resolve(file)
  const st = fs.statSync(abs)
  const indexFile = path.join(cacheRoot, 'hashes.json')
  const index = readJson<Record<string, HashRecord>>(indexFile) ?? {}
  const hit = index[abs]
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) {
    opts.onProgress?.(st.size, st.size)
    return hit.sha256
  }
  const sha256 = await sha256File(abs, opts)
  const fresh = readJson<Record<string, HashRecord>>(indexFile) ?? {}
  fresh[abs] = { size: st.size, mtimeMs: st.mtimeMs, sha256 }
  writeJsonAtomic(indexFile, fresh)
  return sha256
}

/** Whether the index already knows this file's hash (then hashing costs nothing). */
export function hasCachedSha256(cacheRoot: string, file: string): boolean {
  const abs = path.resolve(file)
  const hit = readJson<Record<string, HashRecord>>(path.join(cacheRoot, 'hashes.json'))?.[abs]
  if (!hit) return false
  const st = fs.statSync(abs)
  return hit.size === st.size && hit.mtimeMs === st.mtimeMs
}

export function entryName(sourceKey: string, precision: Precision): string {
  return `v${CONVERTER_VERSION}-${sourceKey.slice(0, 24)}-${precision}`
}

/** A fresh temp folder beside the final one (same filesystem, so the final rename is atomic). */
export function tempDirFor(finalDir: string): string {
  fs.mkdirSync(path.dirname(finalDir), { recursive: true })
  return fs.mkdtempSync(path.join(path.dirname(finalDir), `.tmp-${path.basename(finalDir)}-`))
}

/** Moves a finished temp folder into place; if another process won the race, keeps theirs. */
export function commitDir(tmp: string, finalDir: string): void {
  try {
    fs.renameSync(tmp, finalDir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if ((code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EPERM') && fs.existsSync(finalDir)) {
      fs.rmSync(tmp, { recursive: true, force: true })
      return
    }
    throw err
  }
}

/** Removes entries of older converter versions and stale temp folders (older than a day). */
export function pruneCache(cacheRoot: string): string[] {
  const removed: string[] = []
  if (!fs.existsSync(cacheRoot)) return removed
  for (const name of fs.readdirSync(cacheRoot)) {
    const full = path.join(cacheRoot, name)
    const m = /^v(\d+)-/.exec(name)
    const staleTmp = name.startsWith('.tmp-') && Date.now() - fs.statSync(full).mtimeMs > 24 * 3600 * 1000
    if ((m && Number(m[1]) !== CONVERTER_VERSION) || staleTmp) {
      fs.rmSync(full, { recursive: true, force: true })
      removed.push(full)
    }
  }
  return removed
}

export interface CacheEntryInfo {
  dir: string
  sourceKey: string
  sourcePath?: string
  precision?: string
}

/** Converted entries (current converter version), with the source each came from. */
export function listCacheEntries(cacheRoot: string): CacheEntryInfo[] {
  if (!fs.existsSync(cacheRoot)) return []
  const out: CacheEntryInfo[] = []
  for (const name of fs.readdirSync(cacheRoot)) {
    const m = new RegExp(`^v${CONVERTER_VERSION}-([0-9a-f]+)-(fp16|fp32)$`).exec(name)
    if (!m) continue
    const dir = path.join(cacheRoot, name)
    const manifest = readJson<{ source?: { path?: string } }>(path.join(dir, 'manifest.json'))
    out.push({ dir, sourceKey: m[1] as string, sourcePath: manifest?.source?.path, precision: m[2] })
  }
  return out
}

/**
 * Removes the converted entries of a source (by SHA-256 or by its path). Call it when a model is deleted:
 * entries hard-link the checkpoint, so its disk space is only freed once they are gone too.
 */
export function removeCacheEntriesFor(
  cacheRoot: string,
  source: { sha256?: string; path?: string },
): string[] {
  const removed: string[] = []
  const abs = source.path ? path.resolve(source.path) : undefined
  for (const e of listCacheEntries(cacheRoot)) {
    const bySha = source.sha256 !== undefined && source.sha256.startsWith(e.sourceKey)
    const byPath = abs !== undefined && e.sourcePath === abs
    if (bySha || byPath) {
      fs.rmSync(e.dir, { recursive: true, force: true })
      removed.push(e.dir)
    }
  }
  return removed
}
