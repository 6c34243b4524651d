import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { onnx } from '../../model-formats/onnx/builder'
import { commitDir, tempDirFor, writeJsonAtomic } from '../convert/cache'
import type { ProviderName } from './providers'

/**
 * ORT's optimised-model cache. The first session of a graph file on a provider also saves onnxruntime's
 * optimised form of it (`optimizedModelFilePath`, initializers in one external file): fp16 weights already
 * folded into fp32, layers fused, CPU weights reordered for this machine's vector width. Later sessions load
 * that file instead, and their creation is then mostly reading its bytes (bench/session.ts: a warm switch
 * costs about as long as reading the weights).
 *
 * Stored beside the graph inside its conversion-cache entry: `<graph dir>/ort-optimized/<stem>-<key>/`
 * (`model.onnx`, `weights.bin`, `ready.json` written last). The key covers everything the optimised form
 * depends on: onnxruntime's version, the provider, this CPU (the NCHWc and GEMM layouts are
 * hardware-specific), the optimisation settings, and the graph (its file's bytes plus the size and mtime of
 * every external-data file it reads). A different key means a new folder; the old one of that graph is
 * removed when the new one is committed. A cached folder that does not match its ready.json (size) or that
 * onnxruntime refuses is deleted and built again. Built in a temp folder and renamed, so a crash or a
 * second process never leaves a half-written folder in use.
 *
 * Disk use: one optimised copy per graph, fp32 (SD 1.5 UNet 3.44 GB, its text encoder and VAE 0.6 GB);
 * the base `model.onnx` of each graph folder is always kept, plus `keepVariants` of the other graphs
 * (LoRA / image-prompt variants), least recently used removed first. Nothing is written when the volume
 * would keep less than `minFreeBytes` free.
 */

/** Providers whose optimised models are saved. GPU providers' saved forms are not verified here (no GPU). */
export const OPTIMIZED_CACHE_PROVIDERS: readonly ProviderName[] = ['cpu']

/** Bump when what is saved changes (session options below, file layout). */
const CACHE_FORMAT = 1

export const OPTIMIZED_DIR = 'ort-optimized'
const MODEL = 'model.onnx'
const WEIGHTS = 'weights.bin'
const READY = 'ready.json'

export interface OptimizedCacheOptions {
  /** Variant graphs (names other than model.onnx) kept per graph folder; default 1. */
  keepVariants?: number
  /** Free bytes the volume must keep after the copy is written; default 2 GiB. */
  minFreeBytes?: number
}

export type OptimizedUse =
  | { state: 'loaded'; dir: string }
  | { state: 'built'; dir: string; bytes: number }
  | { state: 'skipped'; reason: string }

interface Ready {
  format: number
  key: string
  source: string
  ort: string
  provider: ProviderName
  bytes: Record<string, number>
  createdAt: string
}

let cpuIdentity: string | undefined

/** What the CPU kernels' layouts depend on: architecture, model name and (Linux) the feature flags. */
function cpuId(): string {
  if (cpuIdentity !== undefined) return cpuIdentity
  let flags = ''
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8')
    flags = /^(?:flags|Features)\s*:(.*)$/m.exec(info)?.[1]?.trim() ?? ''
  } catch {
    // Not Linux: the model name stands for the features.
  }
  cpuIdentity = `${process.arch}|${os.cpus()[0]?.model ?? ''}|${flags}`
  return cpuIdentity
}

/** Files (other than the graph itself) whose bytes the graph reads, relative to its folder. */
export function externalFiles(modelPath: string, bytes = fs.readFileSync(modelPath)): string[] {
  const m = onnx.ModelProto.decode(bytes)
  const files = new Set<string>()
  const collect = (g: onnx.IAttributeProto['g']): void => {
    for (const t of g?.initializer ?? [])
      for (const e of t.externalData ?? []) if (e.key === 'location' && e.value) files.add(e.value)
    for (const n of g?.node ?? []) for (const a of n.attribute ?? []) collect(a.g)
  }
  collect(m.graph)
  return [...files]
}

/** The cache key of a graph file on a provider (hex). */
export function optimizedKey(modelPath: string, provider: ProviderName): string {
  const bytes = fs.readFileSync(modelPath)
  const h = crypto.createHash('sha256')
  h.update(`format ${CACHE_FORMAT}\nort ${ort.env.versions.common}\nprovider ${provider}\ncpu ${cpuId()}\n`)
  h.update(bytes)
  const dir = path.dirname(modelPath)
  for (const f of externalFiles(modelPath, bytes).sort()) {
    const st = fs.statSync(path.join(dir, f))
    h.update(`\n${f} ${st.size} ${st.mtimeMs}`)
  }
  return h.digest('hex').slice(0, 20)
}

function stemOf(modelPath: string): string {
  return path.basename(modelPath).replace(/\.onnx$/, '')
}

/** The folder the optimised form of `modelPath` on `provider` lives in (whether or not it exists). */
export function optimizedDir(modelPath: string, provider: ProviderName): string {
  return path.join(
    path.dirname(modelPath),
    OPTIMIZED_DIR,
    `${stemOf(modelPath)}-${optimizedKey(modelPath, provider)}`,
  )
}

function readReady(dir: string): Ready | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(dir, READY), 'utf8')) as Ready
    if (r.format !== CACHE_FORMAT) return undefined
    for (const [f, size] of Object.entries(r.bytes))
      if (fs.statSync(path.join(dir, f)).size !== size) return undefined
    return r
  } catch {
    return undefined
  }
}

/** Total bytes of a folder's files (one level). */
function folderBytes(dir: string): number {
  let n = 0
  for (const f of fs.readdirSync(dir)) n += fs.statSync(path.join(dir, f)).size
  return n
}

function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir)
  return Number(s.bavail) * Number(s.bsize)
}

/** Bytes the optimised copy will take at most: fp16 weights become fp32, so twice what the graph reads. */
function expectedBytes(modelPath: string): number {
  const dir = path.dirname(modelPath)
  let n = fs.statSync(modelPath).size
  for (const f of externalFiles(modelPath)) n += fs.statSync(path.join(dir, f)).size
  return 2 * n
}

/**
 * Removes stale folders beside the one just used: other keys of the same graph (another onnxruntime, CPU or
 * graph version), and variant graphs beyond `keepVariants` (least recently used first), and temp folders.
 */
function prune(root: string, keepDir: string, keepVariants: number): void {
  const keep = path.basename(keepDir)
  const stem = keep.replace(/-[0-9a-f]{20}$/, '')
  const variants: { dir: string; used: number }[] = []
  for (const name of fs.readdirSync(root)) {
    const full = path.join(root, name)
    if (name === keep) continue
    if (name.startsWith('.tmp-')) {
      if (Date.now() - fs.statSync(full).mtimeMs > 24 * 3600 * 1000)
        fs.rmSync(full, { recursive: true, force: true })
      continue
    }
    const s = name.replace(/-[0-9a-f]{20}$/, '')
    if (s === stem) fs.rmSync(full, { recursive: true, force: true })
    else if (s !== 'model') {
      let used = 0
      try {
        used = fs.statSync(path.join(full, READY)).mtimeMs
      } catch {
        // No ready.json: unfinished, oldest.
      }
      variants.push({ dir: full, used })
    }
  }
  const budget = stem === 'model' ? keepVariants : keepVariants - 1
  variants.sort((a, b) => b.used - a.used)
  for (const v of variants.slice(Math.max(0, budget))) fs.rmSync(v.dir, { recursive: true, force: true })
}

/** Marks a cached folder as used now (least-recently-used pruning of variants). */
function touch(dir: string): void {
  const now = new Date()
  try {
    fs.utimesSync(path.join(dir, READY), now, now)
  } catch {
    // Read-only cache: nothing to record.
  }
}

/**
 * Creates a session for `modelPath` through the cache: from the saved optimised form when there is a valid
 * one, else from the graph itself while saving its optimised form. Anything wrong with the cache (a refused
 * or damaged folder, no disk space, a read-only volume) falls back to the plain graph; only a graph that
 * will not load at all throws.
 */
export async function createThroughCache(
  modelPath: string,
  provider: ProviderName,
  options: ort.InferenceSession.SessionOptions,
  opts: OptimizedCacheOptions = {},
): Promise<{ session: ort.InferenceSession; use: OptimizedUse }> {
  const plain = async (reason: string) => ({
    session: await ort.InferenceSession.create(modelPath, options),
    use: { state: 'skipped', reason } as OptimizedUse,
  })
  if (!OPTIMIZED_CACHE_PROVIDERS.includes(provider)) return plain(`not kept for ${provider}`)
  let dir: string
  try {
    dir = optimizedDir(modelPath, provider)
  } catch (err) {
    return plain(`cannot key ${modelPath}: ${(err as Error).message}`)
  }
  const root = path.dirname(dir)
  if (readReady(dir)) {
    try {
      const session = await ort.InferenceSession.create(path.join(dir, MODEL), options)
      touch(dir)
      return { session, use: { state: 'loaded', dir } }
    } catch {
      // Damaged or refused by this onnxruntime: rebuild below.
    }
  }
  fs.rmSync(dir, { recursive: true, force: true })
  const keepVariants = opts.keepVariants ?? 1
  if (stemOf(modelPath) !== 'model' && keepVariants < 1) return plain('variant graphs are not kept')
  const need = expectedBytes(modelPath) + (opts.minFreeBytes ?? 2 * 2 ** 30)
  let tmp: string
  try {
    const free = freeBytes(path.dirname(modelPath))
    if (free < need)
      return plain(`${(free / 2 ** 30).toFixed(1)} GiB free, ${(need / 2 ** 30).toFixed(1)} GiB needed`)
    fs.mkdirSync(root, { recursive: true })
    tmp = tempDirFor(dir)
  } catch (err) {
    return plain(`cannot write beside ${modelPath}: ${(err as Error).message}`)
  }
  let session: ort.InferenceSession
  try {
    session = await ort.InferenceSession.create(modelPath, {
      ...options,
      optimizedModelFilePath: path.join(tmp, MODEL),
      extra: {
        ...options.extra,
        session: {
          ...(options.extra as { session?: Record<string, string> } | undefined)?.session,
          optimized_model_external_initializers_file_name: WEIGHTS,
          optimized_model_external_initializers_min_size_in_bytes: '1024',
        },
      },
    })
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true })
    return plain(`saving the optimised model failed: ${(err as Error).message.split('\n')[0] ?? ''}`)
  }
  try {
    const bytes: Record<string, number> = {}
    for (const f of fs.readdirSync(tmp)) bytes[f] = fs.statSync(path.join(tmp, f)).size
    const ready: Ready = {
      format: CACHE_FORMAT,
      key: path.basename(dir),
      source: path.basename(modelPath),
      ort: ort.env.versions.common,
      provider,
      bytes,
      createdAt: new Date().toISOString(),
    }
    writeJsonAtomic(path.join(tmp, READY), ready)
    commitDir(tmp, dir)
    prune(root, dir, keepVariants)
    return { session, use: { state: 'built', dir, bytes: folderBytes(dir) } }
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true })
    // The session itself is fine; only the copy could not be kept.
    return { session, use: { state: 'skipped', reason: `not kept: ${(err as Error).message}` } }
  }
}

/** Bytes the optimised copies under a conversion-cache entry take (for "disk use" displays and benches). */
export function optimizedBytesUnder(entryDir: string): number {
  let n = 0
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name)
      if (e.isDirectory()) {
        if (e.name === OPTIMIZED_DIR)
          for (const k of fs.readdirSync(full)) n += folderBytes(path.join(full, k))
        else walk(full)
      }
    }
  }
  if (fs.existsSync(entryDir)) walk(entryDir)
  return n
}
