import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { writeTinyVae } from '../../../bench/fixtures/tiny-vae'
import { cli, cliSources, type CliSources } from '../testing'

/**
 * A standalone VAE from the Civitai fixture (model type "VAE") to an image: installed as a library entry of
 * type vae (SD 1.x from Civitai's base model), used by name with `--vae`, written to the infotext as A1111
 * writes it; an A1111 `models/VAE` folder is scanned in place.
 */

const VAE_FILE = 'tinyVae_mse.safetensors'

describe('VAE from the Civitai fixture to an image', () => {
  let tmp = ''
  let site: CliSources | undefined
  let sources: CliSources['sources']
  let vae = ''

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-vae-cli-'))
    vae = writeTinyVae(path.join(tmp, 'generated', VAE_FILE), { seed: 31 })
    site = await cliSources(tmp, {
      checkpoint: (await ensureTinyModels()).sd15,
      extraModels: [
        { path: vae, modelName: 'Tiny VAE', type: 'VAE', baseModel: 'SD 1.5', fileName: VAE_FILE },
      ],
    })
    sources = site.sources
  }, 120_000)

  afterAll(async () => {
    await site?.close()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('installs as a VAE library entry', async () => {
    const ck = await cli('models', 'install', `civitai:${sources.extraCheckpointVersionId}`)
    expect(ck.code, ck.err).toBe(0)
    const r = await cli('models', 'install', `civitai:${sources.extraVersionIds[0]}`)
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(/Installed tinyVae_mse \(vae, sd-1, verified\)/)
    const list = JSON.parse((await cli('library', 'list', '--json')).out) as {
      name: string
      type: string
      family: string | null
      civitai?: { modelType?: string }
    }[]
    expect(list.find((x) => x.name === 'tinyVae_mse')).toMatchObject({
      type: 'vae',
      family: 'sd-1',
      civitai: { modelType: 'VAE' },
    })
  }, 120_000)

  it('generates with --vae by name; Automatic is the checkpoint own VAE', async () => {
    const gen = async (out: string, ...extra: string[]): Promise<{ px: Buffer; text: string }> => {
      const file = path.join(tmp, out)
      const r = await cli(
        'txt2img',
        '--model',
        'tinySD15_v1',
        '--prompt',
        'a cat',
        '--steps',
        '2',
        '--width',
        '64',
        '--height',
        '64',
        '--seed',
        '7',
        '--out',
        file,
        ...extra,
      )
      expect(r.code, `${out}: ${r.err}`).toBe(0)
      const meta = await sharp(file).metadata()
      return {
        px: await sharp(file).raw().toBuffer(),
        text: (meta.comments ?? []).map((c) => c.text).join('\n'),
      }
    }
    const own = await gen('own.png')
    const auto = await gen('auto.png', '--vae', 'Automatic')
    const over = await gen('vae.png', '--vae', 'tinyVae_mse')
    expect(auto.px.equals(own.px)).toBe(true)
    expect(over.px.equals(own.px)).toBe(false)
    expect(own.text).not.toMatch(/VAE/)
    const sha = crypto.createHash('sha256').update(fs.readFileSync(vae)).digest('hex')
    expect(over.text).toContain(`VAE hash: ${sha.slice(0, 10)}, VAE: ${VAE_FILE}`)
    const missing = await cli(
      'txt2img',
      '--model',
      'tinySD15_v1',
      '--prompt',
      'x',
      '--vae',
      'nope',
      '--out',
      path.join(tmp, 'x.png'),
    )
    expect(missing.code).not.toBe(0)
    expect(missing.err).toMatch(/VAE "nope" was not found/)
  }, 600_000)

  it('finds VAEs in an A1111 models/VAE folder', async () => {
    const webui = path.join(tmp, 'webui')
    writeTinyVae(path.join(webui, 'models', 'VAE', 'vae-ft-mse-840000-ema-pruned.safetensors'), { seed: 32 })
    fs.mkdirSync(path.join(webui, 'models', 'Stable-diffusion'), { recursive: true })
    const r = await cli('library', 'scan', webui)
    expect(r.code, r.err).toBe(0)
    const list = JSON.parse((await cli('library', 'list', '--json')).out) as {
      name: string
      type: string
      family: string | null
    }[]
    expect(list.find((x) => x.name === 'vae-ft-mse-840000-ema-pruned')).toMatchObject({
      type: 'vae',
      family: 'sd-1',
    })
  }, 120_000)
})
