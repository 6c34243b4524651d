import type { EncodeFn } from './chunks'

/**
 * Textual-inversion lookup as A1111 does it (`textual_inversion.py::EmbeddingDatabase`): every embedding's name is
 * tokenized like prompt text, and a prompt fragment's tokens are matched against those id sequences at every
 * position, longest name first. So matching is on tokens, not characters: "tinyemb," and "(tinyemb:1.2)" use
 * "tinyemb", while "tiny emb" (other tokens) does not; an embedding whose name's tokens are a prefix of another's
 * ("tinyemb" / "tinyemb-v2") loses to the longer one where both match.
 */

export interface PromptEmbedding {
  name: string
  /** Positions it takes in the prompt (its vector count). */
  vectors: number
}

export interface EmbeddingMatch<E extends PromptEmbedding = PromptEmbedding> {
  embedding: E
  /** Prompt tokens the name covers. */
  length: number
}

export class EmbeddingIndex<E extends PromptEmbedding = PromptEmbedding> {
  private readonly byFirst = new Map<number, { ids: number[]; embedding: E }[]>()

  constructor(embeddings: readonly E[], encode: EncodeFn) {
    // Stable order for equal lengths: by name (A1111's is its directory walk order).
    const sorted = [...embeddings].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const e of sorted) {
      const ids = [...encode(e.name)]
      const first = ids[0]
      if (first === undefined) continue
      const list = this.byFirst.get(first) ?? []
      list.push({ ids, embedding: e })
      list.sort((a, b) => b.ids.length - a.ids.length)
      this.byFirst.set(first, list)
    }
  }

  get size(): number {
    let n = 0
    for (const l of this.byFirst.values()) n += l.length
    return n
  }

  /** The embedding whose name's tokens start at `position` (A1111's find_embedding_at_position). */
  find(tokens: readonly number[], position: number): EmbeddingMatch<E> | undefined {
    const candidates = this.byFirst.get(tokens[position] as number)
    if (!candidates) return undefined
    for (const c of candidates) {
      let ok = position + c.ids.length <= tokens.length
      for (let i = 0; ok && i < c.ids.length; i++) ok = tokens[position + i] === c.ids[i]
      if (ok) return { embedding: c.embedding, length: c.ids.length }
    }
    return undefined
  }

  /** Names of the embeddings a text uses (tokenized with `encode`), in order of first use. */
  usedIn(text: string, encode: EncodeFn): string[] {
    const tokens = encode(text)
    const out: string[] = []
    for (let p = 0; p < tokens.length;) {
      const m = this.find(tokens, p)
      if (!m) {
        p++
        continue
      }
      if (!out.includes(m.embedding.name)) out.push(m.embedding.name)
      p += m.length
    }
    return out
  }
}

/**
 * The token-embedding rows to replace for a chunked prompt (A1111's EmbeddingsWithFixes): for each fix of chunk k,
 * rows offset+1 ... of that chunk get the embedding's vectors. `row` is the chunk index (the chunks run as one
 * batch through the text encoder); `vectorsOf(name)` gives the [vectors, width] data.
 */
export function embeddingRows(
  chunks: readonly { fixes?: readonly { offset: number; name: string }[] }[],
  vectorsOf: (name: string) => Float32Array,
): { row: number; start: number; data: Float32Array }[] {
  const out: { row: number; start: number; data: Float32Array }[] = []
  chunks.forEach((c, k) => {
    for (const f of c.fixes ?? []) out.push({ row: k, start: f.offset + 1, data: vectorsOf(f.name) })
  })
  return out
}
