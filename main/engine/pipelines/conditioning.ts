import * as ort from 'onnxruntime-node'
import { applyWeights, flattenChunks, preparePrompts } from '../prompt'
import type { LoraTag, TokenizedPrompt } from '../prompt'
import { encodePromptsXL } from './sdxl'
import type { DiffusionModel } from './types'

/** Text conditioning of one generation, ready for the denoise loop. */
export interface Conditioning {
  /**
   * [uncond x B, cond_1 x B, ..., cond_k x B] along the batch axis (uncond first, as diffusers orders
   * CFG), or cond_1 x B alone when CFG is off and there is one sub-prompt.
   */
  context: ort.Tensor
  /** SDXL: the pooled text embedding of every context row, [rows, proj] (see pipelines/sdxl.ts). */
  pooled?: ort.Tensor
  /** AND weights of the cond sub-prompts (one 1.0 entry for an ordinary prompt). */
  condWeights: number[]
  /** Whether the first batch block is the unconditional one. */
  withUncond: boolean
  /** Tokens per 77-chunk count (for the UI's "n/75"). */
  tokenCount: number
  loras: LoraTag[]
  warnings: string[]
}

export interface ConditioningOptions {
  model: DiffusionModel
  /** BPE ids of a text without BOS/EOS. */
  encode: (text: string) => readonly number[]
  prompt: string
  negativePrompt: string
  batch: number
  clipSkip?: 1 | 2
  /** With false, the uncond pass is left out (guidance scale <= 1 and one sub-prompt). */
  cfg: boolean
}

/** Encodes one chunked prompt: K chunks through the text encoder, concatenated to [1, 77K, D], weighted. */
async function encodeChunks(
  model: DiffusionModel,
  tokens: TokenizedPrompt,
  clipSkip: 1 | 2,
): Promise<{ data: Float32Array; rows: number; width: number }> {
  const { ids, weights, chunkCount, chunkSize } = flattenChunks(tokens)
  const big = BigInt64Array.from(ids, (v) => BigInt(v))
  const out = await model.encodeText(big, chunkCount, clipSkip)
  const width = out.dims[2] ?? 0
  const data = applyWeights(out.data as Float32Array, weights, chunkSize)
  return { data, rows: chunkCount * chunkSize, width }
}

/**
 * A1111-style prompt conditioning: LoRA tags removed (returned), AND sub-prompts, attention weights
 * ("emphasis: Original"), 75-token chunks concatenated, cond and uncond padded to the same chunk count.
 */
export async function encodePrompts(o: ConditioningOptions): Promise<Conditioning> {
  if (o.model.family === 'sdxl') return encodePromptsXL(o)
  const prepared = preparePrompts(o.prompt, o.negativePrompt, o.encode)
  const clipSkip = o.clipSkip ?? 1
  const withUncond = o.cfg || prepared.cond.length > 1
  const parts = [...(withUncond ? [prepared.uncond] : []), ...prepared.cond.map((c) => c.tokens)]
  const encoded = []
  for (const p of parts) encoded.push(await encodeChunks(o.model, p, clipSkip))
  const rows = encoded[0]?.rows ?? 77
  const width = encoded[0]?.width ?? 0
  const per = rows * width
  const data = new Float32Array(parts.length * o.batch * per)
  encoded.forEach((e, i) => {
    for (let b = 0; b < o.batch; b++) data.set(e.data, (i * o.batch + b) * per)
  })
  return {
    context: new ort.Tensor('float32', data, [parts.length * o.batch, rows, width]),
    condWeights: prepared.cond.map((c) => c.weight),
    withUncond,
    tokenCount: Math.max(...prepared.cond.map((c) => c.tokens.tokenCount)),
    loras: prepared.loras,
    warnings: prepared.warnings,
  }
}
