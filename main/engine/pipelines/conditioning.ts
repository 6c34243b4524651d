import * as ort from 'onnxruntime-node'
import type { EmbeddingFile } from '../../model-formats/embedding'
import {
  applyWeights,
  chunkSegments,
  CLIP_CHUNKING,
  EmbeddingIndex,
  embeddingRows,
  extractExtraNetworks,
  flattenChunks,
  padToSameLength,
  parseComposablePrompt,
  parsePromptAttention,
  promptSchedule,
  scheduleIndexAt,
} from '../prompt'
import type { ChunkingOptions, LoraTag, PromptSchedule, TokenizedPrompt } from '../prompt'
import type { ContextAt } from './denoise'
import { encodeChunksXL } from './sdxl'
import type { DiffusionModel } from './types'

/** Text conditioning of one generation, ready for the denoise loop. */
export interface Conditioning {
  /**
   * [uncond x B, cond_1 x B, ..., cond_k x B] along the batch axis (uncond first, as diffusers orders
   * CFG), or cond_1 x B alone when CFG is off and there is one sub-prompt. With prompt editing: the first step's.
   */
  context: ort.Tensor
  /** SDXL: the pooled text embedding of every context row, [rows, proj] (see pipelines/sdxl.ts). */
  pooled?: ort.Tensor
  /**
   * Prompt editing / alternation: the context of model call `call` (0-based, A1111's CFGDenoiser.step; the denoise
   * loop's ContextAt hook). Absent when no prompt changes over the steps. Every context is built up front from
   * blocks encoded once per distinct text.
   */
  contextAt?: ContextAt
  /** SDXL with prompt editing: the pooled embeddings that belong to a context contextAt returned. */
  pooledOf?: (context: ort.Tensor) => ort.Tensor | undefined
  /** AND weights of the cond sub-prompts (one 1.0 entry for an ordinary prompt). */
  condWeights: number[]
  /** Whether the first batch block is the unconditional one. */
  withUncond: boolean
  /** Tokens per 77-chunk count (for the UI's "n/75"). */
  tokenCount: number
  loras: LoraTag[]
  /** Embeddings the prompts used, by name (for infotext), in order of first use. */
  embeddings?: string[]
  warnings: string[]
}

export interface ConditioningOptions {
  model: DiffusionModel
  /** BPE ids of a text without BOS/EOS. */
  encode: (text: string) => readonly number[]
  prompt: string
  negativePrompt: string
  batch: number
  clipSkip?: number
  /** With false, the uncond pass is left out (guidance scale <= 1 and one sub-prompt). */
  cfg: boolean
  /** Textual-inversion embeddings the prompts may use by name (those of another width are ignored, as A1111 does). */
  embeddings?: readonly EmbeddingFile[]
  /**
   * Steps prompt editing counts in (A1111: the sampling steps, doubled for second-order samplers); default 1 (no
   * editing: `[a:b:0.5]` then reads as `a`). `hiresSteps`: this is a hires pass of that many steps.
   */
  scheduleSteps?: number
  hiresSteps?: number
}

export interface EncodedBlock {
  /** [K*77, width], weighted. */
  data: Float32Array
  rows: number
  width: number
  /** SDXL: encoder 2's pooled projection of the first chunk. */
  pooled?: Float32Array
}

/** Encodes one chunked prompt: K chunks through the text encoder, concatenated to [77K, D], weighted. */
async function encodeChunks(
  model: DiffusionModel,
  tokens: TokenizedPrompt,
  clipSkip: number,
  vectorsOf: (name: string) => Float32Array,
): Promise<EncodedBlock> {
  const { ids, weights, chunkCount, chunkSize } = flattenChunks(tokens)
  const big = BigInt64Array.from(ids, (v) => BigInt(v))
  const rows = embeddingRows(tokens.chunks, vectorsOf)
  const out = await model.encodeText(big, chunkCount, clipSkip, rows.length ? rows : undefined)
  const width = out.dims[2] ?? 0
  const data = applyWeights(out.data as Float32Array, weights, chunkSize)
  return { data, rows: chunkCount * chunkSize, width }
}

/** Which embeddings fit the model: SD 1.x/2.x by the text encoder's width, SDXL files (clip_l + clip_g) on SDXL. */
async function usableEmbeddings(
  model: DiffusionModel,
  list: readonly EmbeddingFile[],
): Promise<EmbeddingFile[]> {
  if (list.length === 0) return []
  if (model.family === 'sdxl') return list.filter((e) => e.sdxl)
  const width = await model.tokenEmbeddingWidth?.()
  return list.filter((e) => e.vec && (width === undefined || e.vec.width === width))
}

/**
 * A1111-style prompt conditioning: LoRA tags removed (returned), AND sub-prompts, prompt editing and alternation
 * per step, textual-inversion embeddings, attention weights ("emphasis: Original"), 75-token chunks concatenated,
 * every cond and uncond padded to the same chunk count. SDXL runs both text encoders per block (see sdxl.ts); an
 * empty SDXL negative prompt gives zeros, as A1111 and diffusers do.
 */
export async function encodePrompts(
  o: ConditioningOptions & { zeroEmptyNegative?: boolean },
): Promise<Conditioning> {
  const xl = o.model.family === 'sdxl'
  const pos = extractExtraNetworks(o.prompt)
  const neg = extractExtraNetworks(o.negativePrompt)
  const warnings = [...pos.warnings, ...neg.warnings]
  for (const t of [...neg.loras, ...neg.others])
    warnings.push(`${t.raw} in the negative prompt was removed; networks apply to the whole generation.`)
  for (const t of pos.others) warnings.push(`${t.raw}: "${t.kind}" networks are not supported; removed.`)

  const embeddings = await usableEmbeddings(o.model, o.embeddings ?? [])
  const byName = new Map(embeddings.map((e) => [e.name, e]))
  const index = embeddings.length ? new EmbeddingIndex(embeddings, o.encode) : undefined
  const chunking: ChunkingOptions = { ...CLIP_CHUNKING, ...(index ? { embeddings: index } : {}) }

  const schedOpts = { steps: o.scheduleSteps ?? 1, hiresSteps: o.hiresSteps }
  const subs = parseComposablePrompt(pos.text)
  const condSchedules: PromptSchedule[] = subs.map((s) => promptSchedule(s.text, schedOpts))
  const withUncond = o.cfg || subs.length > 1
  const zeroUncond =
    xl && withUncond && (o.zeroEmptyNegative ?? true) && neg.text.trim() === '' && !neg.loras.length
  const uncondSchedule: PromptSchedule = promptSchedule(neg.text, schedOpts)

  // Every distinct text, tokenized once; all padded to the same chunk count.
  const texts = [
    ...new Set([
      ...condSchedules.flatMap((s) => s.map(([, t]) => t)),
      ...(withUncond && !zeroUncond ? uncondSchedule.map(([, t]) => t) : []),
    ]),
  ]
  const tokenized = padToSameLength(
    texts.map((t) => chunkSegments(parsePromptAttention(t), o.encode, chunking)),
    chunking,
  )
  const tokensOf = new Map(texts.map((t, i) => [t, tokenized[i] as TokenizedPrompt]))
  const used: string[] = []
  for (const tp of tokenized)
    for (const c of tp.chunks) for (const f of c.fixes ?? []) if (!used.includes(f.name)) used.push(f.name)

  const clipSkip = o.clipSkip ?? 1
  const vectorsOf = (name: string, key?: 'clip_l' | 'clip_g'): Float32Array => {
    const e = byName.get(name)
    const v = key ? e?.sdxl?.[key] : e?.vec
    if (!v) throw new Error(`embedding ${name} has no vectors for this model`)
    return v.data
  }
  const blocks = new Map<string, Promise<EncodedBlock>>()
  const blockOf = (text: string): Promise<EncodedBlock> => {
    let b = blocks.get(text)
    if (!b) {
      const tp = tokensOf.get(text) as TokenizedPrompt
      b = xl ? encodeChunksXL(o.model, tp, vectorsOf) : encodeChunks(o.model, tp, clipSkip, vectorsOf)
      blocks.set(text, b)
    }
    return b
  }

  // The context (and SDXL pooled) for one choice of schedule entries, cached by that choice.
  const contexts = new Map<string, Promise<{ context: ort.Tensor; pooled?: ort.Tensor }>>()
  const pooledByContext = new WeakMap<ort.Tensor, ort.Tensor>()
  const build = async (
    uncondText: string | undefined,
    condTexts: string[],
  ): Promise<{ context: ort.Tensor; pooled?: ort.Tensor }> => {
    const encoded: EncodedBlock[] = []
    for (const t of condTexts) encoded.push(await blockOf(t))
    const first = encoded[0] as EncodedBlock
    if (withUncond) {
      encoded.unshift(
        zeroUncond || uncondText === undefined
          ? {
              data: new Float32Array(first.data.length),
              rows: first.rows,
              width: first.width,
              ...(first.pooled ? { pooled: new Float32Array(first.pooled.length) } : {}),
            }
          : await blockOf(uncondText),
      )
    }
    const { rows, width } = first
    const per = rows * width
    const n = encoded.length * o.batch
    const data = new Float32Array(n * per)
    const p = first.pooled?.length ?? 0
    const pooled = p ? new Float32Array(n * p) : undefined
    encoded.forEach((e, i) => {
      for (let b = 0; b < o.batch; b++) {
        data.set(e.data, (i * o.batch + b) * per)
        if (pooled && e.pooled) pooled.set(e.pooled, (i * o.batch + b) * p)
      }
    })
    const context = new ort.Tensor('float32', data, [n, rows, width])
    if (!pooled) return { context }
    const pooledT = new ort.Tensor('float32', pooled, [n, p])
    pooledByContext.set(context, pooledT)
    return { context, pooled: pooledT }
  }
  const at = (step: number): Promise<{ context: ort.Tensor; pooled?: ort.Tensor }> => {
    const u = withUncond
      ? (uncondSchedule[scheduleIndexAt(uncondSchedule, step)] as [number, string])[1]
      : undefined
    const c = condSchedules.map((s) => (s[scheduleIndexAt(s, step)] as [number, string])[1])
    const key = JSON.stringify([u, c])
    let r = contexts.get(key)
    if (!r) {
      r = build(u, c)
      contexts.set(key, r)
    }
    return r
  }

  const first = await at(0)
  const edits = condSchedules.some((s) => s.length > 1) || (withUncond && uncondSchedule.length > 1)
  // The hook is synchronous: build every distinct context now (a call past the last schedule entry uses the first,
  // the same as call 0).
  const byCall: { context: ort.Tensor; pooled?: ort.Tensor }[] = []
  if (edits) {
    const last = Math.max(...condSchedules.map((s) => s.at(-1)?.[0] ?? 0), uncondSchedule.at(-1)?.[0] ?? 0)
    for (let call = 0; call <= last; call++) byCall.push(await at(call))
  }
  return {
    context: first.context,
    ...(first.pooled ? { pooled: first.pooled } : {}),
    ...(edits
      ? {
          contextAt: (call: number) => (byCall[call] ?? first).context,
          ...(xl ? { pooledOf: (c: ort.Tensor) => pooledByContext.get(c) } : {}),
        }
      : {}),
    condWeights: subs.map((s) => s.weight),
    withUncond,
    tokenCount: Math.max(
      ...condSchedules.map((s) => (tokensOf.get(s[0]?.[1] ?? '') as TokenizedPrompt).tokenCount),
    ),
    loras: pos.loras,
    embeddings: used,
    warnings,
  }
}

/** The SDXL path of encodePrompts (kept for callers that name it). */
export const encodePromptsXL = encodePrompts
