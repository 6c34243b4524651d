/**
 * txt2img from the CLI with textual-inversion embeddings, on a tiny random SD 1.5 checkpoint and embedding files
 * the test writes itself: the embedding's name in the prompt changes the image, the same name without the
 * embedding folder is plain text, every file format gives the vectors it holds, and the infotext names the
 * embedding with its hash (A1111's "TI hashes").
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TINY_SD15, writeSd15 } from '../../../bench/fixtures/full-sd15'
import { writeEmbeddingFixture } from '../../model-formats/embedding-fixtures'
import { readImageParameters } from '../../services/generation/parameters'
import { cliRun } from '../testing'

const SLOW = 300_000
let dir = ''
let model = ''
let embDir = ''

const cli = cliRun

const pixels = async (file: string): Promise<Buffer> => sharp(file).raw().toBuffer()

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-emb-cli-'))
  model = path.join(dir, 'tiny-sd15.safetensors')
  writeSd15(model, TINY_SD15, 3)
  embDir = path.join(dir, 'embeddings')
  fs.mkdirSync(embDir)
  // width 64: the tiny text encoder's
  await writeEmbeddingFixture(path.join(embDir, 'neonstyle.safetensors'), 'safetensors', {
    vectors: 3,
    width: 64,
    seed: 7,
    fp16: true,
  })
  await writeEmbeddingFixture(path.join(embDir, 'oldstyle.pt'), 'a1111-pt', {
    vectors: 2,
    width: 64,
    seed: 8,
  })
}, SLOW)
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe('atelier txt2img with embeddings', () => {
  const base = (out: string, prompt: string): string[] => [
    'txt2img',
    '--model',
    model,
    '--prompt',
    prompt,
    '--negative',
    'oldstyle, blurry',
    '--steps',
    '3',
    '--width',
    '64',
    '--height',
    '64',
    '--seed',
    '11',
    '--home',
    path.join(dir, 'home'),
    '--cache',
    path.join(dir, 'cache'),
    '--quiet',
    '--out',
    path.join(dir, out),
  ]

  it(
    'uses the vectors by file name in prompt and negative prompt, and writes TI hashes',
    async () => {
      const withEmb = await cli([
        ...base('emb.png', 'a photo of (neonstyle:1.2), city'),
        '--embeddings',
        embDir,
      ])
      expect(withEmb.code, withEmb.err).toBe(0)
      const plain = await cli(base('plain.png', 'a photo of (neonstyle:1.2), city'))
      expect(plain.code, plain.err).toBe(0)
      expect(
        (await pixels(path.join(dir, 'emb.png'))).equals(await pixels(path.join(dir, 'plain.png'))),
      ).toBe(false)

      const p = readImageParameters(fs.readFileSync(path.join(dir, 'emb.png')))
      const short = (f: string): string =>
        createHash('sha256')
          .update(fs.readFileSync(path.join(embDir, f)))
          .digest('hex')
          .slice(0, 12)
      expect(p.text).toContain(
        `TI hashes: "neonstyle: ${short('neonstyle.safetensors')}, oldstyle: ${short('oldstyle.pt')}"`,
      )
      expect(readImageParameters(fs.readFileSync(path.join(dir, 'plain.png'))).text).not.toContain(
        'TI hashes',
      )
    },
    SLOW,
  )

  it(
    'prompt editing runs through the CLI (the image differs from either prompt alone)',
    async () => {
      const edit = await cli(base('edit.png', '[a red car:a blue house:0.5]'))
      const a = await cli(base('a.png', 'a red car'))
      expect(edit.code, edit.err).toBe(0)
      expect(a.code, a.err).toBe(0)
      expect((await pixels(path.join(dir, 'edit.png'))).equals(await pixels(path.join(dir, 'a.png')))).toBe(
        false,
      )
    },
    SLOW,
  )
})
