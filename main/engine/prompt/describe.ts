import { parsePromptAttention } from './attention'
import type { ChunkingOptions, EncodeFn } from './chunks'
import { chunkSegments, CLIP_CHUNKING } from './chunks'
import { parseComposablePrompt } from './composable'
import { extractExtraNetworks } from './extra-networks'
import type { ExtraNetworkTag, LoraTag } from './extra-networks'
import { looksLikeMidjourney, parseMidjourneyPrompt } from './midjourney'
import type { MidjourneyPrompt } from './midjourney'
import type { PromptSchedule } from './schedule'
import { promptSchedule } from './schedule'

/** What `atelier prompt` prints for one prompt: every stage of the A1111 pipeline, readable. */
export interface PromptBreakdown {
  input: string
  midjourney?: Pick<MidjourneyPrompt, 'prompt' | 'negativePrompt' | 'width' | 'height' | 'seed' | 'warnings'>
  loras: LoraTag[]
  otherNetworks: ExtraNetworkTag[]
  subPrompts: {
    text: string
    weight: number
    schedule: PromptSchedule
    /** Attention segments of the first schedule entry; BREAK as ["BREAK", -1]. */
    segments: [string, number][]
    /** Known embedding names the text uses (whole words, as A1111 matches them). */
    embeddings: string[]
    /** Per 77-token chunk: how many prompt tokens it holds (only with a tokenizer). */
    chunks?: number[]
    tokenCount?: number
  }[]
  warnings: string[]
}

export interface DescribeOptions {
  steps?: number
  encode?: EncodeFn
  chunking?: ChunkingOptions
  /** Names of the installed embeddings (file names without extension). */
  embeddingNames?: readonly string[]
}

/**
 * Embedding names that occur in a text: any case (the tokenizer lower-cases), not glued to letters, digits or `_`
 * on either side (an approximation of A1111's token matching, for display).
 */
export function embeddingsIn(text: string, names: readonly string[]): string[] {
  const found: string[] = []
  const lower = text.toLowerCase()
  for (const name of [...names].sort((a, b) => b.length - a.length)) {
    const n = name.toLowerCase()
    let i = lower.indexOf(n)
    while (i >= 0) {
      const before = lower[i - 1]
      const after = lower[i + n.length]
      const word = /[\p{L}\p{N}_]/u
      if ((before === undefined || !word.test(before)) && (after === undefined || !word.test(after))) {
        if (!found.includes(name)) found.push(name)
        break
      }
      i = lower.indexOf(n, i + 1)
    }
  }
  return found
}

export function describePrompt(input: string, o: DescribeOptions = {}): PromptBreakdown {
  const warnings: string[] = []
  let text = input
  let midjourney: PromptBreakdown['midjourney']
  if (looksLikeMidjourney(input)) {
    const mj = parseMidjourneyPrompt(input)
    midjourney = {
      prompt: mj.prompt,
      negativePrompt: mj.negativePrompt,
      width: mj.width,
      height: mj.height,
      seed: mj.seed,
      warnings: mj.warnings,
    }
    text = mj.prompt
  }
  const nets = extractExtraNetworks(text)
  warnings.push(...nets.warnings)
  const steps = o.steps ?? 20
  const subPrompts = parseComposablePrompt(nets.text).map((s) => {
    const schedule = promptSchedule(s.text, { steps })
    const first = schedule[0]?.[1] ?? s.text
    const segs = parsePromptAttention(first)
    const entry: PromptBreakdown['subPrompts'][number] = {
      text: s.text,
      weight: s.weight,
      schedule,
      segments: segs.map((g) => (g.type === 'break' ? ['BREAK', -1] : [g.text, g.weight])),
      embeddings: embeddingsIn(s.text, o.embeddingNames ?? []),
    }
    if (o.encode) {
      const tok = chunkSegments(segs, o.encode, o.chunking ?? CLIP_CHUNKING)
      const eos = (o.chunking ?? CLIP_CHUNKING).eos
      entry.chunks = tok.chunks.map((c) => c.tokens.slice(1, -1).filter((t) => t !== eos).length)
      entry.tokenCount = tok.tokenCount
    }
    return entry
  })
  return { input, midjourney, loras: nets.loras, otherNetworks: nets.others, subPrompts, warnings }
}

const fmtW = (w: number): string => (Number.isInteger(w) ? w.toFixed(1) : String(Number(w.toFixed(4))))

/** The breakdown as indented text lines. */
export function formatBreakdown(b: PromptBreakdown): string {
  const out: string[] = [`prompt: ${JSON.stringify(b.input)}`]
  if (b.midjourney) {
    const m = b.midjourney
    out.push('midjourney flags:')
    out.push(`  prompt: ${JSON.stringify(m.prompt)}`)
    if (m.negativePrompt) out.push(`  negative prompt: ${JSON.stringify(m.negativePrompt)}`)
    if (m.width && m.height) out.push(`  size: ${m.width} x ${m.height}`)
    if (m.seed !== undefined) out.push(`  seed: ${m.seed}`)
    for (const w of m.warnings) out.push(`  warning: ${w}`)
  }
  if (b.loras.length) {
    out.push('LoRA tags:')
    for (const l of b.loras)
      out.push(`  ${l.raw}  ->  ${l.name}: text encoder ${fmtW(l.weight)}, UNet ${fmtW(l.unetWeight)}`)
  }
  for (const t of b.otherNetworks) out.push(`unsupported network tag: ${t.raw}`)
  b.subPrompts.forEach((s, i) => {
    const head = b.subPrompts.length > 1 ? `sub-prompt ${i + 1} (AND weight ${fmtW(s.weight)})` : 'text'
    out.push(`${head}: ${JSON.stringify(s.text)}`)
    if (s.schedule.length > 1) {
      out.push('  edits (until step: text):')
      for (const [end, t] of s.schedule) out.push(`    ${String(end).padStart(4)}: ${JSON.stringify(t)}`)
    }
    out.push(s.schedule.length > 1 ? '  weights (first step):' : '  weights:')
    for (const [t, w] of s.segments)
      out.push(t === 'BREAK' && w === -1 ? '    BREAK' : `    ${fmtW(w).padStart(7)}  ${JSON.stringify(t)}`)
    if (s.embeddings.length) out.push(`  embeddings: ${s.embeddings.join(', ')}`)
    if (s.chunks)
      out.push(`  chunks: ${s.chunks.map((n) => `${n}/75`).join(' | ')} (${s.tokenCount ?? 0} tokens)`)
  })
  for (const w of b.warnings) out.push(`warning: ${w}`)
  return out.join('\n')
}
