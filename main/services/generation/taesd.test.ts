/**
 * TAESD in the library and in generation: probed by content (family from the name), filed from the Atelier
 * / A1111 / ComfyUI folders, handed to jobs; live previews decoded by it; draft decode writes the image
 * with it and says so in the infotext.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import type { GenerateRequest, GenerationProgress, GenerationResult } from '../../../preload/contract-types'
import { writeRandomTaesd } from '../../engine/taesd/fixture'
import { TaesdModel } from '../../engine/taesd/model'
import { Library } from '../../library/library'
import { identifyModel as probeModel } from '../../model-formats/probe/identify'
import { probeTaesd } from '../../model-formats/probe/taesd'
import { repoRoot } from '../../platform/paths'
import { installFileName } from '../models/image-prompt-files'
import { EventBus } from '../events'
import { JobManager } from '../jobs'
import { GalleryStore } from './gallery'
import { readImageParameters } from './parameters'
import { createResolvers } from './resolve'
import { GenerationService } from './service'

// Seeded tiny models written by the tests themselves (bench/fixtures/tiny-models.ts; no ../shared needed).
const tiny = await ensureTinyModels()
const TINY = tiny.sd15
const BPE = tiny.tokenizer

let tmp = ''
let taesd = ''
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-taesd-'))
  taesd = path.join(tmp, 'taesd.safetensors')
  await writeRandomTaesd(taesd, { width: 8, seed: 3 })
})
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe('TAESD in the library', () => {
  it('is probed by its tensor names; TAESDXL by its name; other files are not TAESD', async () => {
    expect(await probeTaesd(taesd)).toEqual({ family: 'sd-1', decoder: true, encoder: true })
    const xl = path.join(tmp, 'taesdxl.safetensors')
    fs.copyFileSync(taesd, xl)
    expect(await probeTaesd(xl)).toMatchObject({ family: 'sdxl' })
    const info = await probeModel(taesd)
    expect(info).toMatchObject({ type: 'taesd', family: 'sd-1', note: null })
    expect(info.architecture).toBe('TAESD tiny autoencoder (decoder + encoder)')
    const decoderOnly = path.join(tmp, 'dec', 'taesd_decoder.safetensors')
    fs.mkdirSync(path.dirname(decoderOnly))
    await writeRandomTaesd(decoderOnly, { width: 8, encoder: false })
    expect(await probeTaesd(decoderOnly)).toMatchObject({ decoder: true, encoder: false })
    expect(await probeTaesd(path.join(repoRoot(), 'package.json'))).toBeNull()
  })

  it('names Hugging Face diffusers files after the repo (taesd / taesdxl never collide)', () => {
    const f = (p: string) => ({ name: path.posix.basename(p), path: p, fileType: 'Model' }) as never
    expect(installFileName(f('diffusion_pytorch_model.safetensors'), 'madebyollin/taesd')).toBe(
      'taesd.safetensors',
    )
    expect(installFileName(f('diffusion_pytorch_model.safetensors'), 'madebyollin/taesdxl')).toBe(
      'taesdxl.safetensors',
    )
    expect(installFileName(f('vae/diffusion_pytorch_model.safetensors'), 'org/model')).toBe(
      'model-vae.safetensors',
    )
  })

  it('files TAESD from the Atelier and A1111 folders and hands them to jobs by family', async () => {
    const home = path.join(tmp, 'home')
    const lib = await Library.open(home)
    try {
      const dir = lib.libraryDir
      fs.mkdirSync(path.join(dir, 'taesd'), { recursive: true })
      fs.copyFileSync(taesd, path.join(dir, 'taesd', 'taesd.safetensors'))
      fs.copyFileSync(taesd, path.join(dir, 'taesd', 'taesdxl.safetensors'))
      await lib.scan()
      const found = lib
        .list()
        .filter((r) => r.type === 'taesd')
        .map((r) => [r.name, r.family])
      expect(found.sort()).toEqual([
        ['taesd', 'sd-1'],
        ['taesdxl', 'sdxl'],
      ])
      const list = createResolvers({ library: lib, roots: [] }).taesd?.() ?? []
      expect(list.map((t) => [t.name, t.family]).sort()).toEqual([
        ['taesd', 'sd-1'],
        ['taesdxl', 'sdxl'],
      ])
    } finally {
      await lib.dispose()
    }
  })

  it('decodes scaled latents to an image 8x larger and encodes back to latents', async () => {
    const m = await TaesdModel.load(taesd)
    try {
      const z = new ort.Tensor(
        'float32',
        Float32Array.from({ length: 4 * 6 * 5 }, (_, i) => Math.sin(i)),
        [1, 4, 6, 5],
      )
      const img = await m.decode(z)
      expect(img.dims).toEqual([1, 3, 48, 40])
      const back = await m.encode(img)
      expect(back.dims).toEqual([1, 4, 6, 5])
      const png = await m.previewPng(z.data as Float32Array, 5, 6)
      expect(Array.from(png.subarray(1, 4))).toEqual([0x50, 0x4e, 0x47])
    } finally {
      await m.release()
    }
  })
})

describe('TAESD in generation (tiny SD 1.5)', () => {
  let service: GenerationService
  let jobs: JobManager
  let bus: EventBus
  let gallery: GalleryStore
  const infotext = async (r: GenerationResult): Promise<string> =>
    gallery.parameters(await gallery.image(r.images[0]?.id ?? '')).text ?? ''

  beforeAll(() => {
    bus = new EventBus()
    jobs = new JobManager(bus)
    const base = createResolvers({ roots: [] })
    gallery = new GalleryStore(path.join(tmp, 'outputs'), readImageParameters)
    service = new GenerationService({
      bus,
      jobs,
      gallery,
      resolvers: { ...base, taesd: () => [{ path: taesd, name: 'taesd', family: 'sd-1' }] },
      cacheRoot: path.join(tmp, 'cache'),
      appVersion: 'test',
      tokenizer: BPE,
    })
  })
  afterAll(async () => {
    jobs?.dispose()
    await service?.dispose()
  })

  async function generate(
    req: Partial<GenerateRequest>,
  ): Promise<{ result: GenerationResult; progress: GenerationProgress[] }> {
    const progress: GenerationProgress[] = []
    let jobId = ''
    const finished: GenerationResult[] = []
    let resolve: (r: GenerationResult) => void = () => {}
    const done = new Promise<GenerationResult>((r) => (resolve = r))
    const off = bus.subscribe((e) => {
      if (e.name === 'generate:progress' && e.payload.jobId === jobId) progress.push(e.payload)
      if (e.name === 'generate:finished') {
        if (e.payload.jobId === jobId) resolve(e.payload)
        else finished.push(e.payload)
      }
    })
    try {
      jobId = (
        await service.start({
          mode: 'txt2img',
          model: TINY,
          prompt: 'a photo of a cat',
          steps: 6,
          seed: 3,
          width: 64,
          height: 64,
          ...req,
        } as GenerateRequest)
      ).jobId
      const early = finished.find((r) => r.jobId === jobId)
      if (early) resolve(early)
      return { result: await done, progress }
    } finally {
      off()
    }
  }

  it('previews come from TAESD (full-size 64x64 PNGs); draft decode says "VAE Decoder: TAESD"', async () => {
    const full = await generate({})
    expect(full.result.state).toBe('done')
    const previews = full.progress.filter((p) => p.preview)
    expect(previews.length).toBeGreaterThan(0)
    // A TAESD preview is the image's size (the linear approximation is 2x the latent size: 16x16).
    const png = previews[0]?.preview as Uint8Array
    const view = new DataView(png.buffer, png.byteOffset, png.byteLength)
    expect([view.getUint32(16), view.getUint32(20)]).toEqual([64, 64])
    expect(await infotext(full.result)).toMatch(/Steps: 6/)
    expect(await infotext(full.result)).not.toMatch(/VAE Decoder/)

    const draft = await generate({ draftDecode: true })
    expect(draft.result.state).toBe('done')
    expect(await infotext(draft.result)).toMatch(/VAE Decoder: TAESD/)
    expect(draft.result.images[0]?.width).toBe(64)
  }, 300_000)
})
