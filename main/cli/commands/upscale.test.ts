import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { encodePng } from '../../engine/image/codec'
import { repoRoot } from '../../platform/paths'
import { cli } from '../testing'

const shared = path.resolve(repoRoot(), '../shared')
const set = path.join(shared, 'oracle-upscale')
const haveSet = existsSync(path.join(set, 'tiny-rrdb-x4.pth'))
if (!haveSet) console.warn(`skipping upscale CLI model tests: ${set} not found`)
// The hires / SD upscale test runs on the seeded tiny SD 1.5 and the tiny x2 compact upscaler.
const tiny = await ensureTinyModels()

describe('atelier upscale', () => {
  let dir = ''
  let input = ''
  const prevHome = process.env.ATELIER_HOME
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-cli-upscale-'))
    process.env.ATELIER_HOME = path.join(dir, 'home')
    const w = 40
    const h = 28
    const data = new Uint8Array(w * h * 3)
    for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256
    input = path.join(dir, 'in.png')
    await writeFile(input, await encodePng({ data, width: w, height: h, channels: 3 }))
  })
  afterAll(async () => {
    if (prevHome === undefined) delete process.env.ATELIER_HOME
    else process.env.ATELIER_HOME = prevHome
    await rm(dir, { recursive: true, force: true })
  })

  async function size(file: string): Promise<[number, number]> {
    const m = await sharp(await readFile(file)).metadata()
    return [m.width ?? 0, m.height ?? 0]
  }

  it('Lanczos when no model is chosen', async () => {
    const out = path.join(dir, 'lanczos.png')
    const r = await cli('upscale', '--image', input, '--scale', '2.5', '--out', out)
    expect(r.code, r.err).toBe(0)
    expect(await size(out)).toEqual([100, 70])
  })

  it.skipIf(!haveSet)(
    'a .pth (safe reader), an old-style ESRGAN .pth and a compact model, tiled',
    async () => {
      for (const m of ['tiny-rrdb-x4.pth', 'tiny-rrdb-x4-esrgan-old.pth', 'tiny-srvgg-x4.safetensors']) {
        const out = path.join(dir, `${m}.png`)
        const r = await cli(
          'upscale',
          '--model',
          path.join(set, m),
          '--image',
          input,
          '--scale',
          '4',
          '--tile',
          '16',
          '--tile-pad',
          '4',
          '--provider',
          'cpu',
          '--out',
          out,
        )
        expect(r.code, r.err).toBe(0)
        expect(r.err).toMatch(m.includes('srvgg') ? /SRVGGNetCompact x4/ : /RRDBNet x4/)
        expect(await size(out)).toEqual([160, 112])
      }
      // x2 model to x3: two passes, then Lanczos to the exact size.
      const out = path.join(dir, 'x3.png')
      const r = await cli(
        'upscale',
        '--model',
        path.join(set, 'tiny-rrdb-x2.safetensors'),
        '--image',
        input,
        '--scale',
        '3',
        '--provider',
        'cpu',
        '--out',
        out,
      )
      expect(r.code, r.err).toBe(0)
      expect(await size(out)).toEqual([120, 84])
    },
  )

  it('clear errors: unknown upscaler, forbidden pickle, bad options', async () => {
    const out = path.join(dir, 'x.png')
    const unknown = await cli('upscale', '--model', 'no-such-upscaler', '--image', input, '--out', out)
    expect(unknown.code).not.toBe(0)
    expect(unknown.err).toMatch(/unknown upscaler "no-such-upscaler"/)
    const bad = await cli('upscale', '--image', input, '--scale', 'zero', '--out', out)
    expect(bad.err).toMatch(/--scale must be a number/)
    const missing = await cli('upscale', '--image', path.join(dir, 'nope.png'), '--out', out)
    expect(missing.err).toMatch(/nope\.png: cannot read the input picture/)
    const evil = path.join(shared, 'oracle-pickle', 'forbidden-global.pth')
    if (existsSync(evil)) {
      const r = await cli('upscale', '--model', evil, '--image', input, '--out', out, '--provider', 'cpu')
      expect(r.code).not.toBe(0)
      expect(r.err).toMatch(/forbidden global "posix\.system"/)
    }
  })

  it('txt2img --hires-* (latent and a model upscaler) and img2img --sd-upscale on the tiny SD 1.5', async () => {
    const common = [
      '--model',
      tiny.sd15,
      '--prompt',
      'a red cube',
      '--steps',
      '3',
      '--sampler',
      'Euler',
      '--seed',
      '5',
    ]
    const env = ['--tokenizer', tiny.tokenizer, '--cache', path.join(dir, 'cache'), '--quiet']
    const hires = path.join(dir, 'hires.png')
    let r = await cli(
      'txt2img',
      ...common,
      '--width',
      '64',
      '--height',
      '48',
      '--hires-scale',
      '2',
      '--hires-strength',
      '0.5',
      '--hires-steps',
      '2',
      ...env,
      '--out',
      hires,
    )
    expect(r.code, r.err).toBe(0)
    expect(await size(hires)).toEqual([128, 96])
    const text = (await readFile(hires)).toString('latin1')
    expect(text).toMatch(/Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent/)
    // A1111 records the base size as Size.
    expect(text).toMatch(/Size: 64x48,/)
    const model = path.join(dir, 'hires-model.png')
    r = await cli(
      'txt2img',
      ...common,
      '--width',
      '64',
      '--height',
      '64',
      '--hires-upscaler',
      tiny.upscaler,
      ...env,
      '--out',
      model,
    )
    expect(r.code, r.err).toBe(0)
    expect(await size(model)).toEqual([128, 128])
    expect((await readFile(model)).toString('latin1')).toMatch(/Hires upscaler: 2x-tiny-compact/)
    const up = path.join(dir, 'sd-upscale.png')
    r = await cli(
      'img2img',
      ...common,
      '--image',
      input,
      '--width',
      '32',
      '--height',
      '32',
      '--strength',
      '0.4',
      '--sd-upscale',
      '2',
      '--tile-overlap',
      '8',
      ...env,
      '--out',
      up,
    )
    expect(r.code, r.err).toBe(0)
    expect(await size(up)).toEqual([80, 56])
    expect((await readFile(up)).toString('latin1')).toMatch(
      /SD upscale: 2, SD upscale upscaler: Lanczos, SD upscale overlap: 8/,
    )
    const bad = await cli(
      'txt2img',
      ...common,
      '--hires-upscaler',
      'no-such-upscaler',
      ...env,
      '--out',
      path.join(dir, 'x.png'),
    )
    expect(bad.code).not.toBe(0)
    expect(bad.err).toMatch(/Upscaler "no-such-upscaler" was not found/)
  }, 300_000)
})
