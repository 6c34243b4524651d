import fs from 'node:fs'
import path from 'node:path'
import { readHeader } from '../model-formats/safetensors'
import type { HashFileFn } from './hashing'
import { abortError } from '../model-formats/hash'
import type { IndexEntry } from './store'
import type { DoctorIssue, DoctorReport, ProbeFn } from './types'

export interface DoctorOptions {
  /** Re-hash every file and compare with the recorded SHA-256 (slow: reads every byte). */
  rehash?: boolean
  signal?: AbortSignal
  onProgress?: (done: number, total: number, file: string) => void
}

function isSafetensors(p: string): boolean {
  const ext = path.extname(p).toLowerCase()
  return ext === '.safetensors' || ext === '.sft'
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Find what is wrong with the library without changing it:
 * missing (indexed, not on disk), corrupt (header invalid / truncated / probe fails), changed (size or mtime
 * differ from the index: rescan), hash-mismatch (SHA-256 differs from Civitai's/HF's, or from the recorded
 * one when re-hashing) and duplicate (same SHA-256 at several paths).
 */
export async function runDoctor(
  entries: IndexEntry[],
  deps: { probe: ProbeFn; hashFile: HashFileFn },
  opts: DoctorOptions = {},
): Promise<DoctorReport> {
  const issues: DoctorIssue[] = []
  let done = 0
  for (const { record: r } of entries) {
    if (opts.signal?.aborted) throw abortError(opts.signal)
    opts.onProgress?.(done, entries.length, r.path)
    const base = { id: r.id, name: r.name, path: r.path }
    let st: fs.Stats | null = null
    try {
      st = await fs.promises.stat(r.path)
    } catch {
      issues.push({
        ...base,
        kind: 'missing',
        message: `${r.fileName} is in the library but not on disk (${r.path})`,
      })
      done++
      continue
    }
    let corrupt: string | null = null
    if (!st.isDirectory() && isSafetensors(r.path)) {
      try {
        await readHeader(r.path)
      } catch (err) {
        corrupt = message(err)
      }
    }
    if (!corrupt) {
      try {
        await deps.probe(r.path)
      } catch (err) {
        corrupt = message(err)
      }
    }
    if (corrupt) issues.push({ ...base, kind: 'corrupt', message: corrupt })

    const changed = !st.isDirectory() && (st.size !== r.size || st.mtimeMs !== r.mtimeMs)
    if (changed && !opts.rehash) {
      issues.push({
        ...base,
        kind: 'changed',
        message:
          `${r.fileName} changed on disk since it was hashed (size ${r.size} → ${st.size}); ` +
          'run a scan to re-hash it',
      })
    }

    let sha = r.sha256
    if (opts.rehash && !st.isDirectory()) {
      sha = (await deps.hashFile(r.path, { signal: opts.signal })).sha256
      if (r.sha256 && sha !== r.sha256 && !corrupt) {
        issues.push({
          ...base,
          kind: 'hash-mismatch',
          message: `${r.fileName}: its content changed since it was hashed (SHA-256 ${sha.slice(0, 12)}…, recorded ${r.sha256.slice(0, 12)}…)`,
        })
      }
    }
    if (sha && r.expectedSha256 && sha !== r.expectedSha256) {
      const where = r.source === 'huggingface' ? 'Hugging Face' : 'Civitai'
      issues.push({
        ...base,
        kind: 'hash-mismatch',
        message:
          `${r.fileName}: SHA-256 ${sha.slice(0, 12)}… does not match the ${where} hash ` +
          `${r.expectedSha256.slice(0, 12)}… (damaged or a different file; re-download it)`,
      })
    }
    done++
  }

  const bySha = new Map<string, IndexEntry[]>()
  for (const e of entries) {
    if (!e.record.sha256) continue
    const list = bySha.get(e.record.sha256) ?? []
    list.push(e)
    bySha.set(e.record.sha256, list)
  }
  for (const [sha, list] of bySha) {
    if (list.length < 2) continue
    for (const e of list) {
      const others = list.filter((o) => o !== e)
      issues.push({
        id: e.record.id,
        name: e.record.name,
        path: e.record.path,
        kind: 'duplicate',
        message: `${e.record.fileName} is identical (SHA-256 ${sha.slice(0, 12)}…) to ${others.map((o) => o.record.path).join(', ')}`,
        others: others.map((o) => o.record.id),
      })
    }
  }
  opts.onProgress?.(done, entries.length, '')
  return { ok: issues.length === 0, checked: entries.length, issues }
}
