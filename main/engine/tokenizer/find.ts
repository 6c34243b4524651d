import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { appPaths, resourceFile } from '../../platform/paths'
import { ClipTokenizer, TokenizerError } from './clip'

/** Folder name of the SD 1.x tokenizer in the data folder cache. */
export const CLIP_L_TOKENIZER = 'openai-clip-vit-large-patch14'
export const BPE_GZ = 'bpe_simple_vocab_16e6.txt.gz'

export interface FindTokenizerOptions {
  /** A tokenizer folder (vocab.json + merges.txt, or the BPE .gz) or the .gz file itself; used alone when given. */
  explicit?: string
  /** The model (diffusers folder): its own `tokenizer/` is tried next. */
  modelDir?: string
  /** Overrides the data folder cache (`appPaths().tokenizers/openai-clip-vit-large-patch14`). */
  cacheDir?: string
  /**
   * The vocabulary shipped in `resources/tokenizer/` (OpenAI CLIP's BPE file, MIT), tried last; `false`
   * turns it off (tests of the lookup order), a path replaces it.
   */
  bundled?: string | false
}

/** The CLIP BPE vocabulary bundled with Atelier (SD 1.x and both SDXL tokenizers use it), if present. */
export function bundledTokenizer(): string | undefined {
  return resourceFile(path.join('tokenizer', BPE_GZ))
}

export type TokenizerSource = { kind: 'hf-folder'; path: string } | { kind: 'bpe-gz'; path: string }

function sourceIn(p: string): TokenizerSource | undefined {
  if (!existsSync(p)) return undefined
  if (statSync(p).isFile()) return p.endsWith('.gz') ? { kind: 'bpe-gz', path: p } : undefined
  if (existsSync(path.join(p, 'vocab.json')) && existsSync(path.join(p, 'merges.txt')))
    return { kind: 'hf-folder', path: p }
  if (existsSync(path.join(p, BPE_GZ))) return { kind: 'bpe-gz', path: path.join(p, BPE_GZ) }
  return undefined
}

/**
 * Where the CLIP tokenizer files are, in lookup order: the explicit path, the model's own `tokenizer/`,
 * the data folder cache, then the vocabulary bundled in `resources/` (so no generation needs the network).
 * Throws when none has them.
 */
export function locateTokenizer(opts: FindTokenizerOptions = {}): TokenizerSource {
  if (opts.explicit !== undefined) {
    const s = sourceIn(opts.explicit)
    if (!s) {
      throw new TokenizerError(
        `${opts.explicit}: no tokenizer there (expected vocab.json + merges.txt, or ${BPE_GZ})`,
        'tokenizer-missing',
      )
    }
    return s
  }
  const tried: string[] = []
  if (opts.modelDir !== undefined) {
    const own = path.join(opts.modelDir, 'tokenizer')
    tried.push(own)
    const s = sourceIn(own)
    if (s) return s
  }
  const cache = opts.cacheDir ?? path.join(appPaths().tokenizers, CLIP_L_TOKENIZER)
  tried.push(cache)
  const s = sourceIn(cache)
  if (s) return s
  const bundled = opts.bundled === false ? undefined : (opts.bundled ?? bundledTokenizer())
  if (bundled !== undefined) {
    tried.push(bundled)
    const b = sourceIn(bundled)
    if (b) return b
  }
  throw new TokenizerError(
    `the CLIP tokenizer files are missing (looked in ${tried.join(', ')}; the copy Atelier ships in ` +
      `resources/tokenizer/ is gone too). Reinstall Atelier, or put the tokenizer of ` +
      `openai/clip-vit-large-patch14 (vocab.json and merges.txt) into ${cache}.`,
    'tokenizer-missing',
  )
}

const loaded = new Map<string, Promise<ClipTokenizer>>()

/** Load (once per source) the tokenizer that `locateTokenizer` finds. */
export function findTokenizer(opts: FindTokenizerOptions = {}): Promise<ClipTokenizer> {
  let src: TokenizerSource
  try {
    src = locateTokenizer(opts)
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)))
  }
  const key = `${src.kind}:${path.resolve(src.path)}`
  let p = loaded.get(key)
  if (!p) {
    p = src.kind === 'bpe-gz' ? ClipTokenizer.fromBpeGz(src.path) : ClipTokenizer.fromFolder(src.path)
    p.catch(() => loaded.delete(key))
    loaded.set(key, p)
  }
  return p
}
