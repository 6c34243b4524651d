import fs from 'node:fs'
import path from 'node:path'
import { isReallyInside } from '../../platform/contain'
import { EMBEDDING_EXTENSIONS, embeddingName } from '../../model-formats/embedding'
import { AppError } from '../errors'
import type { ResolvedModel, ResolvedVae, TaesdFile } from './protocol'
import type { ImagePromptResolvers } from '../image-prompts/prepare'
import { imagePromptResolvers } from '../image-prompts/resolvers'

/** What a LoRA name resolves to (weight comes from the request or the prompt tag). */
export interface LoraFileRef {
  path: string
  name: string
  civitaiVersionId?: number
}

/** A textual-inversion embedding: the word that triggers it in prompts (its file name) and its file. */
export interface EmbeddingRef {
  name: string
  path: string
}

/** Plug-in points for the library: model and LoRA names to files. */
export interface GenerationResolvers extends ImagePromptResolvers {
  model(ref: string): Promise<ResolvedModel> | ResolvedModel
  /** `from: 'prompt'`: a `<lora:name:w>` tag, which only ever names something inside the library. */
  lora(name: string, from?: 'prompt' | 'request'): Promise<LoraFileRef> | LoraFileRef
  /** Every embedding prompts may use (library records of type embedding, then embedding folders). */
  embeddings?(): Promise<EmbeddingRef[]> | EmbeddingRef[]
  /** A standalone VAE (library id or name, a path, or a file name under the library folders). */
  vae?(ref: string): Promise<ResolvedVae> | ResolvedVae
  /** An upscaler name to a model file; keywords ('Latent…', 'Lanczos', 'Nearest', 'None') come back unchanged. */
  upscaler?(name: string): Promise<string> | string
  /** TAESD / TAESDXL models (previews, draft decode). */
  taesd?(): TaesdFile[]
}

/** Upscaler names that are not model files. */
export const UPSCALER_KEYWORDS = /^(latent( \(.*\))?|lanczos|nearest|none)$/i

/** The part of a library record the resolvers read. */
export interface LibraryRecordLike {
  name: string
  path: string
  type: string
  sha256: string | null
  civitai: { versionId: number } | null
  family?: string | null
  /** Why a listed model cannot be used (null when usable). */
  note?: string | null
}

export interface LibraryLike {
  get(idOrName: string): LibraryRecordLike | undefined
  /** Every record (image-prompt defaults: IP-Adapters and image encoders). */
  list?(): LibraryRecordLike[]
}

const MODEL_EXT = ['.safetensors', '.ckpt']
const VAE_EXT = ['.safetensors', '.pt', '.ckpt', '.bin']

/** Request values of `vae` that mean the checkpoint's own VAE (A1111's "Automatic" and "None"). */
export const OWN_VAE = /^(automatic|none)$/i

/** Embedding files (.pt, .bin, .safetensors) under `dir`, two folders deep, sorted. */
export function embeddingFilesIn(dir: string, depth = 2): string[] {
  let entries: fs.Dirent[]
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true })
  } catch {
    return []
  }
  const out: string[] = []
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, e.name)
    if (
      e.isFile() &&
      (EMBEDDING_EXTENSIONS as readonly string[]).includes(path.extname(e.name).toLowerCase())
    )
      out.push(full)
    else if (e.isDirectory() && depth > 0 && !e.name.startsWith('.'))
      out.push(...embeddingFilesIn(full, depth - 1))
  }
  return out
}

function stem(p: string): string {
  const b = path.basename(p)
  return b.replace(/\.(safetensors|ckpt|pth|pt|bin)$/i, '')
}

/** Files under `dir` (depth-limited) whose stem is `name` (case-insensitive). */
function findByStem(dir: string, name: string, exts: string[], depth = 4): string | undefined {
  if (depth < 0 || !fs.existsSync(dir)) return undefined
  const want = name.toLowerCase()
  let entries: fs.Dirent[]
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true })
  } catch {
    return undefined
  }
  for (const e of entries) {
    const full = path.join(dir, e.name)
    if (
      e.isFile() &&
      exts.some((x) => e.name.toLowerCase().endsWith(x)) &&
      stem(e.name).toLowerCase() === want
    )
      return full
    if (
      e.isDirectory() &&
      e.name.toLowerCase() === want &&
      fs.existsSync(path.join(full, 'model_index.json'))
    )
      return full
  }
  for (const e of entries) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue
    const hit = findByStem(path.join(dir, e.name), name, exts, depth - 1)
    if (hit) return hit
  }
  return undefined
}

/**
 * Resolution order: a library record (id or name), an existing file or folder path, then a file of that
 * name under the library folders. Missing names are a `not-found` error naming what was looked for.
 */
export function createResolvers(opts: {
  library?: LibraryLike
  roots: string[]
  /**
   * Whether a request may name any existing file or folder (the CLI, where the user types paths). false for
   * requests that arrive over IPC or the WebSocket: a path must then lie inside the library folders.
   * Prompt tags are held to the library folders either way.
   */
  allowPaths?: boolean
  /** Extra folders of embedding files (A1111 `embeddings/`), e.g. from the CLI. */
  embeddingDirs?: string[]
}): GenerationResolvers {
  const allowPaths = opts.allowPaths ?? true
  /** An existing path the caller may use: anywhere for the CLI, else inside a library folder. */
  const usable = (ref: string, from: 'prompt' | 'request' = 'request'): boolean =>
    fs.existsSync(ref) && ((allowPaths && from === 'request') || isReallyInside(opts.roots, ref))
  return {
    ...imagePromptResolvers(opts),
    taesd: () =>
      (opts.library?.list?.() ?? [])
        .filter((r) => r.type === 'taesd' && !r.note)
        .map((r) => ({ path: r.path, name: r.name, family: r.family === 'sdxl' ? 'sdxl' : 'sd-1' })),
    embeddings() {
      const out: EmbeddingRef[] = []
      const add = (file: string): void => {
        const name = embeddingName(file)
        if (!out.some((e) => e.name === name)) out.push({ name, path: file })
      }
      for (const r of opts.library?.list?.() ?? []) if (r.type === 'embedding') add(r.path)
      for (const dir of opts.embeddingDirs ?? []) for (const f of embeddingFilesIn(dir)) add(f)
      return out
    },
    model(ref) {
      const rec = opts.library?.get(ref)
      if (rec && rec.type === 'checkpoint')
        return {
          path: rec.path,
          name: rec.name,
          ...(rec.sha256 ? { sha256: rec.sha256 } : {}),
          ...(rec.civitai ? { civitaiVersionId: rec.civitai.versionId } : {}),
        }
      if (usable(ref)) return { path: path.resolve(ref), name: stem(ref) }
      for (const root of opts.roots) {
        const hit = findByStem(root, ref, MODEL_EXT)
        if (hit) return { path: hit, name: stem(hit) }
      }
      throw new AppError(
        'not-found',
        `Model "${ref}" was not found: not in the library, not a file or folder, and no ${ref}.safetensors under ${opts.roots.join(', ') || 'the library folders'}.`,
      )
    },
    lora(name, from = 'request') {
      const rec = opts.library?.get(name)
      if (rec && rec.type === 'lora')
        return {
          path: rec.path,
          name: rec.name,
          ...(rec.civitai ? { civitaiVersionId: rec.civitai.versionId } : {}),
        }
      if (usable(name, from) && fs.statSync(name).isFile())
        return { path: path.resolve(name), name: stem(name) }
      for (const root of opts.roots) {
        const hit = findByStem(root, name, ['.safetensors'])
        if (hit) return { path: hit, name: stem(hit) }
      }
      throw new AppError(
        'not-found',
        `LoRA "${name}" was not found in the library${opts.roots.length ? ` (${opts.roots.join(', ')})` : ''}.`,
      )
    },
    vae(ref) {
      const rec = opts.library?.get(ref)
      if (rec && rec.type === 'vae')
        return {
          path: rec.path,
          name: path.basename(rec.path),
          ...(rec.sha256 ? { sha256: rec.sha256 } : {}),
          family: rec.family ?? null,
        }
      if (usable(ref)) return { path: path.resolve(ref), name: path.basename(ref) }
      for (const root of opts.roots) {
        const hit = findByStem(root, stem(ref), VAE_EXT)
        if (hit) return { path: hit, name: path.basename(hit) }
      }
      throw new AppError(
        'not-found',
        `VAE "${ref}" was not found: not in the library, not a file, and no ${stem(ref)}.safetensors (.pt, .ckpt) under ${opts.roots.join(', ') || 'the library folders'}.`,
      )
    },
    upscaler(name) {
      if (UPSCALER_KEYWORDS.test(name.trim())) return name
      const rec = opts.library?.get(name)
      if (rec && rec.type === 'upscaler') return rec.path
      if (usable(name) && fs.statSync(name).isFile()) return path.resolve(name)
      for (const root of opts.roots) {
        const hit = findByStem(root, name, ['.pth', '.safetensors', '.pt'])
        if (hit) return hit
      }
      throw new AppError(
        'not-found',
        `Upscaler "${name}" was not found: use Latent, Lanczos, Nearest, an upscaler in the library, or a model file.`,
      )
    },
  }
}
