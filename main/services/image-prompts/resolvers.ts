import fs from 'node:fs'
import path from 'node:path'
import { isReallyInside } from '../../platform/contain'
import { AppError } from '../errors'
import type { LibraryLike } from '../generation/resolve'
import { adapterCandidates, encoderCandidates } from './discover'
import type { ImagePromptResolvers, NamedFile } from './prepare'

/**
 * IP-Adapter and image encoder names to files: a library record (types `ip-adapter`, `image-encoder`), an
 * existing path (an encoder may be a Hugging Face `image_encoder/` folder), or a file of that stem in the
 * image-prompt folders of the library roots. Defaults: library records first, then those folders.
 */

export const IP_ADAPTER_TYPE = 'ip-adapter'
export const IMAGE_ENCODER_TYPE = 'image-encoder'

const stem = (p: string): string => path.basename(p).replace(/\.(safetensors|bin|pt|pth)$/i, '')

/** Hugging Face layouts name the weights `model` / `pytorch_model`: the folder names the encoder then. */
function displayName(p: string, name: string): string {
  return /^(model|pytorch_model|diffusion_pytorch_model)$/i.test(name) ? path.basename(path.dirname(p)) : name
}

function fromRecord(r: { path: string; name: string; sha256: string | null }): NamedFile {
  return { path: r.path, name: displayName(r.path, r.name), ...(r.sha256 ? { sha256: r.sha256 } : {}) }
}

export function imagePromptResolvers(opts: {
  library?: LibraryLike
  roots: string[]
  /** See createResolvers: false keeps request paths inside the library folders. */
  allowPaths?: boolean
}): ImagePromptResolvers {
  const allowPaths = opts.allowPaths ?? true
  const byName = (name: string, type: string, candidates: () => string[], what: string): NamedFile => {
    const rec = opts.library?.get(name)
    if (rec && rec.type === type) return fromRecord(rec)
    if (fs.existsSync(name) && (allowPaths || isReallyInside(opts.roots, name)))
      return { path: path.resolve(name), name: displayName(path.resolve(name), stem(name)) }
    const want = name.toLowerCase()
    const hit = candidates().find(
      (c) => stem(c).toLowerCase() === want || path.basename(c).toLowerCase() === want,
    )
    if (hit) return { path: hit, name: stem(hit) }
    throw new AppError(
      'not-found',
      `${what} "${name}" was not found: not in the library, not a file${type === IMAGE_ENCODER_TYPE ? ' or folder' : ''}, and not in the library's ${what} folders.`,
    )
  }
  return {
    ipAdapter: (name) => byName(name, IP_ADAPTER_TYPE, () => adapterCandidates(opts.roots), 'IP-Adapter'),
    imageEncoder: (name) =>
      byName(name, IMAGE_ENCODER_TYPE, () => encoderCandidates(opts.roots), 'Image encoder'),
    imagePromptCandidates: () => {
      const records = opts.library?.list?.() ?? []
      const ofType = (t: string): NamedFile[] => records.filter((r) => r.type === t).map(fromRecord)
      const seen = new Set<string>()
      const unique = (xs: NamedFile[]): NamedFile[] =>
        xs.filter((x) => (seen.has(x.path) ? false : (seen.add(x.path), true)))
      return Promise.resolve({
        adapters: unique([
          ...ofType(IP_ADAPTER_TYPE),
          ...adapterCandidates(opts.roots).map((p) => ({ path: p, name: stem(p) })),
        ]),
        encoders: unique([
          ...ofType(IMAGE_ENCODER_TYPE),
          ...encoderCandidates(opts.roots).map((p) => ({ path: p, name: displayName(p, stem(p)) })),
        ]),
      })
    },
  }
}

/** Image-prompt resolvers that ask a per-call resolver set (the container's, which follows the settings). */
export function delegateImagePromptResolvers(
  current: () => Promise<ImagePromptResolvers>,
): Required<ImagePromptResolvers> {
  const missing = (what: string): never => {
    throw new AppError('unsupported', `${what} cannot be resolved here.`)
  }
  return {
    ipAdapter: async (name) => {
      const r = await current()
      return r.ipAdapter ? r.ipAdapter(name) : missing('IP-Adapter names')
    },
    imageEncoder: async (name) => {
      const r = await current()
      return r.imageEncoder ? r.imageEncoder(name) : missing('Image encoder names')
    },
    imagePromptCandidates: async () =>
      (await (await current()).imagePromptCandidates?.()) ?? { adapters: [], encoders: [] },
  }
}
