/**
 * `atelier prompt`: how a prompt is read (Midjourney flags, LoRA tags, AND, prompt edits, weights, 75-token
 * chunks), with the data folder's tokenizer and the embeddings generation would use (the library's, plus any
 * extra folders the services were given).
 */
import { describePrompt, formatBreakdown, type PromptBreakdown } from '../engine/prompt/describe'
import { a1111PairsLine } from '../engine/prompt/pairs'
import { findTokenizer } from '../engine/tokenizer'
import { appPaths } from '../platform/paths'
import type { Services } from './container'
import { AppError } from './errors'
import { tokenizerDir } from './models/tokenizer'

export { a1111PairsLine, formatBreakdown, type PromptBreakdown }

export async function explainPrompt(
  services: Pick<Services, 'home' | 'resolvers'>,
  prompt: string,
  opts: { steps: number; tokenizer?: string },
): Promise<PromptBreakdown> {
  let encode: ((t: string) => number[]) | undefined
  try {
    const tok = await findTokenizer(
      opts.tokenizer
        ? { explicit: opts.tokenizer }
        : { cacheDir: tokenizerDir(appPaths(services.home).tokenizers) },
    )
    encode = (t) => tok.encode(t)
  } catch (err) {
    if (opts.tokenizer) throw new AppError('invalid-input', err instanceof Error ? err.message : String(err))
    // no tokenizer installed: the breakdown goes without chunk counts
  }
  const embeddingNames = ((await services.resolvers.embeddings?.()) ?? []).map((e) => e.name)
  return describePrompt(prompt, { steps: opts.steps, encode, embeddingNames })
}
