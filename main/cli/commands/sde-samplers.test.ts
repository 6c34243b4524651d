/**
 * The DPM++ SDE family end to end through the CLI on the generated tiny SD 1.5: A1111 names and schedules in
 * the infotext (with `SDE noise: per-step`), the same seed giving the same pixels, ComfyUI names with the
 * ComfyUI convention, and the PNG's parameters restoring the sampler.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { readImageParameters } from '../../services/generation/parameters'
import { cliRun } from '../testing'

const SLOW = 300_000

describe('DPM++ SDE samplers through `atelier txt2img` (generated tiny SD 1.5)', () => {
  let tmp = ''
  let model = ''
  beforeAll(async () => {
    model = (await ensureTinyModels()).sd15
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-sde-'))
  })
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

  const run = async (name: string, ...args: string[]) => {
    const out = path.join(tmp, `${name}.png`)
    const r = await cliRun([
      'txt2img',
      '--model',
      model,
      '--prompt',
      'a red cube',
      '--width',
      '64',
      '--height',
      '64',
      '--steps',
      '4',
      '--seed',
      '21',
      '--cache',
      path.join(tmp, 'cache'),
      '--home',
      path.join(tmp, 'home'),
      '--quiet',
      '--out',
      out,
      ...args,
    ])
    expect(r.code, r.err).toBe(0)
    const png = new Uint8Array(fs.readFileSync(out))
    const pixels = await sharp(out).raw().toBuffer()
    return { params: readImageParameters(png), pixels }
  }

  it(
    'A1111 names: Automatic resolves to Exponential / Karras, the infotext marks the per-step noise, seeds repeat',
    async () => {
      const a = await run('2m-sde', '--sampler', 'DPM++ 2M SDE')
      expect(a.params).toMatchObject({ sampler: 'DPM++ 2M SDE', scheduleType: 'Exponential' })
      expect(a.params.settings['SDE noise']).toBe('per-step')
      expect(a.params.text).toMatch(/Sampler: DPM\+\+ 2M SDE, Schedule type: Exponential/)
      const again = await run('2m-sde-again', '--sampler', 'DPM++ 2M SDE')
      expect(Buffer.compare(again.pixels, a.pixels)).toBe(0)
      const k = await run('sde-karras', '--sampler', 'DPM++ SDE Karras')
      expect(k.params).toMatchObject({ sampler: 'DPM++ SDE', scheduleType: 'Karras' })
      const heun = await run('heun', '--sampler', 'DPM++ 2M SDE Heun', '--schedule', 'SGM Uniform')
      expect(heun.params).toMatchObject({ sampler: 'DPM++ 2M SDE Heun', scheduleType: 'SGM Uniform' })
      expect(Buffer.compare(heun.pixels, a.pixels)).not.toBe(0)
    },
    SLOW,
  )

  it(
    'ComfyUI names with the ComfyUI convention (dpmpp_3m_sde_gpu + karras)',
    async () => {
      const c = await run(
        'comfy',
        '--convention',
        'comfy',
        '--sampler',
        'dpmpp_3m_sde_gpu',
        '--schedule',
        'karras',
      )
      expect(c.params).toMatchObject({ sampler: 'DPM++ 3M SDE', scheduleType: 'karras' })
      expect(c.params.settings).toMatchObject({ 'Sampler convention': 'comfy', 'SDE noise': 'per-step' })
    },
    SLOW,
  )
})
