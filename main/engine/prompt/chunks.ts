import { parsePromptAttention } from './attention'
import type { PromptSegment } from './attention'
import type { EmbeddingIndex } from './embeddings'

/**
 * Long-prompt chunking as A1111 does it (`modules/sd_hijack_clip.py::tokenize_line`): the prompt is split into
 * 75-token chunks, each wrapped as [BOS, 75 tokens (EOS-padded), EOS] = 77 ids with one weight per id. The text
 * encoder runs once per chunk and the K outputs are concatenated along the sequence axis (77·K rows).
 *
 * - BREAK closes the current chunk (pads it) and starts a new one.
 * - comma padding backtrack (default 20): when a chunk is full and the last comma in it is at most 20 tokens from
 *   the end, the tokens after that comma move to the next chunk, so phrases are not cut in half.
 * - Textual-inversion embeddings (options.embeddings): where a fragment's tokens spell an embedding's name, the
 *   chunk gets `vectors` placeholder ids (0) with the fragment's weight and a fix (offset, name). An embedding never
 *   straddles chunks: when it does not fit, the chunk is closed first. A1111's quirk is kept: comma backtracking
 *   moves placeholders into the next chunk but leaves their fix behind (at its old offset, now EOS padding).
 */

/** BPE ids of a text without BOS/EOS (CLIPTokenizer(text, add_special_tokens=False).input_ids). */
export type EncodeFn = (text: string) => readonly number[]

export interface ChunkingOptions {
  /** <|startoftext|>; 49406 for CLIP. */
  bos: number
  /** <|endoftext|>; 49407 for CLIP. */
  eos: number
  /** Padding id after the first EOS; SD1 pads with EOS (default), OpenCLIP (SD2) with 0. */
  pad?: number
  /** Id of ',</w>'; 267 for CLIP. Omit or set -1 to disable comma backtracking. */
  comma?: number
  /** Tokens per chunk without BOS/EOS. Default 75. */
  chunkLength?: number
  /** A1111 `comma_padding_backtrack`, default 20; 0 disables. */
  commaPaddingBacktrack?: number
  /** Textual-inversion embeddings to recognise in the text. */
  embeddings?: EmbeddingIndex
}

export const CLIP_CHUNKING: Readonly<ChunkingOptions> = Object.freeze({
  bos: 49406,
  eos: 49407,
  comma: 267,
  chunkLength: 75,
  commaPaddingBacktrack: 20,
})

/** An embedding inserted into a chunk: its vectors replace the rows offset+1 ... (the +1 is BOS). */
export interface ChunkFix {
  offset: number
  name: string
}

export interface PromptChunk {
  /** chunkLength + 2 ids: BOS, tokens, EOS padding, EOS. */
  tokens: number[]
  /** One multiplier per id (1.0 for BOS/EOS/padding). */
  weights: number[]
  /** Embeddings inserted into this chunk (absent when none). */
  fixes?: ChunkFix[]
}

export interface TokenizedPrompt {
  chunks: PromptChunk[]
  /** A1111's token count: 75 per closed chunk plus the tokens of the last one (what the UI shows as "n/75"). */
  tokenCount: number
}

/** Chunk already-parsed segments. */
export function chunkSegments(
  segments: readonly PromptSegment[],
  encode: EncodeFn,
  options: ChunkingOptions = CLIP_CHUNKING,
): TokenizedPrompt {
  const chunkLength = options.chunkLength ?? 75
  const backtrack = options.commaPaddingBacktrack ?? 20
  const comma = options.comma ?? -1
  const { bos, eos } = options

  const chunks: PromptChunk[] = []
  let tokens: number[] = []
  let weights: number[] = []
  let fixes: ChunkFix[] = []
  let tokenCount = 0
  let lastComma = -1
  const index = options.embeddings

  const nextChunk = (isLast = false): void => {
    tokenCount += isLast ? tokens.length : chunkLength
    const toAdd = chunkLength - tokens.length
    for (let i = 0; i < toAdd; i++) {
      tokens.push(eos)
      weights.push(1.0)
    }
    const chunk: PromptChunk = { tokens: [bos, ...tokens, eos], weights: [1.0, ...weights, 1.0] }
    if (fixes.length) chunk.fixes = fixes
    chunks.push(chunk)
    tokens = []
    weights = []
    fixes = []
    lastComma = -1
  }

  for (const seg of segments) {
    if (seg.type === 'break') {
      nextChunk()
      continue
    }
    const ids = encode(seg.text)
    let position = 0
    while (position < ids.length) {
      const token = ids[position] as number
      if (token === comma) {
        lastComma = tokens.length
      } else if (
        backtrack !== 0 &&
        tokens.length === chunkLength &&
        lastComma !== -1 &&
        tokens.length - lastComma <= backtrack
      ) {
        const breakLocation = lastComma + 1
        const relocTokens = tokens.slice(breakLocation)
        const relocWeights = weights.slice(breakLocation)
        tokens = tokens.slice(0, breakLocation)
        weights = weights.slice(0, breakLocation)
        nextChunk()
        tokens = relocTokens
        weights = relocWeights
      }
      if (tokens.length === chunkLength) nextChunk()
      const match = index?.find(ids, position)
      if (!match) {
        tokens.push(token)
        weights.push(seg.weight)
        position++
        continue
      }
      const n = match.embedding.vectors
      if (tokens.length + n > chunkLength) nextChunk()
      fixes.push({ offset: tokens.length, name: match.embedding.name })
      for (let i = 0; i < n; i++) {
        tokens.push(0)
        weights.push(seg.weight)
      }
      position += match.length
    }
  }
  if (tokens.length > 0 || chunks.length === 0) nextChunk(true)

  if (options.pad !== undefined && options.pad !== eos) {
    const pad = options.pad
    for (const c of chunks) {
      const first = c.tokens.indexOf(eos)
      for (let i = first + 1; i < c.tokens.length; i++) c.tokens[i] = pad
    }
  }
  return { chunks, tokenCount }
}

/** Parse attention syntax and chunk a prompt (LoRA tags must already be removed). */
export function tokenizePrompt(
  prompt: string,
  encode: EncodeFn,
  options: ChunkingOptions = CLIP_CHUNKING,
): TokenizedPrompt {
  return chunkSegments(parsePromptAttention(prompt), encode, options)
}

/** A1111 `empty_chunk()`: BOS then EOS (or pad), all weights 1. Identical to the chunk of the empty prompt. */
export function emptyChunk(options: ChunkingOptions = CLIP_CHUNKING): PromptChunk {
  const n = (options.chunkLength ?? 75) + 2
  const fill = options.pad ?? options.eos
  const tokens = new Array<number>(n).fill(fill)
  tokens[0] = options.bos
  tokens[1] = options.eos
  return { tokens, weights: new Array<number>(n).fill(1.0) }
}

/**
 * Pad every prompt to the same number of chunks by appending empty chunks (A1111 "pad prompt/negative prompt to be
 * same length", `pad_cond_uncond`), so cond and uncond embeddings can share one UNet batch.
 */
export function padToSameLength(
  prompts: readonly TokenizedPrompt[],
  options: ChunkingOptions = CLIP_CHUNKING,
): TokenizedPrompt[] {
  const k = Math.max(1, ...prompts.map((p) => p.chunks.length))
  return prompts.map((p) => {
    const chunks = [...p.chunks]
    while (chunks.length < k) chunks.push(emptyChunk(options))
    return { chunks, tokenCount: p.tokenCount }
  })
}

/** Flatten to the text-encoder inputs: ids [K, 77] and weights [K*77] (row-major). */
export function flattenChunks(prompt: TokenizedPrompt): {
  ids: Int32Array
  weights: Float32Array
  chunkCount: number
  chunkSize: number
} {
  const chunkSize = prompt.chunks[0]?.tokens.length ?? 77
  const ids = new Int32Array(prompt.chunks.length * chunkSize)
  const weights = new Float32Array(prompt.chunks.length * chunkSize)
  prompt.chunks.forEach((c, k) => {
    ids.set(c.tokens, k * chunkSize)
    weights.set(c.weights, k * chunkSize)
  })
  return { ids, weights, chunkCount: prompt.chunks.length, chunkSize }
}

/**
 * A1111 "emphasis: Original" (`modules/sd_emphasis.py::EmphasisOriginal`): multiply each token's embedding by its
 * weight, then rescale so the mean of the tensor is unchanged. Upstream applies this to each 77-token chunk's
 * encoder output separately (`process_tokens` runs per chunk); `chunkSize` (default 77) selects that scope, pass the
 * whole row count to normalise the full tensor at once.
 *
 * @param embeddings [rows, dim] row-major, rows = K*77
 * @param weights    [rows]
 */
export function applyWeights(
  embeddings: Float32Array,
  weights: Float32Array | readonly number[],
  chunkSize = 77,
): Float32Array {
  const rows = weights.length
  if (rows === 0 || embeddings.length % rows !== 0) {
    throw new RangeError(
      `applyWeights: embeddings length ${embeddings.length} is not a multiple of the ${rows} weights`,
    )
  }
  const dim = embeddings.length / rows
  const out = new Float32Array(embeddings.length)
  for (let start = 0; start < rows; start += chunkSize) {
    const end = Math.min(rows, start + chunkSize)
    let allOne = true
    for (let r = start; r < end; r++) if ((weights[r] as number) !== 1) allOne = false
    const lo = start * dim
    const hi = end * dim
    if (allOne) {
      out.set(embeddings.subarray(lo, hi), lo)
      continue
    }
    let origSum = 0
    for (let i = lo; i < hi; i++) origSum += embeddings[i] as number
    let newSum = 0
    for (let r = start; r < end; r++) {
      const w = Math.fround(weights[r] as number)
      for (let j = r * dim; j < (r + 1) * dim; j++) {
        const v = Math.fround((embeddings[j] as number) * w)
        out[j] = v
        newSum += v
      }
    }
    // mean ratio = sum ratio (same element count)
    const scale = newSum === 0 ? 1 : Math.fround(origSum / newSum)
    for (let i = lo; i < hi; i++) out[i] = Math.fround((out[i] as number) * scale)
  }
  return out
}
