import { describe, expect, it } from 'vitest'
import { encodeChunk } from './png-chunks'
import { findParams, parseInfotext } from './infotext'
import { hostilePng, iTxtBomb, pngWithChunks, quadraticInfotext, zTxtBomb } from './hostile-fixtures'
import { MAX_PNG_TEXT_CHUNK, readGenerationParameters, readPngText, textChunk } from './index'

// A1111's re_param, the reference the linear scanner must agree with.
const RE_PARAM = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g
const reference = (line: string): [string, string][] =>
  [...line.matchAll(RE_PARAM)].map((m) => [m[1] as string, m[2] as string])

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('infotext parser is linear and matches A1111 (attack 4)', () => {
  it('finds the same key/value pairs as re_param on 20k random lines', () => {
    const alphabet = [
      'a',
      'Z',
      '0',
      '_',
      ' ',
      '-',
      '/',
      ':',
      ',',
      '"',
      '\\',
      '\t',
      '\r',
      '{',
      '}',
      'é',
      '\u2028',
      '\u00a0',
      '\ufeff',
    ]
    const next = rng(18)
    for (let i = 0; i < 20_000; i++) {
      const len = Math.floor(next() * 40)
      let line = ''
      for (let j = 0; j < len; j++) line += alphabet[Math.floor(next() * alphabet.length)]
      expect(findParams(line), JSON.stringify(line)).toEqual(reference(line))
    }
    const real =
      'Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x768, ' +
      'Lora hashes: "a: 1, b: 2", Outpaint: left 0 top 0 right 64 bottom 0, Version: v1.10.1'
    expect(findParams(real)).toEqual(reference(real))
  })

  it('keeps Civitai Hashes / resources parsing', () => {
    const p = parseInfotext(
      'cat\nSteps: 2, Sampler: Euler, Seed: 3, Hashes: {"model": "abc"}, Civitai resources: [{"type":"lora","weight":0.5}]',
    )
    expect(p).toMatchObject({
      steps: 2,
      seed: 3,
      hashes: { model: 'abc' },
      civitaiResources: [{ type: 'lora', weight: 0.5 }],
    })
    expect(p.extra).toEqual({})
    const q = parseInfotext('cat\nSteps: 2, Sampler: Euler, Hashes: {}, Seed: 3, Hashes: {"m": "x"}')
    expect(q.hashes).toEqual({ m: 'x' })
  })

  it('parses a 512 KB hostile line in well under a second', () => {
    const text = quadraticInfotext(512 * 1024)
    const t0 = performance.now()
    const p = parseInfotext(text)
    expect(performance.now() - t0).toBeLessThan(3000) // the regex reader took 1.5 s for 32 KB, so minutes for this
    expect(p).toMatchObject({ steps: 2, extra: { Aa: '1', Bb: '2' } })
  })
})

describe('PNG text chunks are capped (attack 4)', () => {
  it('a zTXt or iTXt chunk inflating to 1 GiB is skipped without being inflated', () => {
    for (const bomb of [zTxtBomb(1024), iTxtBomb(1024)]) {
      expect(bomb.length).toBeLessThan(1_200_000)
      const png = pngWithChunks([bomb, textChunk('parameters', 'cat\nSteps: 3, Sampler: Euler, Seed: 4')])
      const before = process.memoryUsage().rss
      const t0 = performance.now()
      const r = readGenerationParameters(png)
      expect(performance.now() - t0).toBeLessThan(3000)
      expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024)
      expect(r?.params).toMatchObject({ prompt: 'cat', steps: 3, seed: 4 })
    }
  })

  it('compressed text up to the cap is still read', () => {
    const png = pngWithChunks([zTxtBomb(1)])
    const [e] = readPngText(png)
    expect(e?.text.length).toBe(1 << 20)
    expect(MAX_PNG_TEXT_CHUNK).toBeGreaterThan(1 << 20)
  })

  it('caps the total text read from one PNG', () => {
    const big = 'x'.repeat(3 * 1024 * 1024)
    const chunks = Array.from({ length: 5 }, (_, i) =>
      encodeChunk('tEXt', Buffer.from(`k${i}\0${big}`, 'latin1')),
    )
    const entries = readPngText(pngWithChunks(chunks))
    expect(entries.map((e) => e.keyword)).toEqual(['k0', 'k1'])
  })

  it('the combined hostile PNG is read in about a second', () => {
    const t0 = performance.now()
    const r = readGenerationParameters(hostilePng())
    expect(performance.now() - t0).toBeLessThan(3000)
    expect(r?.params.steps).toBe(2)
  })
})
