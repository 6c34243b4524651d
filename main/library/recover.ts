import fs from 'node:fs'
import path from 'node:path'
import { renameRetry } from '../platform/atomic-write'

/**
 * Crash leftovers (issue 18, attack 13). A kill -9 can stop the library between two renames of a model and
 * its sidecars, or inside writeFileAtomic. Renames are journaled (`<home>/rename-journal.json`) and rolled
 * back at start-up; stray `<file>.renaming-<pid>` and `.<file>.<pid>.<hex>.tmp` files found by a scan are put
 * back (or, when they are only an unfinished copy, removed), so nothing is lost and nothing piles up.
 */

export const RENAME_JOURNAL = 'rename-journal.json'

const RENAMING = /^(.+)\.renaming-(\d+)$/
const TMP = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/

/** A leftover file name: what it stands for and which process left it. */
export function leftoverOf(name: string): { kind: 'renaming' | 'tmp'; target: string; pid: number } | null {
  let m = RENAMING.exec(name)
  if (m) return { kind: 'renaming', target: m[1] as string, pid: Number(m[2]) }
  m = TMP.exec(name)
  if (m) return { kind: 'tmp', target: m[1] as string, pid: Number(m[2]) }
  return null
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.promises.lstat(p).then(
    () => true,
    () => false,
  )
}

export interface RenameJournal {
  pid: number
  moves: Array<[string, string]>
}

export async function writeJournal(home: string, moves: Array<[string, string]>): Promise<void> {
  await fs.promises.mkdir(home, { recursive: true })
  const file = path.join(home, RENAME_JOURNAL)
  const tmp = `${file}.${process.pid}.partial`
  await fs.promises.writeFile(tmp, JSON.stringify({ pid: process.pid, moves } satisfies RenameJournal))
  await renameRetry(tmp, file)
}

export async function clearJournal(home: string): Promise<void> {
  await fs.promises.rm(path.join(home, RENAME_JOURNAL), { force: true })
}

/**
 * Roll back a rename that a crash interrupted: every file goes back to its old name (the model and its
 * sidecars stay together). Returns the files put back.
 */
export async function recoverRenames(home: string): Promise<string[]> {
  const file = path.join(home, RENAME_JOURNAL)
  let j: RenameJournal
  try {
    j = JSON.parse(await fs.promises.readFile(file, 'utf8')) as RenameJournal
  } catch {
    await fs.promises.rm(`${file}.${process.pid}.partial`, { force: true })
    return []
  }
  if (j.pid !== process.pid && alive(j.pid)) return [] // another process is renaming right now
  const restored: string[] = []
  for (const [from, to] of j.moves ?? []) {
    if (typeof from !== 'string' || typeof to !== 'string') continue
    if (await exists(from)) continue
    const tmp = `${from}.renaming-${j.pid}`
    if (await exists(tmp)) await renameRetry(tmp, from)
    else if (await exists(to)) await renameRetry(to, from)
    else continue
    restored.push(from)
  }
  await fs.promises.rm(file, { force: true })
  return restored
}

/**
 * Put one leftover back: `x.renaming-<pid>` becomes `x` again when `x` is missing; a `.tmp` of
 * writeFileAtomic becomes its target when the target is missing and the copy is complete JSON (sidecars,
 * indexes), else it is removed. Leftovers of a live process are left alone. Returns what was done.
 */
export async function recoverLeftover(dir: string, name: string): Promise<string | null> {
  const l = leftoverOf(name)
  if (!l || alive(l.pid)) return null
  const p = path.join(dir, name)
  const target = path.join(dir, l.target)
  if (l.kind === 'renaming') {
    if (await exists(target)) return null // keep both: never overwrite, the doctor shows it
    await renameRetry(p, target)
    return `${p} -> ${l.target}`
  }
  if (!(await exists(target))) {
    try {
      const st = await fs.promises.stat(p)
      if (st.size <= 64 * 1024 * 1024) {
        JSON.parse(await fs.promises.readFile(p, 'utf8'))
        await renameRetry(p, target)
        return `${p} -> ${l.target}`
      }
    } catch {
      // not a complete JSON copy: an unfinished write, removed below
    }
  }
  await fs.promises.rm(p, { force: true })
  return `${p} removed`
}
