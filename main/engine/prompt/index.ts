import { chunkSegments, CLIP_CHUNKING, padToSameLength } from './chunks'
import type { ChunkingOptions, EncodeFn, TokenizedPrompt } from './chunks'
import { parsePromptAttention } from './attention'
import { parseComposablePrompt } from './composable'
import { extractExtraNetworks } from './extra-networks'
import type { LoraTag } from './extra-networks'

export * from './attention'
export * from './chunks'
export * from './embeddings'
export * from './composable'
export * from './extra-networks'
export * from './midjourney'
export * from './schedule'
export * from './pairs'
export * from './py-json'

export interface PreparedSubPrompt {
  text: string
  weight: number
  tokens: TokenizedPrompt
}

export interface PreparedPrompts {
  /** Composable sub-prompts (one entry when the prompt has no AND), each with its chunks. */
  cond: PreparedSubPrompt[]
  uncond: TokenizedPrompt
  /** LoRA tags found in the positive prompt, in order. */
  loras: LoraTag[]
  /** Number of chunks every entry was padded to (embedding rows = 77·chunkCount). */
  chunkCount: number
  warnings: string[]
}

/**
 * Everything the text-encoder stage needs for one generation, A1111 style: LoRA tags removed from the positive
 * prompt and returned; AND sub-prompts split; attention parsed; 75-token chunks; every cond and the uncond padded
 * with empty chunks to the same chunk count.
 *
 * LoRA tags in the negative prompt are removed and reported in `warnings` (they cannot be applied to the uncond
 * pass alone).
 */
export function preparePrompts(
  prompt: string,
  negativePrompt: string,
  encode: EncodeFn,
  options: ChunkingOptions = CLIP_CHUNKING,
): PreparedPrompts {
  const pos = extractExtraNetworks(prompt)
  const neg = extractExtraNetworks(negativePrompt)
  const warnings = [...pos.warnings, ...neg.warnings]
  for (const t of [...neg.loras, ...neg.others]) {
    warnings.push(`${t.raw} in the negative prompt was removed; networks apply to the whole generation.`)
  }
  for (const t of pos.others) warnings.push(`${t.raw}: "${t.kind}" networks are not supported; removed.`)

  const subs = parseComposablePrompt(pos.text)
  const tokenized = subs.map((s) => chunkSegments(parsePromptAttention(s.text), encode, options))
  const uncond = chunkSegments(parsePromptAttention(neg.text), encode, options)
  const padded = padToSameLength([...tokenized, uncond], options)
  const cond = subs.map((s, i) => ({ text: s.text, weight: s.weight, tokens: padded[i] as TokenizedPrompt }))
  return {
    cond,
    uncond: padded[padded.length - 1] as TokenizedPrompt,
    loras: pos.loras,
    chunkCount: padded[0]?.chunks.length ?? 1,
    warnings,
  }
}
export * from './midjourney-line'
