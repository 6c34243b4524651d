import path from 'node:path'
import type { EmbeddingFile } from '../../../model-formats/embedding'
import { readEmbedding } from '../../../model-formats/embedding'
import { SafetensorsFile } from '../../../model-formats/safetensors'
import type { ClipTokenizer } from '../../tokenizer'
import { findTokenizer } from '../../tokenizer'
import {
  chunkSegments,
  CLIP_CHUNKING,
  EmbeddingIndex,
  embeddingRows,
  parsePromptAttention,
} from '../../prompt'
import type { TokenizedPrompt } from '../../prompt'
import type { CaseContext, CaseRunner, RefTensor } from './types'
import { f32 } from './types'

/**
 * Textual-inversion cases of the add-on set (`ti_files`, `ti_prompts`, `ti_chunk_quirk`): embedding files read as
 * A1111 reads them, and prompts that use them by name encoded by A1111's SD1 conditioning (token placement, chunk
 * rules, vectors replacing token-embedding rows, per-chunk text encoder; emphasis "No norm" for cond_no_norm).
 */

interface EmbeddingEntry {
  file: string
  name_in_prompts?: string
}

interface PromptEntry {
  key: string
  prompt: string
}

const TOKEN_EMBEDDING = 'cond_stage_model.transformer.text_model.embeddings.token_embedding.weight'

function field<T>(ctx: CaseContext, name: string): T {
  const v = (ctx.def as Record<string, unknown>)[name]
  if (v === undefined) throw new Error(`case ${ctx.def.name}: no "${name}" in the manifest`)
  return v as T
}

/** The embedding files of the set: the case's own list, else every file under params.embeddings_dir. */
async function loadEmbeddings(ctx: CaseContext): Promise<EmbeddingFile[]> {
  const listed = (ctx.def as { embeddings?: EmbeddingEntry[] }).embeddings
  const files =
    listed?.map((e) => e.file) ??
    Object.keys(ctx.manifest.files ?? {}).filter((f) =>
      f.startsWith(
        `${String((ctx.def as { params?: { embeddings_dir?: string } }).params?.embeddings_dir ?? 'embeddings')}/`,
      ),
    )
  const out: EmbeddingFile[] = []
  for (const f of files) out.push(await readEmbedding(path.join(ctx.manifest.dir, f)))
  return out
}

async function tokenizer(ctx: CaseContext): Promise<ClipTokenizer> {
  try {
    return await ctx.models.tokenizerFor()
  } catch {
    return findTokenizer() // the vocabulary Atelier ships
  }
}

export const tiFilesCase: CaseRunner = async (ctx) => {
  const out: Record<string, RefTensor> = {}
  for (const e of await loadEmbeddings(ctx)) {
    if (e.vec) out[`vec.${e.name}`] = f32([e.vec.vectors, e.vec.width], e.vec.data)
    if (e.sdxl)
      for (const k of ['clip_l', 'clip_g'] as const)
        out[`vec.${e.name}.${k}`] = f32([e.sdxl[k].vectors, e.sdxl[k].width], e.sdxl[k].data)
  }
  return out
}

export const tiPromptsCase: CaseRunner = async (ctx) => {
  const prompts = field<PromptEntry[]>(ctx, 'prompts')
  const index = (ctx.def as { embedding_index?: string[] }).embedding_index ?? []
  const ckpt = await ctx.models.checkpoint(ctx.def)
  const st = await SafetensorsFile.open(ckpt)
  let table: Float32Array
  let width: number
  try {
    width = st.info(TOKEN_EMBEDDING).shape[1] ?? 0
    table = await st.readFloat32(TOKEN_EMBEDDING)
  } finally {
    await st.close()
  }
  // A1111 skips embeddings whose width is not the text encoder's (SDXL files on an SD1 model).
  const usable = (await loadEmbeddings(ctx)).filter((e) => e.vec && e.width === width)
  const byName = new Map(usable.map((e) => [e.name, e]))
  const tok = await tokenizer(ctx)
  const encode = (t: string): number[] => tok.encode(t)
  const embeddings = new EmbeddingIndex(usable, encode)
  const set = await ctx.models.modelSet(ckpt)
  const vectorsOf = (n: string): Float32Array => byName.get(n)?.vec?.data as Float32Array

  const out: Record<string, RefTensor> = {}
  for (const p of prompts) {
    const tp: TokenizedPrompt = chunkSegments(parsePromptAttention(p.prompt), encode, {
      ...CLIP_CHUNKING,
      embeddings,
    })
    const k = tp.chunks.length
    const ids = BigInt64Array.from(tp.chunks.flatMap((c) => c.tokens).map((v) => BigInt(v)))
    const mult = Float32Array.from(tp.chunks.flatMap((c) => c.weights))
    out[`${p.key}.tokens`] = { dtype: 'I64', shape: [k, 77], data: ids }
    out[`${p.key}.multipliers`] = f32([k, 77], mult)
    const fixes: bigint[] = []
    tp.chunks.forEach((c, ci) => {
      for (const f of c.fixes ?? []) {
        const n = Math.min(77 - f.offset - 1, byName.get(f.name)?.vectors ?? 0)
        fixes.push(BigInt(ci), BigInt(f.offset + 1), BigInt(n), BigInt(index.indexOf(f.name)))
      }
    })
    out[`${p.key}.fixes`] = { dtype: 'I64', shape: [fixes.length / 4, 4], data: BigInt64Array.from(fixes) }
    const rows = embeddingRows(tp.chunks, vectorsOf)
    if (ctx.wants(`${p.key}.inputs_embeds`)) {
      const emb = new Float32Array(k * 77 * width)
      ids.forEach((id, i) => emb.set(table.subarray(Number(id) * width, (Number(id) + 1) * width), i * width))
      for (const r of rows) {
        const n = Math.min(r.data.length / width, 77 - r.start)
        emb.set(r.data.subarray(0, n * width), (r.row * 77 + r.start) * width)
      }
      out[`${p.key}.inputs_embeds`] = f32([k, 77, width], emb)
    }
    const hidden = (await set.encodeText(ids, k, 1, rows)).data as Float32Array
    out[`${p.key}.hidden`] = f32([k, 77, width], hidden)
    if (ctx.wants(`${p.key}.hidden_clip_skip2`))
      out[`${p.key}.hidden_clip_skip2`] = f32(
        [k, 77, width],
        (await set.encodeText(ids, k, 2, rows)).data as Float32Array,
      )
    if (ctx.wants(`${p.key}.cond_no_norm`)) {
      const cond = new Float32Array(hidden.length)
      for (let r = 0; r < k * 77; r++)
        for (let j = 0; j < width; j++)
          cond[r * width + j] = Math.fround((hidden[r * width + j] as number) * (mult[r] as number))
      out[`${p.key}.cond_no_norm`] = f32([1, 77 * k, width], cond)
    }
  }
  return out
}
