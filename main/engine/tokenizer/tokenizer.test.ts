import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import { gunzipSync } from 'node:zlib'
import { cleanText, htmlUnescape } from './bpe'
import {
  bundledTokenizer,
  CLIP_EOS,
  ClipTokenizer,
  findTokenizer,
  locateTokenizer,
  TokenizerError,
} from './index'

const shared = path.resolve(repoRoot(), '../shared')
const O = path.join(shared, 'oracle')
const gz = path.join(O, 'clip', 'bpe_simple_vocab_16e6.txt.gz')
const hfDir = path.join(O, 'tiny-sd15-diffusers', 'tokenizer')
const haveOracle = existsSync(gz) && existsSync(hfDir)
if (!haveOracle) console.warn(`skipping tokenizer oracle tests: ${gz} or ${hfDir} not found`)

interface OraclePrompt {
  prompt: string
  bpe_ids: number[]
  truncated: boolean
  decoded?: string
}

function tokenizerCase(manifest: string): OraclePrompt[] {
  // Python's json writes -Infinity / NaN (scheduler configs); they are not JSON.
  const text = readFileSync(manifest, 'utf8').replace(/(:\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g, '$1null')
  const m = JSON.parse(text) as { cases: { name: string; prompts: OraclePrompt[] }[] }
  const c = m.cases.find((x) => x.name === 'tokenizer')
  if (!c) throw new Error(`${manifest} has no tokenizer case`)
  return c.prompts
}

async function idRows(file: string, name: string, width = 77): Promise<number[][]> {
  const st = await SafetensorsFile.open(file)
  try {
    const flat = Array.from(await st.readFloat32(name))
    return Array.from({ length: flat.length / width }, (_, i) => flat.slice(i * width, (i + 1) * width))
  } finally {
    await st.close()
  }
}

describe.skipIf(!haveOracle)('CLIP tokenizer against the oracle', () => {
  const tok: Record<string, ClipTokenizer> = {}
  let prompts: OraclePrompt[] = []
  let expected: number[][] = []
  beforeAll(async () => {
    tok.gz = await ClipTokenizer.fromBpeGz(gz)
    tok.hf = await ClipTokenizer.fromFolder(hfDir)
    prompts = tokenizerCase(path.join(O, 'manifest.json'))
    expected = await idRows(path.join(O, 'tokenizer.safetensors'), 'input_ids')
  })

  it('the two loaders build the same vocabulary', () => {
    expect(tok.gz!.vocabSize).toBe(49408)
    expect(tok.hf!.vocabSize).toBe(49408)
    expect([tok.gz!.bos, tok.gz!.eos, tok.hf!.bos, tok.hf!.eos]).toEqual([49406, 49407, 49406, 49407])
  })

  for (const which of ['gz', 'hf'] as const) {
    it(`${which}: exact BPE ids, padded ids and decode for every prompt`, () => {
      expect(prompts.length).toBe(21)
      expect(prompts.some((p) => p.truncated)).toBe(true)
      prompts.forEach((p, i) => {
        const t = tok[which]!
        expect(t.encode(p.prompt), p.prompt).toEqual(p.bpe_ids)
        const padded = t.encodePadded(p.prompt)
        expect(Array.from(padded.ids), p.prompt).toEqual(expected[i])
        expect(padded.truncated).toBe(p.truncated)
        if (p.decoded !== undefined) expect(t.decode(p.bpe_ids)).toBe(p.decoded)
      })
    })
  }

  it('SDXL tokenizer_2 padding (0) matches oracle-sdxl input_ids_2', async () => {
    const S = path.join(shared, 'oracle-sdxl')
    if (!existsSync(path.join(S, 'tokenizer.safetensors'))) return
    const sx = tokenizerCase(path.join(S, 'manifest.json'))
    const ids1 = await idRows(path.join(S, 'tokenizer.safetensors'), 'input_ids')
    const ids2 = await idRows(path.join(S, 'tokenizer.safetensors'), 'input_ids_2')
    sx.forEach((p, i) => {
      expect(Array.from(tok.gz!.encodePadded(p.prompt).ids)).toEqual(ids1[i])
      expect(Array.from(tok.gz!.encodePadded(p.prompt, { padToken: 0 }).ids)).toEqual(ids2[i])
    })
  })

  it('edge cases: empty prompt, exact fit, maxLength', () => {
    const t = tok.gz!
    expect(Array.from(t.encodePadded('').ids.slice(0, 3))).toEqual([49406, 49407, 49407])
    const fit = t.encodePadded(Array(75).fill('a').join(' '))
    expect(fit.truncated).toBe(false)
    expect(fit.ids[76]).toBe(CLIP_EOS)
    expect(t.encodePadded(Array(76).fill('a').join(' ')).truncated).toBe(true)
    expect(Array.from(t.encodePadded('a cat', { maxLength: 5 }).ids)).toEqual([
      49406, 320, 2368, 49407, 49407,
    ])
  })
})

describe('text cleaning', () => {
  it('unescapes HTML twice, collapses Python whitespace, lowercases', () => {
    expect(cleanText('  A &amp;amp; B\t\n C\u3000 ')).toBe('a & b c')
    // ftfy first: U+001C is a control character (removed), U+0085 a C1 control (read as Windows-1252 '…'),
    // the BOM is removed; Python whitespace still collapses U+2000-style spaces
    expect(cleanText('x\u001cy\u0085z')).toBe('xy\u2026z')
    expect(cleanText('\ufeffq')).toBe('q')
    expect(cleanText('x\u2003\u2028y')).toBe('x y')
  })
  it('follows Python html.unescape for numeric and legacy references', () => {
    expect(htmlUnescape('a&#3;b &#128; &#x110000; &#0; &#65')).toBe('ab \u20ac \ufffd \ufffd A')
    expect(htmlUnescape('&notit; &copy2 &foo; &amp;lt;')).toBe('\u00acit; \u00a92 &foo; &lt;')
    expect(cleanText('&amp;lt;b&amp;gt;')).toBe('<b>')
  })
})

describe('findTokenizer lookup order', () => {
  let dir = ''
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-tok-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('throws a download hint when nothing is found, and for an explicit path without files', async () => {
    const cacheDir = path.join(dir, 'empty-cache')
    const none = { modelDir: path.join(dir, 'model'), cacheDir, bundled: false as const }
    expect(() => locateTokenizer(none)).toThrow(/missing.*Reinstall/)
    await expect(findTokenizer({ cacheDir, bundled: path.join(dir, 'gone.gz') })).rejects.toBeInstanceOf(
      TokenizerError,
    )
    await expect(findTokenizer({ explicit: path.join(dir, 'nowhere') })).rejects.toMatchObject({
      code: 'tokenizer-missing',
    })
  })

  it('explicit, then the model tokenizer/, then the cache', async () => {
    // The seeded tiny diffusers folder (its tokenizer/ holds vocab.json + merges.txt) and the bundled BPE file.
    const tiny = await ensureTinyModels()
    const bpe = tiny.tokenizer
    const cacheDir = path.join(dir, 'cache')
    await mkdir(cacheDir, { recursive: true })
    await copyFile(bpe, path.join(cacheDir, 'bpe_simple_vocab_16e6.txt.gz'))
    const model = tiny.sd15Diffusers
    expect(locateTokenizer({ explicit: bpe, modelDir: model, cacheDir })).toEqual({
      kind: 'bpe-gz',
      path: bpe,
    })
    expect(locateTokenizer({ modelDir: model, cacheDir })).toEqual({
      kind: 'hf-folder',
      path: path.join(model, 'tokenizer'),
    })
    expect(locateTokenizer({ modelDir: path.join(dir, 'no-model'), cacheDir }).path).toBe(
      path.join(cacheDir, 'bpe_simple_vocab_16e6.txt.gz'),
    )
    const a = await findTokenizer({ cacheDir })
    expect(await findTokenizer({ cacheDir })).toBe(a)
    expect(a.encode('a photo of a cat')).toEqual([320, 1125, 539, 320, 2368])
  })
})

describe('the CLIP vocabulary bundled in resources/', () => {
  const file = bundledTokenizer()

  it('is shipped, and is OpenAI CLIP bpe_simple_vocab_16e6.txt byte for byte (decompressed)', () => {
    expect(file, 'resources/tokenizer/bpe_simple_vocab_16e6.txt.gz').toBeDefined()
    const text = gunzipSync(readFileSync(file!))
    expect(text.length).toBe(3194984)
    expect(createHash('sha256').update(text).digest('hex')).toBe(
      '67603cfda2e032ad77b5f8808af37789d590db664b26df8705d2bf8b3c553fc8',
    )
  })

  it('is the last resort of the lookup: no model tokenizer and an empty cache still tokenize offline', async () => {
    const cacheDir = path.join(os.tmpdir(), 'atelier-tok-none', 'cache')
    expect(locateTokenizer({ modelDir: path.join(cacheDir, 'model'), cacheDir })).toEqual({
      kind: 'bpe-gz',
      path: file,
    })
    const t = await findTokenizer({ cacheDir })
    expect(t.vocabSize).toBe(49408)
    expect(t.encode('a photo of a cat')).toEqual([320, 1125, 539, 320, 2368])
    expect(Array.from(t.encodePadded('a cat').ids.slice(0, 5))).toEqual([49406, 320, 2368, 49407, 49407])
  })

  it.skipIf(!haveOracle)('gives the oracle ids for every oracle prompt', async () => {
    const t = await ClipTokenizer.fromBpeGz(file!)
    const prompts = tokenizerCase(path.join(O, 'manifest.json'))
    const expected = await idRows(path.join(O, 'tokenizer.safetensors'), 'input_ids')
    prompts.forEach((p, i) => {
      expect(t.encode(p.prompt), p.prompt).toEqual(p.bpe_ids)
      expect(Array.from(t.encodePadded(p.prompt).ids)).toEqual(expected[i])
    })
  })
})
