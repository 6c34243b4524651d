import fs from 'node:fs'
import path from 'node:path'
import { typeDirs } from './layout'
import { leftoverOf } from './recover'
import { FOREIGN_SUFFIXES, isModelFileName, stemOf } from './sidecars'
import type { LibraryRoot, ModelType } from './types'

/** A model file (or diffusers folder) found on disk, with what a rescan needs to decide "unchanged". */
export interface Candidate {
  path: string
  root: string
  isDir: boolean
  typeHint: ModelType | null
  size: number
  mtimeMs: number
  /** Names in the model's folder (to find sidecars without stat-ing each possible name). */
  dirNames: ReadonlySet<string>
  /** name:size:mtime of each foreign sidecar present. */
  stamp: string
}

const MAX_DEPTH = 12

/** Folders Atelier itself writes into or that never hold models. */
const SKIP_DIRS = new Set(['node_modules', '__pycache__'])

async function folderStats(dir: string, depth = 0): Promise<{ size: number; mtimeMs: number }> {
  let size = 0
  let mtimeMs = 0
  const entries = await fs.promises.readdir(dir, { withFileTypes: true })
  for (const e of entries) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) {
      if (depth < 4) {
        const s = await folderStats(p, depth + 1)
        size += s.size
        mtimeMs = Math.max(mtimeMs, s.mtimeMs)
      }
    } else {
      const st = await fs.promises.stat(p).catch(() => null)
      if (st) {
        size += st.size
        mtimeMs = Math.max(mtimeMs, st.mtimeMs)
      }
    }
  }
  return { size, mtimeMs }
}

async function sidecarStamp(stem: string, dirNames: ReadonlySet<string>): Promise<string> {
  const base = path.basename(stem)
  const parts: string[] = []
  for (const s of FOREIGN_SUFFIXES) {
    if (!dirNames.has(base + s)) continue
    const st = await fs.promises.stat(stem + s).catch(() => null)
    if (st) parts.push(`${s}:${st.size}:${st.mtimeMs}`)
  }
  return parts.join('|')
}

export async function foreignStamp(modelPath: string, isDir: boolean): Promise<string> {
  const names = new Set(await fs.promises.readdir(path.dirname(modelPath)).catch(() => [] as string[]))
  return sidecarStamp(stemOf(modelPath, isDir), names)
}

/**
 * Walk every root's type folders. Files are stat-ed, never read; symlinked folders are followed once
 * (by real path), so overlapping roots and links do not list a model twice.
 */
export async function discover(
  roots: LibraryRoot[],
  opts: { signal?: AbortSignal; onFound?: (n: number) => void } = {},
): Promise<{ candidates: Candidate[]; warnings: string[]; leftovers: Array<[string, string]> }> {
  const candidates: Candidate[] = []
  const warnings: string[] = []
  /** [folder, name] of crash leftovers (`x.renaming-<pid>`, `.x.<pid>.<hex>.tmp`), for recover.ts. */
  const leftovers: Array<[string, string]> = []
  const seenDirs = new Set<string>()
  const seenFiles = new Set<string>()

  const walk = async (
    root: string,
    dir: string,
    typeHint: ModelType | null,
    depth: number,
  ): Promise<void> => {
    if (opts.signal?.aborted) return
    let real: string
    try {
      real = await fs.promises.realpath(dir)
    } catch (err) {
      warnings.push(`${dir}: ${err instanceof Error ? err.message : String(err)}`)
      return
    }
    if (seenDirs.has(real)) return
    seenDirs.add(real)
    let entries: fs.Dirent[]
    try {
      entries = await fs.promises.readdir(dir, { withFileTypes: true })
    } catch (err) {
      warnings.push(`${dir}: cannot list the folder (${err instanceof Error ? err.message : String(err)})`)
      return
    }
    const names = new Set(entries.map((e) => e.name))
    for (const e of entries) {
      if (leftoverOf(e.name)) {
        leftovers.push([dir, e.name])
        continue
      }
      if (e.name.startsWith('.')) continue
      const p = path.join(dir, e.name)
      let isDirectory = e.isDirectory()
      let isFile = e.isFile()
      if (e.isSymbolicLink()) {
        const st = await fs.promises.stat(p).catch(() => null)
        if (!st) {
          warnings.push(`${p}: broken link, skipped`)
          continue
        }
        isDirectory = st.isDirectory()
        isFile = st.isFile()
      }
      if (isDirectory) {
        if (SKIP_DIRS.has(e.name)) continue
        const isDiffusers = await fs.promises
          .stat(path.join(p, 'model_index.json'))
          .then((s) => s.isFile())
          .catch(() => false)
        if (isDiffusers) {
          const realModel = await fs.promises.realpath(p)
          if (seenFiles.has(realModel)) continue
          seenFiles.add(realModel)
          const { size, mtimeMs } = await folderStats(p)
          candidates.push({
            path: p,
            root,
            isDir: true,
            typeHint: 'checkpoint',
            size,
            mtimeMs,
            dirNames: names,
            stamp: await sidecarStamp(p, names),
          })
          opts.onFound?.(candidates.length)
        } else if (depth < MAX_DEPTH) {
          await walk(root, p, typeHint, depth + 1)
        }
        continue
      }
      if (!isFile || !isModelFileName(e.name)) continue
      let st: fs.Stats
      try {
        st = await fs.promises.stat(p)
      } catch {
        continue
      }
      const key = e.isSymbolicLink() ? await fs.promises.realpath(p) : `${real}${path.sep}${e.name}`
      if (seenFiles.has(key)) continue
      seenFiles.add(key)
      candidates.push({
        path: p,
        root,
        isDir: false,
        typeHint,
        size: st.size,
        mtimeMs: st.mtimeMs,
        dirNames: names,
        stamp: await sidecarStamp(stemOf(p), names),
      })
      opts.onFound?.(candidates.length)
    }
  }

  for (const root of roots) {
    const dirs = await typeDirs(root.path, root.layout)
    if (dirs.length === 0) warnings.push(`${root.path}: no model folders found (layout ${root.layout})`)
    for (const d of dirs) await walk(root.path, d.dir, d.type, 0)
  }
  return { candidates, warnings, leftovers }
}
