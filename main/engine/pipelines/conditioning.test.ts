import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import type { EmbeddingFile } from '../../model-formats/embedding'
import type { EmbeddingRows } from '../runtime/model-set'
import { createScheduler } from '../schedulers'
import { encodePrompts } from './conditioning'
import { coreTxt2Img } from './core'
import { SeededNoise } from './noise'
import type { DiffusionModel } from './types'

/**
 * Text encoder stub (width 2): a token's row is [id, 1]; an embedding row replaces it with the given vector, as the
 * real graph's embeds_override does. Records each call's ids and rows.
 */
function stubModel(): DiffusionModel & { texts: number[][]; rowsSeen: EmbeddingRows[][] } {
  const texts: number[][] = []
  const rowsSeen: EmbeddingRows[][] = []
  return {
    id: 'stub',
    texts,
    rowsSeen,
    tokenEmbeddingWidth: () => Promise.resolve(2),
    async encodeText(ids, batch, _skip, rows = []) {
      texts.push(Array.from(ids, Number))
      rowsSeen.push([...rows])
      const seq = ids.length / batch
      const out = new Float32Array(ids.length * 2)
      ids.forEach((v, i) => {
        out[i * 2] = Number(v)
        out[i * 2 + 1] = 1
      })
      for (const r of rows)
        for (let k = 0; k < r.data.length / 2 && r.start + k < seq; k++)
          out.set(r.data.subarray(k * 2, k * 2 + 2), (r.row * seq + r.start + k) * 2)
      return new ort.Tensor('float32', out, [batch, seq, 2])
    },
    async unet(sample, _t, context) {
      // eps = the context's first token-row value after BOS (row 1, feature 0), per batch row
      const [b = 1, , h = 1, w = 1] = sample.dims
      const per = (context.data as Float32Array).length / b
      const out = new Float32Array(b * 4 * h * w)
      for (let i = 0; i < b; i++)
        out.fill((context.data as Float32Array)[i * per + 2]! / 10000, i * 4 * h * w)
      return new ort.Tensor('float32', out, [b, 4, h, w])
    },
    encode: () => Promise.reject(new Error('unused')),
    decode: () => Promise.reject(new Error('unused')),
  }
}

/** One token per word: a word's id is 1000 + its length; "emb..." words 100 + the sum of their char codes. */
const encode = (t: string): number[] =>
  t
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((w) =>
      w.startsWith('emb') ? 100 + [...w].reduce((a, ch) => a + ch.charCodeAt(0), 0) : 1000 + w.length,
    )

const emb = (name: string, vectors: number[]): EmbeddingFile => ({
  name,
  file: `/x/${name}.pt`,
  format: 'a1111-pt',
  vectors: vectors.length / 2,
  width: 2,
  vec: { data: Float32Array.from(vectors), vectors: vectors.length / 2, width: 2 },
})

describe('encodePrompts: textual-inversion embeddings', () => {
  it('inserts the vectors at the name (placeholders, fix offset + BOS), weighted, in prompt and negative', async () => {
    const m = stubModel()
    const c = await encodePrompts({
      model: m,
      encode,
      prompt: 'a (embcat:1.5) b',
      negativePrompt: 'embneg',
      batch: 1,
      cfg: true,
      embeddings: [emb('embcat', [7, 8, 9, 10]), emb('embneg', [3, 4]), emb('other', [1, 1, 1, 1, 1, 1])],
    })
    expect(c.embeddings).toEqual(['embcat', 'embneg'])
    // cond: BOS a [emb emb] b EOS...; placeholders hold id 0
    const condIds = m.texts.find((t) => t[1] === 1001) as number[]
    expect(condIds.slice(0, 6)).toEqual([49406, 1001, 0, 0, 1001, 49407])
    const condRows = m.rowsSeen[m.texts.indexOf(condIds)] as EmbeddingRows[]
    expect(condRows.map((r) => [r.row, r.start, Array.from(r.data)])).toEqual([[0, 2, [7, 8, 9, 10]]])
    const negRows = m.rowsSeen.find((r) => r.length && r[0]?.data[0] === 3) as EmbeddingRows[]
    expect(negRows[0]?.start).toBe(1)
    // the uncond block (first) starts with the negative embedding's vector
    const d = c.context.data as Float32Array
    expect([d[2], d[3]]).toEqual([3, 4].map((x) => expect.closeTo(x, 0) as unknown as number))
  })

  it('skips embeddings of another width; none given: the name is plain text', async () => {
    const m = stubModel()
    const wide: EmbeddingFile = {
      ...emb('embcat', [1, 2]),
      width: 768,
      vec: { data: new Float32Array(768), vectors: 1, width: 768 },
    }
    const c = await encodePrompts({
      model: m,
      encode,
      prompt: 'embcat',
      negativePrompt: '',
      batch: 1,
      cfg: false,
      embeddings: [wide],
    })
    expect(c.embeddings).toEqual([])
    expect(m.texts[0]?.slice(0, 3)).toEqual([49406, encode('embcat')[0], 49407])
  })
})

describe('encodePrompts: prompt editing and alternation', () => {
  it('gives each model call its context; every distinct text is encoded once', async () => {
    const m = stubModel()
    const c = await encodePrompts({
      model: m,
      encode,
      prompt: '[cat:horse:2] [x|yy]',
      negativePrompt: '[ab:abc:0.5]',
      batch: 1,
      cfg: true,
      scheduleSteps: 4,
    })
    expect(c.contextAt).toBeDefined()
    const firstIds = async (step: number): Promise<[number, number]> => {
      const ctx = c.contextAt!(step) as ort.Tensor
      const d = ctx.data as Float32Array
      const per = d.length / 2
      return [d[2]!, d[per + 2]!] // uncond and cond row 1, feature 0
    }
    const got = []
    for (let i = 0; i < 5; i++) got.push(await firstIds(i))
    // uncond: ab until step 2 (0.5 * 4), then abc; cond first word: cat until step 2, then horse
    expect(got.map(([u]) => u)).toEqual([1002, 1002, 1002, 1003, 1003])
    expect(got.map(([, k]) => k)).toEqual([1003, 1003, 1003, 1005, 1005])
    const encoded = m.texts.map((t) => t.slice(1, 3).join(','))
    expect(new Set(encoded).size).toBe(encoded.length) // no text twice
    // cond: cat x, cat yy, horse x, horse yy; uncond: ab, abc
    expect(m.texts.length).toBe(6)
  })

  it('the denoise loop asks for the context of every step', async () => {
    const m = stubModel()
    const c = await encodePrompts({
      model: m,
      encode,
      prompt: '[cat:horse:0.5]',
      negativePrompt: '',
      batch: 1,
      cfg: false,
      scheduleSteps: 4,
    })
    const asked: number[] = []
    const r = await coreTxt2Img({
      model: m,
      scheduler: createScheduler('Euler'),
      steps: 4,
      context: c.context,
      contextAt: (i) => {
        asked.push(i)
        return c.contextAt!(i)
      },
      guidanceScale: 1,
      withUncond: false,
      noise: new SeededNoise([1]),
      shape: { batch: 1, channels: 4, height: 1, width: 1 },
    })
    expect(asked).toEqual([0, 1, 2, 3])
    expect(r.latents.length).toBe(4)
  })

  it('without editing there is no per-step hook', async () => {
    const c = await encodePrompts({
      model: stubModel(),
      encode,
      prompt: 'a [b] c',
      negativePrompt: '',
      batch: 1,
      cfg: true,
      scheduleSteps: 20,
    })
    expect(c.contextAt).toBeUndefined()
  })
})
