import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TINY_SD15, writeSd15 } from '../../../bench/fixtures/full-sd15'
import { writeEmbeddingFixture } from '../../model-formats/embedding-fixtures'
import { cli, cliSources, type CliSources } from '../testing'

/**
 * Textual-inversion embeddings (bytes generated here: a kohya .safetensors and an A1111 .pt) install from the
 * Civitai fixture (type TextualInversion) as library entries of type embedding, and generate from the CLI by
 * file name in the prompt and the negative prompt; the checkpoint is a generated tiny SD 1.5.
 */

const EMBEDDINGS = [
  { file: 'glowStyle.safetensors', format: 'safetensors', name: 'Glow Style' },
  { file: 'badPaws.pt', format: 'a1111-pt', name: 'Bad Paws' },
] as const

describe('embeddings from the Civitai fixture to an image', () => {
  let tmp = ''
  let site: CliSources | undefined
  let sources: CliSources['sources']

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-emb-install-'))
    const gen = path.join(tmp, 'generated')
    fs.mkdirSync(gen)
    const ckpt = path.join(gen, 'tinySD15_v1.safetensors')
    writeSd15(ckpt, TINY_SD15, 5)
    for (const [i, e] of EMBEDDINGS.entries())
      await writeEmbeddingFixture(path.join(gen, e.file), e.format, {
        vectors: 2 + i,
        width: 64,
        seed: 20 + i,
      })
    site = await cliSources(tmp, {
      checkpoint: ckpt,
      extraModels: EMBEDDINGS.map((e) => ({
        path: path.join(gen, e.file),
        modelName: e.name,
        type: 'TextualInversion' as const,
        baseModel: 'SD 1.5',
        fileName: e.file,
      })),
    })
    sources = site.sources
  }, 120_000)

  afterAll(async () => {
    await site?.close()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('installs each file as an embedding entry', async () => {
    const ck = await cli('models', 'install', `civitai:${sources.extraCheckpointVersionId}`)
    expect(ck.code, ck.err).toBe(0)
    for (const [i] of EMBEDDINGS.entries()) {
      const r = await cli('models', 'install', `civitai:${sources.extraVersionIds[i]}`)
      expect(r.code, r.err).toBe(0)
    }
    const list = await cli('library', 'list', '--json')
    const entries = JSON.parse(list.out) as { name: string; type: string; path: string }[]
    for (const e of EMBEDDINGS) {
      const stem = e.file.replace(/\.(safetensors|pt)$/, '')
      const rec = entries.find((x) => path.basename(x.path).startsWith(stem))
      expect(rec?.type, e.file).toBe('embedding')
    }
  }, 120_000)

  it('generates with them by file name; the image changes; the infotext names them', async () => {
    const gen = async (out: string, prompt: string, negative: string): Promise<Buffer> => {
      const r = await cli(
        'txt2img',
        '--model',
        'tinySD15_v1',
        '--prompt',
        prompt,
        '--negative',
        negative,
        '--steps',
        '2',
        '--width',
        '64',
        '--height',
        '64',
        '--seed',
        '7',
        '--quiet',
        '--out',
        path.join(tmp, out),
      )
      expect(r.code, `${out}: ${r.err}`).toBe(0)
      return sharp(path.join(tmp, out)).raw().toBuffer()
    }
    const base = await gen('base.png', 'a cat', 'blurry')
    const styled = await gen('styled.png', 'a cat, glowStyle', 'blurry')
    const negative = await gen('negative.png', 'a cat', 'blurry, badPaws')
    expect(styled.equals(base)).toBe(false)
    expect(negative.equals(base)).toBe(false)
    const meta = await sharp(path.join(tmp, 'negative.png')).metadata()
    const text = (meta.comments ?? []).map((c) => c.text).join('\n')
    expect(text).toMatch(/TI hashes: "?badPaws: [0-9a-f]{12}/)
  }, 600_000)
})
