import fs from 'node:fs'
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { autoV3 as autoV3Of } from '../model-formats/hash'
import { appPaths } from '../platform/paths'
import { a1111SdVersion, compatibility } from './compat'
import type { Compatibility } from './compat'
import type { Candidate } from './discover'
import { clearJournal, recoverLeftover, recoverRenames, writeJournal } from './recover'
import { discover, foreignStamp } from './discover'
import { runDoctor } from './doctor'
import type { DoctorOptions } from './doctor'
import { LibraryError } from './errors'
import { Emitter, Mutex } from './events'
import { renameRetry } from '../platform/atomic-write'
import { errCode, exists, moveAcross, sanitizeName } from './fsutil'
import type { HashFileFn } from './hashing'
import { abortError } from '../model-formats/hash'
import { hashFile as defaultHashFile } from './hashing'
import { ATELIER_DIRS, detectLayout } from './layout'
import { identifyModel as probeModel } from '../model-formats/probe/identify'
import { buildRecord, idFromPath, idFromSha } from './record'
import type { RecordInputs } from './record'
import type { AtelierSidecar } from './sidecars'
import {
  A1111_EXT,
  CIVITAI_EXT,
  CM_INFO_EXT,
  findPreview,
  mergeA1111,
  presentSidecars,
  readA1111,
  readAtelierSidecar,
  readCivitaiInfo,
  readCmInfo,
  sidecarFromRecord,
  sidecarMoves,
  stemOf,
  writeAtelierSidecar,
  writeCivitaiInfo,
} from './sidecars'
import type { IndexEntry } from './store'
import { loadIndex, loadRoots, saveIndex, saveRoots } from './store'
import type {
  CivitaiVersionJson,
  DoctorReport,
  HuggingFaceRef,
  LibraryChange,
  LibraryQuery,
  LibraryRoot,
  LookupByHashes,
  ModelRecord,
  ModelSource,
  ModelType,
  ProbeFn,
  ProbeInfo,
  ScanProgress,
  ScanSummary,
} from './types'

export interface LibraryOptions {
  /** Atelier's own model folder (default `appPaths(home).library`). */
  libraryDir?: string
  /** Where `delete(…, {trash: true})` moves files (default `<home>/trash`). */
  trashDir?: string
  probe?: ProbeFn
  hashFile?: HashFileFn
}

export interface ScanOptions {
  signal?: AbortSignal
  onProgress?: (p: ScanProgress) => void
}

export interface AddOptions {
  /** SHA-256 the downloader computed while writing the file (skips hashing). */
  sha256?: string
  autoV3?: string
  source?: ModelSource
  /** The Civitai model-version JSON the file came from (written as `.civitai.info`). */
  civitai?: CivitaiVersionJson | null
  huggingface?: HuggingFaceRef | null
  /** The hash the remote published for the file (HF lfs oid); Civitai's is read from `civitai`. */
  expectedSha256?: string | null
  /** Type to use when the probe cannot tell (and the folder to move the file into). */
  type?: ModelType
  /** File stem to install under (sanitised); default: the file's own. */
  name?: string
  preview?: { data: Uint8Array; ext: string }
  /** Move the file into the library folder even when it is already under a root. */
  move?: boolean
  signal?: AbortSignal
  onProgress?: (bytes: number, total: number) => void
}

export interface MatchOptions {
  signal?: AbortSignal
  /** Also look up models that already have Civitai metadata. */
  all?: boolean
  onProgress?: (done: number, total: number) => void
}

export interface MatchSummary {
  looked: number
  matched: number
  ids: string[]
}

interface LibraryEvents extends Record<string, unknown> {
  changed: LibraryChange
}

const BATCH = 100

function probeFromRecord(r: ModelRecord, probeFamily: IndexEntry['probeFamily']): ProbeInfo {
  return {
    format: r.format,
    type: r.type,
    family: probeFamily,
    variant: r.variant,
    architecture: r.architecture,
    note: r.note,
  }
}

function probeFromSidecar(s: AtelierSidecar): ProbeInfo {
  return {
    format: s.format,
    type: s.type,
    family: s.probeFamily,
    variant: s.variant,
    architecture: s.architecture,
    note: s.note,
  }
}

function matches<T>(value: T, filter: T | T[] | undefined): boolean {
  if (filter === undefined) return true
  return Array.isArray(filter) ? filter.includes(value) : value === filter
}

function isUnder(child: string, parent: string): boolean {
  const rel = path.relative(parent, child)
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)
}

async function dataStartOf(file: string): Promise<number | null> {
  const ext = path.extname(file).toLowerCase()
  if (ext !== '.safetensors' && ext !== '.sft') return null
  const fh = await fs.promises.open(file, 'r')
  try {
    const b = Buffer.alloc(8)
    const { bytesRead } = await fh.read(b, 0, 8, 0)
    return bytesRead === 8 ? 8 + Number(b.readBigUInt64LE(0)) : null
  } finally {
    await fh.close()
  }
}

/**
 * The local model library. Files stay where they are (Atelier's own folder or folders the user added,
 * e.g. an A1111 or ComfyUI install); the index `<home>/library.json` is a cache rebuilt from sidecars.
 */
export class Library {
  readonly home: string
  readonly libraryDir: string
  readonly trashDir: string
  /** Non-fatal problems met while loading or scanning (unreadable folders, read-only sidecars). */
  warnings: string[] = []
  private entries = new Map<string, IndexEntry>()
  private roots: LibraryRoot[] = []
  private readonly probe: ProbeFn
  private readonly hashFile: HashFileFn
  private readonly events = new Emitter<LibraryEvents>()
  private readonly mutex = new Mutex()
  private disposed = false

  private constructor(home: string, opts: LibraryOptions) {
    this.home = path.resolve(home)
    this.libraryDir = path.resolve(opts.libraryDir ?? appPaths(this.home).library)
    this.trashDir = path.resolve(opts.trashDir ?? path.join(this.home, 'trash'))
    this.probe = opts.probe ?? probeModel
    this.hashFile = opts.hashFile ?? defaultHashFile
  }

  static async open(home: string, opts: LibraryOptions = {}): Promise<Library> {
    const lib = new Library(home, opts)
    // A rename that a crash interrupted goes back to the old names before anything reads the folders.
    for (const f of await recoverRenames(lib.home).catch(() => [] as string[]))
      lib.warnings.push(`recovered after a crash: ${f}`)
    // Unfinished atomic writes of the index and roots files (the model folders are swept by scans).
    for (const name of await fs.promises.readdir(lib.home).catch(() => [] as string[])) {
      const done = await recoverLeftover(lib.home, name).catch(() => null)
      if (done) lib.warnings.push(`recovered after a crash: ${done}`)
    }
    const loaded = await loadIndex(lib.home)
    if (loaded.warning) lib.warnings.push(loaded.warning)
    for (const e of loaded.entries) lib.entries.set(e.record.path, e)
    const roots = await loadRoots(lib.home)
    lib.roots = [
      { path: lib.libraryDir, layout: 'atelier', addedAt: new Date(0).toISOString() },
      ...roots.filter((r) => path.resolve(r.path) !== lib.libraryDir),
    ]
    return lib
  }

  dispose(): Promise<void> {
    this.disposed = true
    this.events.clear()
    // Let a running operation finish writing before the caller tears down.
    return this.mutex.run(async () => undefined)
  }

  on(event: 'changed', listener: (e: LibraryChange) => void): () => void {
    return this.events.on(event, listener)
  }

  // -------------------------------------------------------------------------------------------- queries

  list(q: LibraryQuery = {}): ModelRecord[] {
    const text = q.text?.trim().toLowerCase()
    const out: ModelRecord[] = []
    for (const { record: r } of this.entries.values()) {
      if (!matches(r.type, q.type) || !matches(r.source, q.source)) continue
      if (q.family !== undefined && (r.family === null || !matches(r.family, q.family))) continue
      if (text) {
        const hay = [r.name, r.fileName, r.civitai?.modelName ?? '', ...r.trainedWords]
          .join('\n')
          .toLowerCase()
        if (!hay.includes(text)) continue
      }
      out.push(r)
    }
    return out.sort(
      (a, b) =>
        a.type.localeCompare(b.type) || a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }),
    )
  }

  /** By id, then by exact name, then by case-insensitive name, then by unique id prefix. */
  get(idOrName: string): ModelRecord | undefined {
    try {
      return this.resolve(idOrName)
    } catch {
      return undefined
    }
  }

  resolve(idOrName: string): ModelRecord {
    const all = [...this.entries.values()].map((e) => e.record)
    const tiers: Array<(r: ModelRecord) => boolean> = [
      (r) => r.id === idOrName,
      (r) => r.name === idOrName || r.fileName === idOrName,
      (r) =>
        r.name.toLowerCase() === idOrName.toLowerCase() ||
        r.fileName.toLowerCase() === idOrName.toLowerCase(),
      (r) => idOrName.length >= 4 && r.id.startsWith(idOrName.toLowerCase()),
    ]
    for (const t of tiers) {
      const hits = all.filter(t)
      if (hits.length === 1 && hits[0]) return hits[0]
      if (hits.length > 1) {
        throw new LibraryError(
          `"${idOrName}" matches ${hits.length} models: ${hits.map((h) => `${h.name} (${h.type}, id ${h.id})`).join(', ')}; use the id`,
          'ambiguous',
        )
      }
    }
    throw new LibraryError(`no model named or with id "${idOrName}" in the library`, 'not-found')
  }

  getRoots(): LibraryRoot[] {
    return this.roots.map((r) => ({ ...r }))
  }

  /** Three-state compatibility of a LoRA / embedding / VAE with a checkpoint. */
  compatibility(addonIdOrName: string, checkpointIdOrName: string): Compatibility {
    const a = this.resolve(addonIdOrName)
    const b = this.resolve(checkpointIdOrName)
    return compatibility(a, b)
  }

  // -------------------------------------------------------------------------------------------- roots

  /** Register a folder (an A1111 / ComfyUI install, a models folder): its files are used in place. */
  addRoot(folder: string): Promise<LibraryRoot> {
    return this.locked(async () => {
      const abs = path.resolve(folder)
      let st: fs.Stats
      try {
        st = await fs.promises.stat(abs)
      } catch {
        throw new LibraryError(`${abs} does not exist`, 'not-found')
      }
      if (!st.isDirectory()) throw new LibraryError(`${abs} is not a folder`, 'not-a-model')
      const existing = this.roots.find((r) => path.resolve(r.path) === abs)
      if (existing) return { ...existing }
      const root: LibraryRoot = {
        path: abs,
        layout: await detectLayout(abs),
        addedAt: new Date().toISOString(),
      }
      this.roots.push(root)
      await saveRoots(this.home, this.roots.slice(1))
      return { ...root }
    })
  }

  /** Forget a folder the user added (its files are untouched; its records go at once). */
  removeRoot(folder: string): Promise<boolean> {
    return this.locked(async () => {
      const abs = path.resolve(folder)
      if (abs === this.libraryDir)
        throw new LibraryError(`${abs} is Atelier's own model folder`, 'invalid-name')
      const before = this.roots.length
      this.roots = this.roots.filter((r) => path.resolve(r.path) !== abs)
      if (this.roots.length === before) return false
      await saveRoots(this.home, this.roots.slice(1))
      const ids: string[] = []
      for (const [p, e] of this.entries)
        if (e.record.root === abs) {
          this.entries.delete(p)
          ids.push(e.record.id)
        }
      await saveIndex(this.home, [...this.entries.values()])
      if (ids.length) this.emit('delete', ids)
      return true
    })
  }

  // -------------------------------------------------------------------------------------------- scan

  scan(opts: ScanOptions = {}): Promise<ScanSummary> {
    return this.locked(() => this.scanLocked(opts))
  }

  private async ensureLibraryDirs(): Promise<void> {
    for (const d of Object.values(ATELIER_DIRS))
      await fs.promises.mkdir(path.join(this.libraryDir, d), { recursive: true })
  }

  private async scanLocked({ signal, onProgress }: ScanOptions): Promise<ScanSummary> {
    const t0 = performance.now()
    const progress = (p: Partial<ScanProgress> & Pick<ScanProgress, 'phase'>): void =>
      onProgress?.({ done: 0, total: 0, bytesDone: 0, bytesTotal: 0, file: null, ...p })
    await this.ensureLibraryDirs()
    progress({ phase: 'discover' })
    const find = (): ReturnType<typeof discover> =>
      discover(this.roots, {
        signal,
        onFound: (n) => {
          if (n % 200 === 0) progress({ phase: 'discover', done: n })
        },
      })
    await recoverRenames(this.home)
    let found = await find()
    // Crash leftovers (a kill -9 inside a rename or an atomic write): put back, then look again.
    const recovered: string[] = []
    for (const [dir, name] of found.leftovers) {
      const done = await recoverLeftover(dir, name).catch(
        (err: unknown) => `${path.join(dir, name)}: ${String(err)}`,
      )
      if (done) recovered.push(done)
    }
    if (recovered.length > 0) found = await find()
    const { candidates, warnings } = found
    if (signal?.aborted) throw abortError(signal)
    this.warnings = [...warnings, ...recovered.map((r) => `recovered after a crash: ${r}`)]

    const next = new Map<string, IndexEntry>()
    const usedIds = new Set<string>()
    // A root that is not there at all (an unplugged drive) keeps its records: doctor reports them missing.
    for (const root of this.roots) {
      if (root.path === this.libraryDir || (await exists(root.path))) continue
      this.warnings.push(`${root.path} is not reachable; its models are kept as they were`)
      for (const [p, e] of this.entries)
        if (e.record.root === root.path) {
          next.set(p, e)
          usedIds.add(e.record.id)
        }
    }
    let reused = 0
    interface Work {
      c: Candidate
      prev: IndexEntry | undefined
      sidecar: AtelierSidecar | null
      probe: ProbeInfo | null
      problem: string | null
      sha256: string | null
      autoV3: string | null
      needsHash: boolean
    }
    const work: Work[] = []
    for (const c of candidates) {
      const prev = this.entries.get(c.path)
      const same = prev !== undefined && prev.record.size === c.size && prev.record.mtimeMs === c.mtimeMs
      if (same && prev.stamp === c.stamp && prev.record.root === c.root) {
        next.set(c.path, prev)
        usedIds.add(prev.record.id)
        reused++
        continue
      }
      if (same) {
        // Only a sidecar changed: re-read metadata, keep hash and probe.
        work.push({
          c,
          prev,
          sidecar: null,
          probe: prev.record.problem ? null : probeFromRecord(prev.record, prev.probeFamily),
          problem: prev.record.problem,
          sha256: prev.record.sha256,
          autoV3: prev.record.autoV3,
          needsHash: false,
        })
        continue
      }
      const sidecar = await readAtelierSidecar(stemOf(c.path, c.isDir))
      const fromSidecar =
        sidecar !== null &&
        sidecar.size === c.size &&
        sidecar.mtimeMs === c.mtimeMs &&
        (sidecar.sha256 !== null || c.isDir)
      work.push({
        c,
        prev,
        sidecar,
        probe: fromSidecar ? probeFromSidecar(sidecar) : null,
        problem: null,
        sha256: fromSidecar ? sidecar.sha256 : null,
        autoV3: fromSidecar ? sidecar.autoV3 : null,
        needsHash: !fromSidecar && !c.isDir,
      })
    }

    // Probe what is new or changed (headers only: fast).
    const toProbe = work.filter((w) => w.probe === null && w.problem === null)
    let probed = 0
    for (const w of toProbe) {
      if (signal?.aborted) throw abortError(signal)
      progress({ phase: 'probe', done: probed, total: toProbe.length, file: w.c.path })
      try {
        w.probe = await this.probe(w.c.path)
      } catch (err) {
        w.problem = err instanceof Error ? err.message : String(err)
      }
      probed++
    }

    const bytesTotal = work.filter((w) => w.needsHash).reduce((s, w) => s + w.c.size, 0)
    const hashTotal = work.filter((w) => w.needsHash).length
    let bytesDone = 0
    let hashed = 0
    let added = 0
    let problems = 0
    const changedIds: string[] = []
    try {
      for (const w of work) {
        if (signal?.aborted) throw abortError(signal)
        if (w.needsHash) {
          progress({ phase: 'hash', done: hashed, total: hashTotal, bytesDone, bytesTotal, file: w.c.path })
          const wantV3 = w.probe?.type === 'lora'
          const dataStart = wantV3 ? await dataStartOf(w.c.path).catch(() => null) : null
          const base = bytesDone
          const h = await this.hashFile(w.c.path, {
            signal,
            dataStart,
            onProgress: (b) =>
              progress({
                phase: 'hash',
                done: hashed,
                total: hashTotal,
                bytesDone: base + b,
                bytesTotal,
                file: w.c.path,
              }),
          })
          w.sha256 = h.sha256
          w.autoV3 = h.autoV3
          bytesDone += w.c.size
          hashed++
        }
        let entry: IndexEntry | null
        try {
          entry = await this.buildEntry(w.c, {
            prev: w.prev,
            sidecar: w.sidecar,
            probe: w.probe,
            problem: w.problem,
            sha256: w.sha256,
            autoV3: w.autoV3,
            usedIds,
          })
        } catch (err) {
          // One bad file or sidecar never aborts the scan.
          problems++
          this.warnings.push(`${w.c.path}: skipped (${err instanceof Error ? err.message : String(err)})`)
          continue
        }
        if (!entry) {
          // Refused or unreadable (a pickle with a forbidden global, a damaged header...): reported, not dropped
          // silently.
          problems++
          this.warnings.push(`${w.c.path}: skipped, not usable as a model (${w.problem ?? 'unknown type'})`)
          continue
        }
        if (!w.prev) added++
        if (entry.record.problem) problems++
        next.set(w.c.path, entry)
        changedIds.push(entry.record.id)
        await this.writeSidecar(entry, w.sidecar)
      }
    } catch (err) {
      // Keep the work done so far (hashes are expensive) and the old entries not reached yet.
      for (const [p, e] of this.entries) if (!next.has(p)) next.set(p, e)
      this.entries = next
      await saveIndex(this.home, [...next.values()])
      throw err
    }

    const removedIds: string[] = []
    for (const [p, e] of this.entries) if (!next.has(p)) removedIds.push(e.record.id)
    for (const e of next.values()) if (e.record.problem && !changedIds.includes(e.record.id)) problems++
    const dirty = work.length > 0 || removedIds.length > 0 || next.size !== this.entries.size
    this.entries = next
    if (dirty || !(await exists(path.join(this.home, 'library.json'))))
      await saveIndex(this.home, [...next.values()])
    progress({ phase: 'done', done: next.size, total: next.size, bytesDone, bytesTotal })
    if (dirty) this.emit('scan', [...changedIds, ...removedIds])
    return {
      models: next.size,
      added,
      removed: removedIds.length,
      hashed,
      reused,
      problems,
      durationMs: Math.round(performance.now() - t0),
    }
  }

  private async buildEntry(
    c: Candidate,
    w: {
      prev: IndexEntry | undefined
      sidecar: AtelierSidecar | null
      probe: ProbeInfo | null
      problem: string | null
      sha256: string | null
      autoV3: string | null
      usedIds: Set<string>
      install?: RecordInputs['install']
    },
  ): Promise<IndexEntry | null> {
    const stem = stemOf(c.path, c.isDir)
    const base = path.basename(stem)
    const has = (ext: string): boolean => c.dirNames.has(base + ext)
    const civitai =
      (has(CIVITAI_EXT) ? await readCivitaiInfo(stem) : null) ??
      (has(CM_INFO_EXT) ? await readCmInfo(stem) : null)
    const a1111 = has(A1111_EXT) ? await readA1111(stem) : null
    const built = buildRecord({
      path: c.path,
      root: c.root,
      isDir: c.isDir,
      size: c.size,
      mtimeMs: c.mtimeMs,
      typeHint: c.typeHint,
      probe: w.probe,
      problem: w.problem,
      sha256: w.sha256,
      autoV3: w.autoV3,
      sidecar: w.sidecar,
      prev: w.prev?.record ?? null,
      prevProbeFamily: w.prev?.probeFamily ?? null,
      civitai,
      a1111,
      preview: findPreview(stem, c.dirNames),
      install: w.install,
    })
    if (!built) return null
    const r = built.record
    // Duplicated files share a hash: the second copy gets a path-derived suffix.
    if (w.usedIds.has(r.id)) {
      r.id = r.sha256 ? `${idFromSha(r.sha256)}-${idFromPath(r.path).slice(1, 7)}` : idFromPath(r.path)
    }
    w.usedIds.add(r.id)
    return {
      record: r,
      probeFamily: built.probeFamily,
      stamp: c.stamp,
      activationText: a1111?.activationText ?? null,
    }
  }

  /** Write `<name>.atelier.json` unless the copy on disk (when known) already says the same. */
  private async writeSidecar(e: IndexEntry, onDisk: AtelierSidecar | null = null): Promise<void> {
    if (e.record.problem) return
    const sidecar = sidecarFromRecord(e.record, e.probeFamily)
    if (onDisk && isDeepStrictEqual(onDisk, sidecar)) return
    try {
      await writeAtelierSidecar(stemOf(e.record.path, e.record.folder), sidecar)
    } catch (err) {
      this.warnings.push(
        `${e.record.path}: cannot write the sidecar (${err instanceof Error ? err.message : String(err)})`,
      )
    }
  }

  // -------------------------------------------------------------------------------------------- install

  /** Register a file the downloader finished (or any model file): moves it into the library folder if needed. */
  add(file: string, opts: AddOptions = {}): Promise<ModelRecord> {
    return this.locked(() => this.addLocked(file, opts))
  }

  private async addLocked(file: string, opts: AddOptions): Promise<ModelRecord> {
    let abs = path.resolve(file)
    let st: fs.Stats
    try {
      st = await fs.promises.stat(abs)
    } catch {
      throw new LibraryError(`${abs} does not exist`, 'not-found')
    }
    const isDir = st.isDirectory()
    let probe: ProbeInfo
    try {
      probe = await this.probe(abs)
    } catch (err) {
      throw new LibraryError(
        `${path.basename(abs)} cannot be added: ${err instanceof Error ? err.message : String(err)}`,
        'corrupt',
      )
    }
    const facts = opts.civitai ?? null
    const type = probe.type ?? opts.type ?? null
    if (!type) {
      throw new LibraryError(
        `${path.basename(abs)} cannot be added: its weights do not say whether it is a checkpoint, LoRA, VAE or embedding`,
        'not-a-model',
      )
    }
    const ext = isDir ? '' : path.extname(abs)
    const wantedName = opts.name
      ? sanitizeName(opts.name.endsWith(ext) && ext ? opts.name.slice(0, -ext.length) : opts.name)
      : null
    if (opts.name && !wantedName)
      throw new LibraryError(`"${opts.name}" is not a usable file name`, 'invalid-name')
    const inRoot = this.roots.some((r) => isUnder(abs, r.path))
    if (!inRoot || opts.move || (wantedName && wantedName !== path.basename(stemOf(abs, isDir)))) {
      const dir = inRoot && !opts.move ? path.dirname(abs) : path.join(this.libraryDir, ATELIER_DIRS[type])
      await fs.promises.mkdir(dir, { recursive: true })
      const stem = wantedName ?? path.basename(stemOf(abs, isDir))
      let target = path.join(dir, stem + ext)
      for (let i = 1; (await exists(target)) && target !== abs; i++)
        target = path.join(dir, `${stem}-${i}${ext}`)
      if (target !== abs) {
        const sidecars = await sidecarMoves(stemOf(abs, isDir), stemOf(target, isDir))
        await moveAcross(abs, target)
        for (const [from, to] of sidecars) if (!(await exists(to))) await moveAcross(from, to)
        abs = target
      }
      st = await fs.promises.stat(abs)
    }
    const root = this.roots.find((r) => isUnder(abs, r.path))?.path ?? this.libraryDir
    const stem = stemOf(abs, isDir)

    let sha256 = opts.sha256?.toLowerCase() ?? null
    let autoV3 = opts.autoV3?.toUpperCase() ?? null
    const dataStart = type === 'lora' && !isDir ? await dataStartOf(abs).catch(() => null) : null
    if (!sha256 && !isDir) {
      const h = await this.hashFile(abs, { signal: opts.signal, dataStart, onProgress: opts.onProgress })
      sha256 = h.sha256
      autoV3 = autoV3 ?? h.autoV3
    } else if (!autoV3 && dataStart !== null) {
      autoV3 = await autoV3Of(abs)
    }

    if (facts) await writeCivitaiInfo(stem, facts)
    if (opts.preview) {
      const pext = opts.preview.ext.startsWith('.') ? opts.preview.ext : `.${opts.preview.ext}`
      await fs.promises.writeFile(`${stem}.preview${pext.toLowerCase()}`, opts.preview.data)
    }
    const prev = this.entries.get(abs)
    const names = new Set(await fs.promises.readdir(path.dirname(abs)))
    const usedIds = new Set([...this.entries.values()].filter((e) => e !== prev).map((e) => e.record.id))
    const candidate: Candidate = {
      path: abs,
      root,
      isDir,
      typeHint: type,
      size: st.size,
      mtimeMs: st.mtimeMs,
      dirNames: names,
      stamp: '',
    }
    const entry = await this.buildEntry(candidate, {
      prev,
      sidecar: prev ? null : await readAtelierSidecar(stem),
      probe,
      problem: null,
      sha256,
      autoV3,
      usedIds,
      install: {
        source: opts.source ?? (facts ? 'civitai' : opts.huggingface ? 'huggingface' : undefined),
        huggingface: opts.huggingface ?? null,
        expectedSha256: opts.expectedSha256?.toLowerCase() ?? null,
      },
    })
    if (!entry) throw new LibraryError(`${abs}: cannot tell what kind of model this is`, 'not-a-model')
    await this.fillA1111(entry)
    entry.stamp = await foreignStamp(abs, isDir)
    this.entries.set(abs, entry)
    await this.writeSidecar(entry)
    await saveIndex(this.home, [...this.entries.values()])
    this.emit('install', [entry.record.id])
    return entry.record
  }

  /** Give A1111 (and Forge, SD.Next) what Atelier knows: activation text and sd version, never overwriting. */
  private async fillA1111(e: IndexEntry): Promise<void> {
    const r = e.record
    if (r.type !== 'lora' && r.type !== 'embedding') return
    if (r.trainedWords.length === 0 && (r.family === null || r.family === 'other')) return
    try {
      await mergeA1111(stemOf(r.path, r.folder), {
        activationText: r.trainedWords.length ? r.trainedWords.join(', ') : null,
        sdVersion: a1111SdVersion(r.family),
      })
    } catch (err) {
      this.warnings.push(
        `${r.path}: cannot write ${A1111_EXT} (${err instanceof Error ? err.message : String(err)})`,
      )
    }
  }

  /** Save a preview image beside the model as `<name>.preview.<ext>`. */
  setPreview(idOrName: string, data: Uint8Array, ext: string): Promise<ModelRecord> {
    return this.locked(async () => {
      const r = this.resolve(idOrName)
      const e = this.entries.get(r.path)
      if (!e) throw new LibraryError(`${r.name} is no longer in the library`, 'not-found')
      const clean = ext.replace(/^\./, '').toLowerCase()
      if (!['png', 'jpg', 'jpeg', 'webp', 'gif'].includes(clean))
        throw new LibraryError(`a preview must be png, jpg, webp or gif (got "${ext}")`, 'invalid-name')
      const stem = stemOf(r.path, r.folder)
      const target = `${stem}.preview.${clean}`
      await fs.promises.writeFile(target, data)
      e.record.preview = findPreview(stem, new Set(await fs.promises.readdir(path.dirname(stem))))
      e.stamp = await foreignStamp(r.path, r.folder)
      await saveIndex(this.home, [...this.entries.values()])
      this.emit('update', [r.id])
      return e.record
    })
  }

  // -------------------------------------------------------------------------------------------- rename / delete

  /** Rename the model file and every sidecar together; rolled back if any move fails. */
  rename(idOrName: string, newName: string): Promise<ModelRecord> {
    return this.locked(async () => {
      const r = this.resolve(idOrName)
      const e = this.entries.get(r.path)
      if (!e) throw new LibraryError(`${r.name} is no longer in the library`, 'not-found')
      const isDir = r.folder
      const ext = isDir ? '' : path.extname(r.path)
      const trimmed =
        ext && newName.toLowerCase().endsWith(ext.toLowerCase()) ? newName.slice(0, -ext.length) : newName
      const clean = sanitizeName(trimmed)
      if (!clean) throw new LibraryError(`"${newName}" is not a usable file name`, 'invalid-name')
      if (clean === r.name) return r
      const clash = [...this.entries.values()].find(
        (o) => o !== e && o.record.type === r.type && o.record.name.toLowerCase() === clean.toLowerCase(),
      )
      if (clash) {
        throw new LibraryError(
          `a ${r.type} named "${clean}" already exists (${clash.record.path}); prompts could not tell them apart`,
          'exists',
        )
      }
      const dir = path.dirname(r.path)
      const oldStem = stemOf(r.path, isDir)
      const newStem = path.join(dir, clean)
      const target = newStem + ext
      const moves: Array<[string, string]> = [[r.path, target], ...(await sidecarMoves(oldStem, newStem))]
      for (const [from, to] of moves) {
        if (await exists(to)) {
          const [a, b] = await Promise.all([fs.promises.stat(from), fs.promises.stat(to)])
          // Same file under another case on a case-insensitive disk: allowed.
          if (a.ino !== b.ino || a.dev !== b.dev)
            throw new LibraryError(`cannot rename ${r.fileName}: ${to} already exists`, 'exists')
        }
      }
      const done: Array<[string, string]> = []
      // Journaled: a crash between these renames is rolled back at the next start (recover.ts).
      await writeJournal(this.home, moves)
      try {
        for (const [from, to] of moves) {
          const tmp = `${from}.renaming-${process.pid}`
          // Through a temporary name so a case-only rename works on case-insensitive disks.
          await renameRetry(from, tmp)
          try {
            await renameRetry(tmp, to)
          } catch (err) {
            await renameRetry(tmp, from)
            throw err
          }
          done.push([from, to])
        }
      } catch (err) {
        for (const [from, to] of done.reverse()) await renameRetry(to, from).catch(() => undefined)
        await clearJournal(this.home)
        throw new LibraryError(
          `cannot rename ${r.fileName} to ${clean}${ext}: ${err instanceof Error ? err.message : String(err)} (nothing was changed)`,
          'io',
        )
      }
      await clearJournal(this.home)
      this.entries.delete(r.path)
      const st = await fs.promises.stat(target)
      const names = new Set(await fs.promises.readdir(dir))
      const rec: ModelRecord = {
        ...r,
        path: target,
        name: clean,
        fileName: path.basename(target),
        mtimeMs: isDir ? r.mtimeMs : st.mtimeMs,
        preview: findPreview(newStem, names),
      }
      const next: IndexEntry = { ...e, record: rec, stamp: await foreignStamp(target, isDir) }
      this.entries.set(target, next)
      await this.writeSidecar(next)
      await saveIndex(this.home, [...this.entries.values()])
      this.emit('rename', [rec.id])
      return rec
    })
  }

  /** Delete the model and its sidecars, or move them all to the trash folder. */
  delete(
    idOrName: string,
    opts: { trash?: boolean } = {},
  ): Promise<{ record: ModelRecord; trashedTo: string | null }> {
    return this.locked(async () => {
      const r = this.resolve(idOrName)
      const isDir = r.folder
      const stem = stemOf(r.path, isDir)
      const names = new Set(await fs.promises.readdir(path.dirname(r.path)).catch(() => [] as string[]))
      const files = [...((await exists(r.path)) ? [r.path] : []), ...presentSidecars(stem, names)]
      let trashedTo: string | null = null
      if (opts.trash) {
        const stamp = new Date().toISOString().replace(/[:.]/g, '-')
        trashedTo = path.join(this.trashDir, `${stamp}-${r.name}`)
        await fs.promises.mkdir(trashedTo, { recursive: true })
        for (const f of files) await moveAcross(f, path.join(trashedTo, path.basename(f)))
      } else {
        for (const f of files) {
          try {
            await fs.promises.rm(f, { recursive: true, force: true })
          } catch (err) {
            if (errCode(err) !== 'ENOENT')
              throw new LibraryError(
                `cannot delete ${f}: ${err instanceof Error ? err.message : String(err)}`,
                'io',
              )
          }
        }
      }
      this.entries.delete(r.path)
      await saveIndex(this.home, [...this.entries.values()])
      this.emit('delete', [r.id])
      return { record: r, trashedTo }
    })
  }

  // -------------------------------------------------------------------------------------------- Civitai

  /**
   * Identify local files on Civitai by SHA-256, in batches of 100, then fill their records and write
   * `.civitai.info` (+ A1111 activation text) beside them.
   */
  matchCivitai(lookup: LookupByHashes, opts: MatchOptions = {}): Promise<MatchSummary> {
    return this.locked(async () => {
      const todo = [...this.entries.values()].filter(
        (e) =>
          e.record.sha256 && (opts.all || (e.record.civitai === null && e.record.source !== 'huggingface')),
      )
      const bySha = new Map<string, IndexEntry[]>()
      for (const e of todo) {
        const sha = e.record.sha256 as string
        bySha.set(sha, [...(bySha.get(sha) ?? []), e])
      }
      const hashes = [...bySha.keys()]
      const ids: string[] = []
      try {
        for (let i = 0; i < hashes.length; i += BATCH) {
          if (opts.signal?.aborted) throw abortError(opts.signal)
          opts.onProgress?.(i, hashes.length)
          const batch = hashes.slice(i, i + BATCH)
          const found = await lookup(
            batch.map((h) => h.toUpperCase()),
            opts.signal,
          )
          const lower = new Map<string, CivitaiVersionJson>()
          for (const [k, v] of found) lower.set(k.toLowerCase(), v)
          for (const sha of batch) {
            const info = lower.get(sha)
            if (!info) continue
            for (const e of bySha.get(sha) ?? []) {
              const updated = await this.applyCivitai(e, info)
              ids.push(updated.record.id)
            }
          }
        }
        opts.onProgress?.(hashes.length, hashes.length)
      } finally {
        // Batches that succeeded before a network error are kept.
        if (ids.length) {
          await saveIndex(this.home, [...this.entries.values()])
          this.emit('update', ids)
        }
      }
      return { looked: hashes.length, matched: ids.length, ids }
    })
  }

  private async applyCivitai(e: IndexEntry, info: CivitaiVersionJson): Promise<IndexEntry> {
    const r = e.record
    const isDir = r.folder
    const stem = stemOf(r.path, isDir)
    await writeCivitaiInfo(stem, info)
    const names = new Set(await fs.promises.readdir(path.dirname(r.path)))
    const entry = await this.buildEntry(
      {
        path: r.path,
        root: r.root,
        isDir,
        typeHint: r.type,
        size: r.size,
        mtimeMs: r.mtimeMs,
        dirNames: names,
        stamp: '',
      },
      {
        prev: e,
        sidecar: null,
        probe: r.problem ? null : probeFromRecord(r, e.probeFamily),
        problem: r.problem,
        sha256: r.sha256,
        autoV3: r.autoV3,
        usedIds: new Set(),
      },
    )
    if (!entry) return e
    await this.fillA1111(entry)
    entry.stamp = await foreignStamp(r.path, isDir)
    this.entries.set(r.path, entry)
    await this.writeSidecar(entry)
    return entry
  }

  // -------------------------------------------------------------------------------------------- doctor

  doctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
    return this.locked(() =>
      runDoctor([...this.entries.values()], { probe: this.probe, hashFile: this.hashFile }, opts),
    )
  }

  // -------------------------------------------------------------------------------------------- internals

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new LibraryError('the library was closed', 'disposed'))
    return this.mutex.run(fn)
  }

  private emit(reason: LibraryChange['reason'], ids: string[]): void {
    this.events.emit('changed', { reason, ids })
  }
}
