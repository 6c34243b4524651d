/**
 * TAESD from Hugging Face to a preview: `madebyollin/taesd` as the fixture Hugging Face serves it (diffusers'
 * AutoencoderTiny layout: `diffusion_pytorch_model.safetensors` + `config.json`, random weights generated
 * here) is installed through the models service into a fresh library, filed as type taesd (sd-1), and the
 * next generation of a generated tiny SD 1.5 takes its live previews from it (image-sized PNGs, where the
 * linear approximation gives latent-sized ones) and, asked for draft decode, writes the image with it.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DownloadInfo } from '../../../preload/contract'
import type { GenerateRequest, GenerationProgress, GenerationResult } from '../../../preload/contract-types'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { HfFixtureServer, makeFixtureModels } from '../../../e2e/fixtures/remote'
import { writeRandomTaesd } from '../../engine/taesd/fixture'
import { EventBus } from '../events'
import { JobManager } from '../jobs'
import { ModelsService } from '../models/service'
import { keyFileSecretBox, SecretsService } from '../secrets'
import { SettingsService } from '../settings'
import { memoryStore } from '../store'
import { GalleryStore } from './gallery'
import { readImageParameters } from './parameters'
import { createResolvers } from './resolve'
import { GenerationService } from './service'

let tmp = ''
let hf: HfFixtureServer
let tiny = ''

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-taesd-hf-'))
  tiny = (await ensureTinyModels()).sd15
  const repo = path.join(tmp, 'repo-taesd')
  fs.mkdirSync(repo)
  await writeRandomTaesd(path.join(repo, 'diffusion_pytorch_model.safetensors'), { width: 8, seed: 11 })
  fs.writeFileSync(
    path.join(repo, 'config.json'),
    JSON.stringify({
      _class_name: 'AutoencoderTiny',
      _diffusers_version: '0.20.0',
      in_channels: 3,
      out_channels: 3,
      latent_channels: 4,
      encoder_block_out_channels: [8, 8, 8, 8],
      decoder_block_out_channels: [8, 8, 8, 8],
    }),
  )
  fs.writeFileSync(
    path.join(repo, 'README.md'),
    '---\nlicense: mit\n---\n\n# 🍰 Tiny AutoEncoder for Stable Diffusion\n',
  )
  hf = new HfFixtureServer({
    models: await makeFixtureModels(path.join(tmp, 'fixture-models')),
    extraRepos: [
      { id: 'madebyollin/taesd', dir: repo, tags: ['diffusers', 'safetensors'], libraryName: 'diffusers' },
    ],
  })
  await hf.start()
}, 120_000)

afterAll(async () => {
  await hf?.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe('TAESD installed from Hugging Face (madebyollin/taesd)', () => {
  it('installs as a taesd library entry and decodes the previews and the draft image', async () => {
    const home = path.join(tmp, 'home')
    const store = memoryStore()
    const bus = new EventBus()
    const env = { ATELIER_HF_URL: hf.url }
    const settings = new SettingsService(store, home, bus, env)
    const secrets = new SecretsService(store, keyFileSecretBox(path.join(home, 'secret.key')), env)
    const jobs = new JobManager(bus)
    const models = new ModelsService({
      home,
      settings,
      secrets,
      bus,
      jobs,
      retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 1, sleep: () => Promise.resolve() },
      eager: true,
    })
    let service: GenerationService | undefined
    try {
      const started = await models.install({
        source: 'huggingface',
        repo: 'madebyollin/taesd',
        path: 'diffusion_pytorch_model.safetensors',
      })
      const infos: DownloadInfo[] = await models.whenInstalled(started.downloadIds)
      expect(infos.map((d) => [d.state, d.install.state])).toEqual([['done', 'installed']])
      const library = await models.library()
      const entry = library.list().find((r) => r.type === 'taesd')
      expect(entry).toMatchObject({ name: 'taesd', family: 'sd-1', note: null })
      expect(path.basename(entry?.path ?? '')).toBe('taesd.safetensors')

      const resolvers = createResolvers({ library, roots: [] })
      expect(resolvers.taesd?.()).toEqual([{ path: entry?.path, name: 'taesd', family: 'sd-1' }])
      const gallery = new GalleryStore(path.join(tmp, 'outputs'), readImageParameters)
      service = new GenerationService({
        bus,
        jobs,
        gallery,
        resolvers,
        cacheRoot: path.join(tmp, 'cache'),
        appVersion: 'test',
      })
      const generate = async (
        req: Partial<GenerateRequest>,
      ): Promise<{ result: GenerationResult; progress: GenerationProgress[] }> => {
        const progress: GenerationProgress[] = []
        const results = new Map<string, GenerationResult>()
        let jobId = ''
        let resolve: (r: GenerationResult) => void = () => {}
        const done = new Promise<GenerationResult>((r) => (resolve = r))
        const off = bus.subscribe((e) => {
          if (e.name === 'generate:progress' && e.payload.jobId === jobId) progress.push(e.payload)
          if (e.name === 'generate:finished') {
            results.set(e.payload.jobId, e.payload)
            if (e.payload.jobId === jobId) resolve(e.payload)
          }
        })
        try {
          jobId = (
            await (service as GenerationService).start({
              mode: 'txt2img',
              model: tiny,
              prompt: 'a lighthouse',
              steps: 6,
              seed: 5,
              width: 64,
              height: 64,
              ...req,
            } as GenerateRequest)
          ).jobId
          const early = results.get(jobId)
          if (early) resolve(early)
          return { result: await done, progress }
        } finally {
          off()
        }
      }
      const size = (png: Uint8Array): number[] => {
        const v = new DataView(png.buffer, png.byteOffset, png.byteLength)
        return [v.getUint32(16), v.getUint32(20)]
      }
      const infotext = async (r: GenerationResult): Promise<string> =>
        gallery.parameters(await gallery.image(r.images[0]?.id ?? '')).text ?? ''

      const run = await generate({})
      expect(run.result.state, JSON.stringify(run.result.error)).toBe('done')
      const previews = run.progress.flatMap((p) => (p.preview ? [p.preview] : []))
      expect(previews.length).toBeGreaterThan(0)
      // TAESD previews are the image's size; the linear approximation is twice the latent size (16x16).
      for (const png of previews) expect(size(png)).toEqual([64, 64])
      const approx = await generate({ previewDecoder: 'approx' })
      const linear = approx.progress.flatMap((p) => (p.preview ? [p.preview] : []))
      expect(linear.length).toBeGreaterThan(0)
      expect(size(linear[0] as Uint8Array)).toEqual([16, 16])

      const draft = await generate({ draftDecode: true })
      expect(draft.result.state).toBe('done')
      expect(await infotext(draft.result)).toMatch(/VAE Decoder: TAESD/)
      expect(await infotext(run.result)).not.toMatch(/VAE Decoder/)
    } finally {
      jobs.dispose()
      await service?.dispose()
      await models.dispose()
    }
  }, 300_000)
})
