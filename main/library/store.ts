import fs from 'node:fs'
import path from 'node:path'
import { writeFileAtomic } from '../platform/atomic-write'
import { errCode, isObject, readJsonFile } from './fsutil'
import type { LibraryRoot, ModelRecord, ProbeFamily, RootLayout } from './types'

/**
 * `<home>/library.json` is a cache: every fact in it is also in a sidecar beside the model, so deleting it
 * costs one rescan (no hashing when the sidecars still match the files). The roots the user added live in
 * `<home>/library-roots.json`, which is configuration and is not rebuilt.
 */
export interface IndexEntry {
  record: ModelRecord
  /** The family the header probe gave (record.family may come from Civitai when the probe could not tell). */
  probeFamily: ProbeFamily | null
  /** Fingerprint (name:size:mtime) of the foreign sidecars; a change makes a rescan re-read them. */
  stamp: string
  /** A1111 activation text (not a record field: trained words are derived from it when Civitai has none). */
  activationText: string | null
}

interface IndexFile {
  atelier: 'library-index'
  version: 1
  savedAt: string
  entries: IndexEntry[]
}

const INDEX_VERSION = 1

export function indexPath(home: string): string {
  return path.join(home, 'library.json')
}

export function rootsPath(home: string): string {
  return path.join(home, 'library-roots.json')
}

export interface LoadedIndex {
  entries: IndexEntry[]
  /** Set when the file existed but was unreadable; it was moved aside and the library starts empty. */
  warning: string | null
}

function validEntry(e: unknown): e is IndexEntry {
  if (!isObject(e) || !isObject(e.record) || typeof e.stamp !== 'string') return false
  const r = e.record
  return (
    typeof r.id === 'string' &&
    typeof r.path === 'string' &&
    typeof r.name === 'string' &&
    typeof r.type === 'string' &&
    typeof r.size === 'number' &&
    typeof r.mtimeMs === 'number' &&
    Array.isArray(r.trainedWords)
  )
}

export async function loadIndex(home: string): Promise<LoadedIndex> {
  const file = indexPath(home)
  let raw: unknown
  try {
    raw = await readJsonFile(file)
  } catch (err) {
    if (errCode(err) === 'ENOENT') return { entries: [], warning: null }
    return { entries: [], warning: await setAside(file, err) }
  }
  if (
    !isObject(raw) ||
    raw.atelier !== 'library-index' ||
    raw.version !== INDEX_VERSION ||
    !Array.isArray(raw.entries)
  ) {
    // Another version or shape: rebuild from the sidecars rather than guess.
    return { entries: [], warning: null }
  }
  return { entries: raw.entries.filter(validEntry), warning: null }
}

async function setAside(file: string, err: unknown): Promise<string> {
  const aside = `${file}.corrupt-${Date.now()}`
  try {
    await fs.promises.rename(file, aside)
  } catch {
    // best effort
  }
  const why = err instanceof Error ? err.message : String(err)
  return `${file} could not be read (${why}); it was moved to ${aside} and the library will be rebuilt by a scan`
}

export async function saveIndex(home: string, entries: IndexEntry[]): Promise<void> {
  await fs.promises.mkdir(home, { recursive: true })
  const data: IndexFile = {
    atelier: 'library-index',
    version: INDEX_VERSION,
    savedAt: new Date().toISOString(),
    entries: [...entries].sort((a, b) =>
      a.record.path < b.record.path ? -1 : a.record.path > b.record.path ? 1 : 0,
    ),
  }
  await writeFileAtomic(indexPath(home), JSON.stringify(data))
}

const LAYOUTS: readonly RootLayout[] = ['atelier', 'a1111', 'comfyui', 'folder']

export async function loadRoots(home: string): Promise<LibraryRoot[]> {
  let raw: unknown
  try {
    raw = await readJsonFile(rootsPath(home))
  } catch {
    return []
  }
  const list = isObject(raw) && Array.isArray(raw.roots) ? raw.roots : []
  const out: LibraryRoot[] = []
  for (const r of list) {
    if (!isObject(r) || typeof r.path !== 'string') continue
    const layout = LAYOUTS.find((l) => l === r.layout) ?? 'folder'
    out.push({
      path: r.path,
      layout,
      addedAt: typeof r.addedAt === 'string' ? r.addedAt : new Date().toISOString(),
    })
  }
  return out
}

export async function saveRoots(home: string, roots: LibraryRoot[]): Promise<void> {
  await fs.promises.mkdir(home, { recursive: true })
  await writeFileAtomic(rootsPath(home), `${JSON.stringify({ roots }, null, 2)}\n`)
}
