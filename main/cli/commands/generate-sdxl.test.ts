/**
 * The CLI on the tiny SDXL model: txt2img and img2img from the single file and from its diffusers folder
 * (identical weights, so identical pixels), the SDXL size-conditioning flags, and LoRAs of the other family
 * refused before anything is converted.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { readImageParameters } from '../../services/generation/parameters'
import { cliRun } from '../testing'

// The seeded tiny models the tests write themselves: SDXL as a single file and as its diffusers folder (same
// weights), a LoRA of each family, and the CLIP vocabulary the repository ships.
const tiny = await ensureTinyModels()
const XL = tiny.sdxl
const XL_DIR = tiny.sdxlDiffusers
const XL_LORA = tiny.sdxlLora
const BPE = tiny.tokenizer
const SD1 = tiny.sd15
const SD1_LORA = tiny.lora

const SLOW = 300_000

const cli = cliRun

async function raw(file: string): Promise<Buffer> {
  return sharp(file).removeAlpha().raw().toBuffer()
}

describe('atelier txt2img / img2img with SDXL', () => {
  let tmp = ''
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-cli-sdxl-'))
  })
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))
  const common = (cache: string): string[] => [
    '--tokenizer',
    BPE,
    '--cache',
    cache,
    '--home',
    path.join(tmp, 'home'),
    '--quiet',
    '--steps',
    '3',
    '--seed',
    '11',
  ]

  it(
    'single file and diffusers folder: txt2img and img2img write the same pixels',
    async () => {
      const cache = path.join(tmp, 'cache')
      const out = (n: string): string => path.join(tmp, `${n}.png`)
      for (const [tag, model] of [
        ['file', XL],
        ['folder', XL_DIR],
      ] as const) {
        const t2i = await cli([
          'txt2img',
          '--model',
          model,
          '--prompt',
          'a photo of a cat, (masterpiece:1.2)',
          '--width',
          '64',
          '--height',
          '48',
          '--lora',
          `${XL_LORA}:0.8`,
          '--out',
          out(`t2i-${tag}`),
          ...common(cache),
        ])
        expect(t2i.code, t2i.err).toBe(0)
        const i2i = await cli([
          'img2img',
          '--model',
          model,
          '--prompt',
          'a photo of a dog',
          '--negative',
          'blurry',
          '--image',
          out(`t2i-${tag}`),
          '--strength',
          '0.6',
          '--original-size',
          '512x384',
          '--crop',
          '0,8',
          '--out',
          out(`i2i-${tag}`),
          ...common(cache),
        ])
        expect(i2i.code, i2i.err).toBe(0)
      }
      const meta = await sharp(out('t2i-file')).metadata()
      expect([meta.width, meta.height]).toEqual([64, 48])
      // Same weights, so the same pixels; in low-memory sessions (this machine has < 32 GiB) the two graphs
      // fold differently (e.g. the text projection's Transpose), which may move a pixel by one level.
      for (const n of ['t2i', 'i2i']) {
        const x = await raw(out(`${n}-file`))
        const y = await raw(out(`${n}-folder`))
        let off = 0
        let max = 0
        for (let i = 0; i < x.length; i++) {
          const d = Math.abs((x[i] as number) - (y[i] as number))
          if (d) off++
          max = Math.max(max, d)
        }
        expect(max, n).toBeLessThanOrEqual(1)
        expect(off, n).toBeLessThan(x.length / 1000)
      }
      const params = await readImageParameters(fs.readFileSync(out('t2i-file')))
      expect(params?.prompt).toBe('a photo of a cat, (masterpiece:1.2)')
    },
    SLOW,
  )

  it(
    'a LoRA of the other family is refused with both families named, before any conversion',
    async () => {
      const cache = path.join(tmp, 'cache-refused')
      const a = await cli([
        'txt2img',
        '--model',
        XL,
        '--prompt',
        'x',
        '--lora',
        SD1_LORA,
        '--out',
        path.join(tmp, 'no.png'),
        ...common(cache),
      ])
      expect(a.code).not.toBe(0)
      expect(a.err).toMatch(/tiny-lora\.safetensors: this LoRA is for SD 1\.x; the checkpoint is SDXL/)
      const b = await cli([
        'txt2img',
        '--model',
        SD1,
        '--prompt',
        'x',
        '--lora',
        XL_LORA,
        '--out',
        path.join(tmp, 'no2.png'),
        ...common(cache),
      ])
      expect(b.code).not.toBe(0)
      expect(b.err).toMatch(/tiny-sdxl-lora\.safetensors: this LoRA is for SDXL; the checkpoint is SD 1\.x/)
      // Nothing was converted (no cache entry) and nothing written.
      const entries = fs.existsSync(cache) ? fs.readdirSync(cache).filter((n) => /^v\d+-/.test(n)) : []
      expect(entries).toEqual([])
      expect(fs.existsSync(path.join(tmp, 'no.png'))).toBe(false)
    },
    SLOW,
  )

  it('rejects malformed size-conditioning flags', async () => {
    const r = await cli([
      'txt2img',
      '--model',
      XL,
      '--prompt',
      'x',
      '--original-size',
      '512',
      '--out',
      path.join(tmp, 'x.png'),
      ...common(tmp),
    ])
    expect(r.code).not.toBe(0)
    expect(r.err).toMatch(/--original-size: "512" is not WIDTHxHEIGHT/)
  })
})
