/** `atelier imagine` on the tiny SD 1.5 checkpoint: the grid, then U2 and V3 from it (issue 15). */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { readImageParameters } from '../../services/generation/parameters'
import { runCli } from '../index'
import { requestFromParameters } from './imagine'

// The seeded tiny SD 1.5 the tests write themselves (no ../shared needed).
const TINY = (await ensureTinyModels()).sd15

describe('requestFromParameters (U / V re-create an image from its PNG)', () => {
  const base = { text: 'x', prompt: 'a cat', negativePrompt: '', sampler: 'DPM++ 2M', seed: 3 }
  it('keeps the schedule type, sampler convention, clip skip and noise source', () => {
    const r = requestFromParameters(
      {
        ...base,
        scheduleType: 'Karras',
        clipSkip: 2,
        rng: 'CPU',
        settings: { 'Sampler convention': 'comfy' },
      },
      'm',
    )
    expect(r).toMatchObject({
      sampler: 'DPM++ 2M',
      scheduleType: 'Karras',
      samplerConvention: 'comfy',
      clipSkip: 2,
      rng: 'cpu',
    })
  })
  it("reads an A1111 infotext without RNG as A1111's GPU generator, a ComfyUI graph as CPU noise", () => {
    expect(requestFromParameters({ ...base, settings: {} }, 'm').rng).toBe('gpu')
    expect(requestFromParameters({ ...base, source: 'comfyui', settings: {} }, 'm').rng).toBe('cpu')
    expect(
      requestFromParameters({ ...base, settings: { 'Sampler convention': 'bogus' } }, 'm'),
    ).not.toHaveProperty('samplerConvention')
  })
})

describe('atelier imagine', () => {
  let tmp = ''
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-imagine-'))
  })
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })
  const common = (): string[] => [
    '--home',
    path.join(tmp, 'home'),
    '--cache',
    path.join(tmp, 'cache'),
    '--quiet',
  ]
  const params = (f: string): ReturnType<typeof readImageParameters> =>
    readImageParameters(new Uint8Array(fs.readFileSync(f)))

  it('a grid of four from a Midjourney line, then U2 (hires of image 2) and V1 (four variations of image 1)', async () => {
    const grid = path.join(tmp, 'grid')
    const line = '/imagine prompt: a cat in a hat --ar 2:1 --no text --seed 7'
    expect(
      await runCli([
        'imagine',
        line,
        '--model',
        TINY,
        '--steps',
        '1',
        '--batch',
        '2',
        '--out',
        grid,
        ...common(),
      ]),
    ).toBe(0)
    expect(fs.existsSync(path.join(grid, '3.png'))).toBe(false)
    for (const n of [1, 2]) {
      const p = params(path.join(grid, `${n}.png`))
      expect(p.seed).toBe(6 + n)
      expect([p.width, p.height]).toEqual([704, 384])
      expect(p.negativePrompt).toBe('text')
      expect(p.prompt).toBe('a cat in a hat')
      expect(p.settings['Midjourney prompt']).toBe(line)
    }
    expect(await sharp(path.join(grid, 'grid.png')).metadata()).toMatchObject({ width: 1408, height: 384 })

    const up = path.join(tmp, 'up')
    expect(
      await runCli([
        'imagine',
        '--upscale',
        '2',
        '--from',
        grid,
        '--model',
        TINY,
        '--scale',
        '1.5',
        '--out',
        up,
        ...common(),
      ]),
    ).toBe(0)
    const u = params(path.join(up, 'upscaled-2.png'))
    expect(u.seed).toBe(8)
    expect(await sharp(path.join(up, 'upscaled-2.png')).metadata()).toMatchObject({
      width: 1056,
      height: 576,
    })
    expect(u.settings['Hires upscale']).toBe('1.5')

    const vary = path.join(tmp, 'vary')
    expect(
      await runCli([
        'imagine',
        '--vary',
        '1',
        '--from',
        grid,
        '--model',
        TINY,
        '--seed',
        '100',
        '--steps',
        '1',
        '--out',
        vary,
        ...common(),
      ]),
    ).toBe(0)
    const vs = [1, 2, 3, 4].map((n) => params(path.join(vary, `${n}.png`)))
    expect(vs.map((p) => p.seed)).toEqual([7, 7, 7, 7])
    expect(vs.map((p) => p.settings['Variation seed'])).toEqual(['100', '101', '102', '103'])
    expect(vs[0]?.settings['Variation seed strength']).toBe('0.35')
    expect(fs.existsSync(path.join(vary, 'grid.png'))).toBe(true)
  }, 600_000)

  it('explains what is missing', async () => {
    expect(await runCli(['imagine', '--out', path.join(tmp, 'x'), ...common()])).not.toBe(0)
    expect(
      await runCli([
        'imagine',
        '--vary',
        '3',
        '--from',
        path.join(tmp, 'nothing'),
        '--out',
        tmp,
        ...common(),
      ]),
    ).not.toBe(0)
  })
})
