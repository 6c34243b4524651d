/**
 * Splits a prompt into segments for syntax highlighting (A1111 syntax): `<lora:name:w>` tags, brackets,
 * `:1.2` weights, BREAK / AND keywords, escapes, known textual-inversion embeddings (by file name, as whole
 * words, any case: the tokenizer lower-cases), plain text. The segments concatenate back to the input.
 */
export type SegmentKind =
  'text' | 'lora' | 'bracket' | 'weight' | 'keyword' | 'escape' | 'unbalanced' | 'embedding'

export interface Segment {
  kind: SegmentKind
  text: string
}

const TOKEN =
  /(<(?:lora|lyco|hypernet):[^>\n]*>)|(\\[()[\]\\])|(:\s*-?\d*\.?\d+\s*(?=\)))|(\bBREAK\b|\bAND\b(?:\s*:\s*-?\d*\.?\d+)?)|([()[\]])/g

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** A matcher of the given embedding names as whole words (longest first), or undefined for none. */
function embeddingMatcher(names: readonly string[]): RegExp | undefined {
  const list = [...new Set(names.filter((n) => n.trim() !== ''))].sort((a, b) => b.length - a.length)
  if (!list.length) return undefined
  return new RegExp(`(?<![\\p{L}\\p{N}_])(?:${list.map(escapeRe).join('|')})(?![\\p{L}\\p{N}_])`, 'giu')
}

export function highlightPrompt(prompt: string, embeddings: readonly string[] = []): Segment[] {
  const out: Segment[] = []
  const words = embeddingMatcher(embeddings)
  const pushPlain = (kind: SegmentKind, text: string): void => {
    if (!text) return
    const last = out[out.length - 1]
    if (last && last.kind === kind && kind === 'text') last.text += text
    else out.push({ kind, text })
  }
  const push = (kind: SegmentKind, text: string): void => {
    if (kind !== 'text' || !words) return pushPlain(kind, text)
    let at = 0
    for (const m of text.matchAll(words)) {
      pushPlain('text', text.slice(at, m.index))
      pushPlain('embedding', m[0])
      at = (m.index ?? 0) + m[0].length
    }
    pushPlain('text', text.slice(at))
  }
  // Bracket balance decides which brackets are marked as unbalanced.
  const stack: { ch: string; index: number }[] = []
  const unbalanced = new Set<number>()
  let i = 0
  let m: RegExpExecArray | null
  TOKEN.lastIndex = 0
  const tokens: { kind: SegmentKind; text: string; index: number }[] = []
  while ((m = TOKEN.exec(prompt)) !== null) {
    const [whole, lora, escape, weight, keyword, bracket] = m
    const kind: SegmentKind = lora
      ? 'lora'
      : escape
        ? 'escape'
        : weight
          ? 'weight'
          : keyword
            ? 'keyword'
            : bracket
              ? 'bracket'
              : 'text'
    if (bracket) {
      if (bracket === '(' || bracket === '[') stack.push({ ch: bracket, index: tokens.length })
      else {
        const want = bracket === ')' ? '(' : '['
        const top = stack[stack.length - 1]
        if (top && top.ch === want) stack.pop()
        else unbalanced.add(tokens.length)
      }
    }
    tokens.push({ kind, text: whole, index: m.index })
  }
  for (const s of stack) unbalanced.add(s.index)
  tokens.forEach((t, n) => {
    push('text', prompt.slice(i, t.index))
    push(unbalanced.has(n) ? 'unbalanced' : t.kind, t.text)
    i = t.index + t.text.length
  })
  push('text', prompt.slice(i))
  return out
}

/** `<lora:name:weight>` tags in a prompt (name and weight), in order. */
export function loraTags(prompt: string): { name: string; weight: number }[] {
  const out: { name: string; weight: number }[] = []
  for (const m of prompt.matchAll(/<lora:([^:>]+)(?::([^:>]*))?[^>]*>/g)) {
    const w = Number(m[2] ?? '1')
    out.push({ name: (m[1] ?? '').trim(), weight: Number.isFinite(w) ? w : 1 })
  }
  return out
}
