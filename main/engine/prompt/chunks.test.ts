import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  applyWeights,
  CLIP_CHUNKING,
  emptyChunk,
  flattenChunks,
  padToSameLength,
  tokenizePrompt,
} from './chunks'
import type { EncodeFn } from './chunks'
import { preparePrompts } from './index'

const BOS = 49406
const EOS = 49407
const COMMA = 267

/** Fake tokenizer: one id per word, ',' is its own token (id 267); ids are stable per word. */
function fakeTokenizer(): EncodeFn & { vocab: Map<string, number> } {
  const vocab = new Map<string, number>([[',', COMMA]])
  const encode = (text: string): number[] =>
    (text.match(/[^\s,]+|,/g) ?? []).map((w) => {
      let id = vocab.get(w)
      if (id === undefined) {
        id = 1000 + vocab.size
        vocab.set(w, id)
      }
      return id
    })
  return Object.assign(encode, { vocab })
}

const words = (n: number, prefix = 'w'): string =>
  Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(' ')

describe('tokenizePrompt (A1111 tokenize_line)', () => {
  it('short prompt: one chunk BOS + tokens + EOS padding, weights per token', () => {
    const enc = fakeTokenizer()
    const r = tokenizePrompt('a (cat:1.5) [dog]', enc)
    expect(r.chunks).toHaveLength(1)
    const c = r.chunks[0]!
    expect(c.tokens).toHaveLength(77)
    expect(c.tokens[0]).toBe(BOS)
    expect(c.tokens.slice(1, 4)).toEqual([enc.vocab.get('a'), enc.vocab.get('cat'), enc.vocab.get('dog')])
    expect(c.tokens.slice(4)).toEqual(new Array(73).fill(EOS))
    expect(c.weights.slice(0, 5)).toEqual([1, 1, 1.5, 1 / 1.1, 1])
    expect(r.tokenCount).toBe(3)
  })

  it('empty prompt gives one empty chunk identical to emptyChunk()', () => {
    const r = tokenizePrompt('', fakeTokenizer())
    expect(r.chunks).toEqual([emptyChunk()])
    expect(r.tokenCount).toBe(0)
  })

  it('> 75 tokens without commas → 2 chunks, 75 + rest', () => {
    const enc = fakeTokenizer()
    const r = tokenizePrompt(words(80), enc)
    expect(r.chunks).toHaveLength(2)
    expect(r.chunks[0]!.tokens.slice(1, 76)).toEqual(enc(words(75)))
    expect(r.chunks[0]!.tokens[76]).toBe(EOS)
    expect(r.chunks[1]!.tokens.slice(1, 6)).toEqual(enc(words(80)).slice(75))
    expect(r.tokenCount).toBe(80)
  })

  it('exactly 75 tokens stay in one chunk; 76 make two', () => {
    expect(tokenizePrompt(words(75), fakeTokenizer()).chunks).toHaveLength(1)
    expect(tokenizePrompt(words(76), fakeTokenizer()).chunks).toHaveLength(2)
  })

  it('comma backtrack: text after a comma within 20 tokens of the end moves to the next chunk', () => {
    const enc = fakeTokenizer()
    // 70 words, comma (index 70), 10 more words: at token 75 the comma is 5 from the end
    const r = tokenizePrompt(`${words(70)}, ${words(10, 'x')}`, enc)
    expect(r.chunks).toHaveLength(2)
    const first = r.chunks[0]!.tokens
    expect(first.slice(1, 72)).toEqual([...enc(words(70)), COMMA])
    expect(first.slice(72)).toEqual(new Array(5).fill(EOS))
    expect(r.chunks[1]!.tokens.slice(1, 11)).toEqual(enc(words(10, 'x')))
    expect(r.chunks[1]!.tokens[11]).toBe(EOS)
    expect(r.tokenCount).toBe(75 + 10)
  })

  it.each([
    [55, true], // 75 - 55 = 20 → backtrack
    [54, false], // 21 → no backtrack
  ])('comma at index %i → backtrack %s', (commaAt, backtracks) => {
    const enc = fakeTokenizer()
    const r = tokenizePrompt(`${words(commaAt)}, ${words(80 - commaAt, 'x')}`, enc)
    const firstLen = r.chunks[0]!.tokens.indexOf(EOS) - 1
    expect(firstLen).toBe(backtracks ? commaAt + 1 : 75)
  })

  it('commaPaddingBacktrack 0 disables backtracking', () => {
    const r = tokenizePrompt(`${words(70)}, ${words(10, 'x')}`, fakeTokenizer(), {
      ...CLIP_CHUNKING,
      commaPaddingBacktrack: 0,
    })
    expect(r.chunks[0]!.tokens.indexOf(EOS)).toBe(76)
  })

  it('a comma that is the 76th token goes to the next chunk', () => {
    const enc = fakeTokenizer()
    const r = tokenizePrompt(`${words(75)}, y`, enc)
    expect(r.chunks[1]!.tokens.slice(1, 3)).toEqual([COMMA, enc.vocab.get('y')])
  })

  it('BREAK pads the chunk and starts a new one; weights survive', () => {
    const enc = fakeTokenizer()
    const r = tokenizePrompt('a b BREAK (c:2)', enc)
    expect(r.chunks).toHaveLength(2)
    expect(r.chunks[0]!.tokens.slice(0, 4)).toEqual([BOS, enc.vocab.get('a'), enc.vocab.get('b'), EOS])
    expect(r.chunks[1]!.tokens.slice(0, 3)).toEqual([BOS, enc.vocab.get('c'), EOS])
    expect(r.chunks[1]!.weights[1]).toBe(2)
    expect(r.tokenCount).toBe(75 + 1)
  })

  it('BREAK at the start gives an empty first chunk', () => {
    const r = tokenizePrompt('BREAK a', fakeTokenizer())
    expect(r.chunks).toHaveLength(2)
    expect(r.chunks[0]).toEqual(emptyChunk())
  })

  it('weights follow tokens across a chunk boundary', () => {
    const r = tokenizePrompt(`${words(74)} (p q r:1.4)`, fakeTokenizer())
    expect(r.chunks[0]!.weights[75]).toBe(1.4)
    expect(r.chunks[1]!.weights.slice(1, 3)).toEqual([1.4, 1.4])
  })

  it('SD2-style pad id replaces everything after the first EOS', () => {
    const r = tokenizePrompt('a', fakeTokenizer(), { ...CLIP_CHUNKING, pad: 0 })
    expect(r.chunks[0]!.tokens.slice(0, 4)).toEqual([BOS, 1001, EOS, 0])
    expect(r.chunks[0]!.tokens[76]).toBe(0)
  })
})

describe('padToSameLength / flattenChunks / preparePrompts', () => {
  it('pads uncond and cond to the same K with empty chunks', () => {
    const enc = fakeTokenizer()
    const [a, b] = padToSameLength([tokenizePrompt(words(160), enc), tokenizePrompt('neg', enc)])
    expect(a!.chunks).toHaveLength(3)
    expect(b!.chunks).toHaveLength(3)
    expect(b!.chunks[1]).toEqual(emptyChunk())
    expect(b!.chunks[2]).toEqual(emptyChunk())
    const flat = flattenChunks(b!)
    expect(flat.ids.length).toBe(3 * 77)
    expect(flat.chunkCount).toBe(3)
    expect(flat.ids[77]).toBe(BOS)
    expect(flat.ids[78]).toBe(EOS)
  })

  it('preparePrompts: LoRA tags out, AND sub-prompts, all padded to one chunk count', () => {
    const enc = fakeTokenizer()
    const p = preparePrompts(`a cat <lora:style:0.8> AND ${words(90)} :0.5`, 'ugly <lora:bad:1>', enc)
    expect(p.loras.map((l) => [l.name, l.weight])).toEqual([['style', 0.8]])
    expect(p.cond.map((c) => c.weight)).toEqual([1, 0.5])
    expect(p.chunkCount).toBe(2)
    expect(p.cond.every((c) => c.tokens.chunks.length === 2)).toBe(true)
    expect(p.uncond.chunks).toHaveLength(2)
    expect(p.warnings.some((w) => w.includes('<lora:bad:1>'))).toBe(true)
  })
})

describe('applyWeights (emphasis "Original")', () => {
  it('multiplies each row by its weight and restores the per-chunk mean', () => {
    const rows = 77 * 2
    const dim = 3
    const emb = new Float32Array(rows * dim)
    for (let i = 0; i < emb.length; i++) emb[i] = Math.sin(i * 0.37) + 0.2
    const w = new Float32Array(rows).fill(1)
    w[3] = 1.5
    w[80] = 0.5
    const out = applyWeights(emb, w)
    for (let k = 0; k < 2; k++) {
      let so = 0
      let sn = 0
      for (let i = k * 77 * dim; i < (k + 1) * 77 * dim; i++) {
        so += emb[i]!
        sn += out[i]!
      }
      expect(sn / (77 * dim)).toBeCloseTo(so / (77 * dim), 6)
    }
    // ratio between weighted and unweighted rows inside one chunk = weight ratio
    const scale = out[0]! / emb[0]!
    expect(out[3 * dim]! / emb[3 * dim]!).toBeCloseTo(1.5 * scale, 5)
  })

  it('is the identity when all weights are 1', () => {
    const emb = Float32Array.from({ length: 77 * 4 }, (_, i) => i * 0.01 - 1)
    expect(applyWeights(emb, new Float32Array(77).fill(1))).toEqual(emb)
  })

  it('chunkSize = rows normalises over the whole tensor', () => {
    const rows = 154
    const emb = Float32Array.from({ length: rows * 2 }, (_, i) => 1 + (i % 7) * 0.1)
    const w = new Float32Array(rows).fill(1)
    w[0] = 3
    const out = applyWeights(emb, w, rows)
    const mean = (a: Float32Array): number => a.reduce((s, v) => s + v, 0) / a.length
    expect(mean(out)).toBeCloseTo(mean(emb), 6)
  })
})

const oracleManifest = path.resolve(__dirname, '../../../../shared/oracle/manifest.json')
const haveOracle = existsSync(oracleManifest)
if (!haveOracle) console.warn(`skipping CLIP id tests: ${oracleManifest} not found`)

describe.skipIf(!haveOracle)('with real CLIP BPE ids (oracle tokenizer case)', () => {
  interface OraclePrompt {
    prompt: string
    bpe_ids: number[]
  }
  const load = (): OraclePrompt[] => {
    // Python's json writes -Infinity/NaN, which JSON.parse rejects
    const text = readFileSync(oracleManifest, 'utf8').replace(/-?Infinity|NaN/g, 'null')
    const manifest = JSON.parse(text) as {
      cases: { name: string; prompts?: OraclePrompt[] }[]
    }
    return manifest.cases.find((c) => c.name === 'tokenizer')?.prompts ?? []
  }

  it('the 82-token prompt chunks into 75 + 7, breaking after the comma at index 74', () => {
    const prompts = load()
    const long = prompts.find((p) => p.bpe_ids.length > 75)!
    const encode: EncodeFn = (t) => (t === long.prompt ? long.bpe_ids : [])
    const r = tokenizePrompt(long.prompt, encode)
    expect(r.chunks).toHaveLength(2)
    expect(r.chunks[0]!.tokens).toEqual([BOS, ...long.bpe_ids.slice(0, 75), EOS])
    expect(r.chunks[0]!.tokens[75]).toBe(COMMA)
    expect(r.chunks[1]!.tokens.slice(0, 9)).toEqual([BOS, ...long.bpe_ids.slice(75), EOS])
    expect(r.tokenCount).toBe(82)
  })

  it('every short oracle prompt gives the oracle 77 ids (first chunk)', () => {
    for (const p of load().filter((q) => q.bpe_ids.length <= 75 && !/[()[\]\\<]|BREAK/.test(q.prompt))) {
      const r = tokenizePrompt(p.prompt, (t) => (t === p.prompt ? p.bpe_ids : []))
      const expected = [BOS, ...p.bpe_ids, ...new Array(76 - p.bpe_ids.length).fill(EOS)]
      expect(r.chunks[0]!.tokens).toEqual(expected)
    }
  })
})

// Real tokenizer (main/engine/tokenizer) with the vocabulary the repository ships (resources/tokenizer/).
const tokenizerDir = path.resolve(__dirname, '../tokenizer')
const bpeFile = path.resolve(__dirname, '../../../resources/tokenizer/bpe_simple_vocab_16e6.txt.gz')

describe('with the real CLIP tokenizer', () => {
  it('chunks a long prompt with BREAK and weights', async () => {
    const mod = (await import(/* @vite-ignore */ path.join(tokenizerDir, 'index.ts'))) as {
      ClipTokenizer?: { fromBpeGz(file: string): Promise<{ encode(text: string): number[] }> }
    }
    if (!mod.ClipTokenizer) {
      console.warn('tokenizer module has no ClipTokenizer export; skipped')
      return
    }
    const tok = await mod.ClipTokenizer.fromBpeGz(bpeFile)
    const encode: EncodeFn = (t) => tok.encode(t)
    expect(encode('a photo of a cat')).toEqual([320, 1125, 539, 320, 2368])
    const r = tokenizePrompt('a photo of a (cat:1.3) BREAK on the moon', encode)
    expect(r.chunks).toHaveLength(2)
    expect(r.chunks[0]!.tokens.slice(0, 7)).toEqual([BOS, 320, 1125, 539, 320, 2368, EOS])
    expect(r.chunks[0]!.weights[5]).toBe(1.3)

    // the oracle's 82-token prompt, with an emphasised phrase: same ids as the oracle, weights on the right tokens
    const long =
      'a highly detailed photograph of a majestic lion resting on a rock at sunset, golden light, dramatic clouds, ' +
      'savanna landscape, acacia trees in the distance, shallow depth of field, bokeh, 85mm lens, award winning ' +
      'wildlife photography, national geographic, ultra realistic, 8k resolution, sharp focus, intricate fur details, ' +
      'warm color palette, cinematic composition, masterpiece, best quality, trending on artstation'
    const plain = tokenizePrompt(long, encode)
    const weighted = tokenizePrompt(long.replace('best quality', '(best quality:1.2)'), encode)
    expect(plain.tokenCount).toBe(82)
    expect(weighted.chunks.map((c) => c.tokens)).toEqual(plain.chunks.map((c) => c.tokens))
    // 'best quality' = ids 75, 76 of the prompt = positions 1, 2 of chunk 2
    expect(weighted.chunks[1]!.tokens.slice(1, 3)).toEqual([949, 3027])
    expect(weighted.chunks[1]!.weights.slice(0, 5)).toEqual([1, 1.2, 1.2, 1, 1])
  })
})
