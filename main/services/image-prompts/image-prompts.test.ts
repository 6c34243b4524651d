/**
 * Image prompts through the service and the CLI on the tiny models: Midjourney syntax (URLs fetched by a
 * stub, gallery ids, --iw, /blend with --dimensions), the defaults picked from the library folders, the
 * refusals (modes, local URLs, another family), the worker keeping its sessions when only the weight changes,
 * and `atelier txt2img --ip-image` / `atelier blend` writing PNGs whose infotext names the adapter.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import type { GenerateRequest, GenerationResult } from '../../../preload/contract-types'
import { runCli } from '../../cli/index'
import { AppError } from '../errors'
import { EventBus } from '../events'
import { GalleryStore } from '../generation/gallery'
import { readImageParameters } from '../generation/parameters'
import type { FromWorker, WorkerJob } from '../generation/protocol'
import { createResolvers } from '../generation/resolve'
import { JobRunner } from '../generation/runner'
import { GenerationService } from '../generation/service'
import { JobManager } from '../jobs'
import { checkImageUrl, prepareImagePrompts } from './prepare'

// Seeded tiny models written by the tests themselves (bench/fixtures/tiny-models.ts; no ../shared needed).
const tiny = await ensureTinyModels()
const SD1 = tiny.sd15
const XL = tiny.sdxl
const BPE = tiny.tokenizer
const ADAPTER = tiny.ipAdapter
const ENCODER = tiny.imageEncoder

const SLOW = 300_000

async function png(w: number, h: number, seed: number): Promise<Uint8Array> {
  const d = Buffer.alloc(w * h * 3)
  let s = seed
  for (let i = 0; i < d.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff
    d[i] = (s >> 16) & 255
  }
  return new Uint8Array(
    await sharp(d, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toBuffer(),
  )
}

describe('image prompt URLs', () => {
  it('fetches public http(s) URLs only, never with credentials', () => {
    expect(checkImageUrl('https://cdn.example.org/a.png').hostname).toBe('cdn.example.org')
    for (const bad of [
      'file:///etc/passwd',
      'http://localhost:8080/a.png',
      'http://127.0.0.1/a.png',
      'http://10.1.2.3/a.png',
      'http://192.168.1.1/a.png',
      'http://172.20.0.1/a.png',
      'http://169.254.169.254/latest',
      'http://[::1]/a.png',
      'https://user:pw@example.org/a.png',
      'http://printer.local/a.png',
    ])
      expect(() => checkImageUrl(bad), bad).toThrow(AppError)
  })
})

describe('image prompts in the service', () => {
  let tmp = ''
  let roots: string[] = []
  let gallery: GalleryStore
  let a: Uint8Array = new Uint8Array()
  let b: Uint8Array = new Uint8Array()
  const fetched: string[] = []
  const fetchImage = async (url: string): Promise<{ bytes: Uint8Array; contentType: string }> => {
    fetched.push(url)
    return { bytes: url.endsWith('b.png') ? b : a, contentType: 'image/png' }
  }

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ip-service-'))
    a = await png(64, 48, 1)
    b = await png(40, 56, 2)
    // library folders in the ComfyUI / Atelier layout: the defaults are found there by content
    const root = path.join(tmp, 'models')
    fs.mkdirSync(path.join(root, 'ip-adapters'), { recursive: true })
    fs.mkdirSync(path.join(root, 'clip_vision'), { recursive: true })
    fs.copyFileSync(ADAPTER, path.join(root, 'ip-adapters', 'tiny-ip-adapter.safetensors'))
    fs.writeFileSync(path.join(root, 'ip-adapters', 'notes.bin'), 'not a model')
    fs.cpSync(ENCODER, path.join(root, 'clip_vision', 'tiny-vit'), { recursive: true })
    roots = [root]
    gallery = new GalleryStore(path.join(tmp, 'outputs'), readImageParameters)
    await gallery.save(a, 1)
  })
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

  const model = { path: SD1, name: 'tiny-sd15' }
  const base: GenerateRequest = { mode: 'txt2img', model: SD1, prompt: 'a cat' }

  it('Midjourney image prompts: URLs and gallery ids, --iw, the other flags, defaults from the folders', async () => {
    const [first] = await gallery.list()
    const deps = { resolvers: createResolvers({ roots }), gallery, fetchImage }
    const r = await prepareImagePrompts(
      { ...base, prompt: `https://img.example.org/a.png ${first?.id} a castle --iw 2 --ar 3:2 --no fog` },
      model,
      deps,
    )
    expect(fetched).toEqual(['https://img.example.org/a.png'])
    expect(r.request).toMatchObject({ prompt: 'a castle', negativePrompt: 'fog', width: 640, height: 448 })
    expect(r.request.imagePrompts?.map((p) => p.weight)).toEqual([0.75, 0.75])
    expect(r.request.imagePrompts?.every((p) => p.image instanceof Uint8Array)).toBe(true)
    expect(r.imagePrompt?.adapter.name).toBe('tiny-ip-adapter')
    expect(r.imagePrompt?.encoder.path).toBe(path.join(roots[0] as string, 'clip_vision', 'tiny-vit'))

    const blend = await prepareImagePrompts(
      {
        ...base,
        prompt: `/blend https://x.org/a.png https://x.org/b.png gallery:${first?.id} --dimensions portrait`,
      },
      model,
      deps,
    )
    expect(blend.request).toMatchObject({ prompt: '', width: 448, height: 640 })
    expect(blend.request.imagePrompts?.map((p) => p.weight)).toEqual([1, 1, 1])

    // explicit slots (A1111 / ComfyUI style) take --iw too; plain prompts pass through untouched
    const slots = await prepareImagePrompts(
      { ...base, prompt: 'a cat --iw 1', imagePrompts: [{ image: b, weight: 0.9 }] },
      model,
      deps,
    )
    expect(slots.request.imagePrompts?.[0]?.weight).toBe(0.5)
    expect(slots.warnings).toEqual([])
    const plain = await prepareImagePrompts({ ...base, prompt: 'a (cat:1.2), <lora:x:0.5>' }, model, deps)
    expect(plain.request).toEqual({ ...base, prompt: 'a (cat:1.2), <lora:x:0.5>' })
    expect(plain.imagePrompt).toBeUndefined()
    expect(plain.midjourneyPrompt).toBeUndefined()
    // `::` and the text flags work without images too (one parser for every prompt)
    const weights = await prepareImagePrompts({ ...base, prompt: 'a cat::2 a dog --no fur' }, model, deps)
    expect(weights.request).toEqual({ ...base, prompt: 'a cat :2 AND a dog', negativePrompt: 'fur' })
    expect(weights.midjourneyPrompt).toBe('a cat::2 a dog --no fur')
  })

  it('refuses modes, zero weights, unknown models and adapters of another family with readable errors', async () => {
    const deps = { resolvers: createResolvers({ roots }), gallery, fetchImage }
    const img = [{ image: a, weight: 1 }]
    await expect(
      prepareImagePrompts({ ...base, mode: 'inpaint', imagePrompts: img }, model, deps),
    ).rejects.toThrow(/txt2img and img2img/)
    const zero = await prepareImagePrompts({ ...base, imagePrompts: [{ image: a, weight: 0 }] }, model, deps)
    expect(zero.imagePrompt).toBeUndefined()
    expect(zero.warnings[0]).toMatch(/weight 0/)
    await expect(
      prepareImagePrompts({ ...base, imagePrompts: img, ipAdapter: 'nope' }, model, deps),
    ).rejects.toThrow(/IP-Adapter "nope" was not found/)
    await expect(
      prepareImagePrompts({ ...base, imagePrompts: img, imageEncoder: ADAPTER }, model, deps),
    ).rejects.toThrow(/not a CLIP image encoder/)
    await expect(
      prepareImagePrompts({ ...base, imagePrompts: img }, model, {
        ...deps,
        resolvers: createResolvers({ roots: [] }),
      }),
    ).rejects.toThrow(/need an IP-Adapter model/)
    await expect(
      prepareImagePrompts({ ...base, model: XL, imagePrompts: img }, { path: XL, name: 'tiny-sdxl' }, deps),
    ).rejects.toThrow(/No IP-Adapter in the library fits tiny-sdxl/)
    await expect(
      prepareImagePrompts({ ...base, prompt: '/blend https://x.org/a.png' }, model, deps),
    ).rejects.toThrow(/2 to 5 images/)
  })

  it(
    'the worker keeps its sessions when only the image weight changes',
    async () => {
      const messages: FromWorker[] = []
      const runner = new JobRunner((m) => messages.push(m))
      const job = (id: string, weight: number): WorkerJob => ({
        jobId: id,
        request: { ...base, steps: 2, width: 64, height: 64, seed: 3, imagePrompts: [{ image: a, weight }] },
        seed: 3,
        model,
        loras: [],
        imagePrompt: { adapter: { path: ADAPTER, name: 'tiny' }, encoder: { path: ENCODER, name: 'enc' } },
        cacheRoot: path.join(tmp, 'cache'),
        tokenizer: BPE,
        appVersion: 'test',
      })
      const create = vi.spyOn(ort.InferenceSession, 'create')
      await runner.run(job('j1', 1))
      const after1 = create.mock.calls.length
      await runner.run(job('j2', 0.4))
      expect(create.mock.calls.length).toBe(after1)
      create.mockRestore()
      const imgs = messages.flatMap((m) => (m.type === 'images' ? m.images : []))
      expect(messages.filter((m) => m.type === 'error')).toEqual([])
      expect(imgs).toHaveLength(2)
      const p = readImageParameters(imgs[1]?.png as Uint8Array)
      expect(p.settings).toMatchObject({
        'IP-Adapter': 'tiny',
        'IP-Adapter weight': '0.4',
        'Image prompts': '1',
      })
      runner.handle({ type: 'dispose' })
    },
    SLOW,
  )

  it(
    'the service runs a Midjourney /blend from gallery ids (worker thread)',
    async () => {
      const bus = new EventBus()
      const jobs = new JobManager(bus)
      const service = new GenerationService({
        bus,
        jobs,
        gallery,
        resolvers: createResolvers({ roots }),
        cacheRoot: path.join(tmp, 'cache'),
        appVersion: 'test',
        tokenizer: BPE,
        fetchImage,
      })
      try {
        await gallery.save(b, 2)
        const ids = (await gallery.list()).map((x) => x.id)
        let jobId = ''
        const done = new Promise<GenerationResult>((resolve) =>
          bus.subscribe((e) => {
            if (e.name === 'generate:finished' && e.payload.jobId === jobId) resolve(e.payload)
          }),
        )
        jobId = (
          await service.start({
            ...base,
            prompt: `/blend ${ids.slice(0, 2).join(' ')}`,
            steps: 2,
            width: 64,
            height: 64,
          })
        ).jobId
        const r = await done
        expect(r.state, r.error?.message).toBe('done')
        expect(r.images).toHaveLength(1)
        const params = readImageParameters(await gallery.image(r.images[0]?.id as string))
        expect(params.settings).toMatchObject({ 'Image prompts': '2', 'IP-Adapter weight': '1' })
      } finally {
        jobs.dispose()
        await service.dispose()
      }
    },
    SLOW,
  )

  it(
    'CLI: txt2img --ip-image (two images) and atelier blend write PNGs',
    async () => {
      const dir = path.join(tmp, 'cli')
      fs.mkdirSync(dir)
      fs.writeFileSync(path.join(dir, 'a.png'), a)
      fs.writeFileSync(path.join(dir, 'b.png'), b)
      const common = [
        '--model',
        SD1,
        '--tokenizer',
        BPE,
        '--cache',
        path.join(tmp, 'cache'),
        '--home',
        path.join(tmp, 'home'),
        '--quiet',
        '--steps',
        '2',
        '--seed',
        '4',
        '--width',
        '64',
        '--height',
        '64',
        '--ip-adapter',
        ADAPTER,
        '--image-encoder',
        ENCODER,
      ]
      const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
      try {
        const t2i = await runCli([
          'txt2img',
          ...common,
          '--prompt',
          'a cat',
          '--ip-image',
          path.join(dir, 'a.png'),
          '--ip-image',
          `${path.join(dir, 'b.png')}:0.5`,
          '--out',
          path.join(dir, 't2i.png'),
        ])
        expect(t2i).toBe(0)
        const blend = await runCli([
          'blend',
          path.join(dir, 'a.png'),
          path.join(dir, 'b.png'),
          ...common.filter((x) => x !== '--ip-image'),
          '--out',
          path.join(dir, 'blend.png'),
        ])
        expect(blend).toBe(0)
        const one = await runCli([
          'blend',
          path.join(dir, 'a.png'),
          ...common,
          '--out',
          path.join(dir, 'x.png'),
        ])
        expect(one).not.toBe(0)
      } finally {
        out.mockRestore()
      }
      const p = readImageParameters(new Uint8Array(fs.readFileSync(path.join(dir, 't2i.png'))))
      expect(p.settings).toMatchObject({ 'Image prompts': '2', 'Image prompt weights': '1, 0.5' })
      const q = readImageParameters(new Uint8Array(fs.readFileSync(path.join(dir, 'blend.png'))))
      expect(q.prompt).toBe('')
      expect(q.settings).toMatchObject({ 'Image prompts': '2', 'IP-Adapter weight': '1' })
    },
    SLOW,
  )
})
