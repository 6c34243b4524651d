/**
 * Create (issue 15) through the generation service on the tiny SD 1.5 checkpoint: Midjourney flags in every
 * mode (size, negative prompt, `Midjourney prompt` in the infotext), and A1111 variation seeds (Midjourney's V).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import type { GenerateRequest, GenerationResult } from '../../../preload/contract-types'
import { EventBus } from '../events'
import { JobManager } from '../jobs'
import { GalleryStore } from './gallery'
import { readImageParameters } from './parameters'
import { createResolvers } from './resolve'
import { GenerationService } from './service'

// Seeded tiny models written by the tests themselves (bench/fixtures/tiny-models.ts; no ../shared needed).
const tiny = await ensureTinyModels()
const TINY = tiny.sd15
const SLOW = 300_000

describe('Create: Midjourney flags in every mode, variation seeds (tiny SD 1.5)', () => {
  let tmp = ''
  let service: GenerationService
  let bus: EventBus
  let jobs: JobManager
  let gallery: GalleryStore

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-create-'))
    bus = new EventBus()
    jobs = new JobManager(bus)
    gallery = new GalleryStore(path.join(tmp, 'outputs'), readImageParameters)
    // No tokenizer option: the vocabulary bundled in resources/ is used (offline first run).
    service = new GenerationService({
      bus,
      jobs,
      gallery,
      resolvers: createResolvers({ roots: [path.join(tmp, 'models')] }),
      cacheRoot: path.join(tmp, 'cache'),
      tokenizerCacheDir: path.join(tmp, 'no-tokenizer-here'),
      appVersion: 'test',
    })
  })

  afterAll(async () => {
    jobs?.dispose()
    await service?.dispose()
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  async function generate(req: Partial<GenerateRequest>): Promise<GenerationResult> {
    let jobId = ''
    const early: GenerationResult[] = []
    let resolve: (r: GenerationResult) => void = () => {}
    const done = new Promise<GenerationResult>((r) => (resolve = r))
    const off = bus.subscribe((e) => {
      if (e.name !== 'generate:finished') return
      if (e.payload.jobId === jobId) resolve(e.payload)
      else early.push(e.payload)
    })
    try {
      jobId = (
        await service.start({
          mode: 'txt2img',
          model: TINY,
          prompt: 'a cat',
          steps: 2,
          seed: 3,
          ...req,
        } as GenerateRequest)
      ).jobId
      const mine = early.find((r) => r.jobId === jobId)
      if (mine) resolve(mine)
      const r = await done
      if (r.state !== 'done') throw new Error(`${r.state}: ${r.error?.message ?? ''}`)
      return r
    } finally {
      off()
    }
  }

  const params = (id: string): ReturnType<typeof readImageParameters> =>
    readImageParameters(new Uint8Array(fs.readFileSync(path.join(gallery.dir, `${id}.png`))))

  it(
    'img2img: `--ar 2:3 --no text, watermark` sizes the image 2:3 and fills the negative prompt',
    async () => {
      const input = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#884422' } })
        .png()
        .toBuffer()
      const line = 'a cat in a hat --ar 2:3 --no text, watermark'
      const r = await generate({ mode: 'img2img', image: new Uint8Array(input), strength: 0.5, prompt: line })
      const img = r.images[0]!
      expect([img.width, img.height]).toEqual([448, 640])
      const p = params(img.id)
      expect(p.prompt).toBe('a cat in a hat')
      expect(p.negativePrompt).toBe('text, watermark')
      expect([p.width, p.height]).toEqual([448, 640])
      expect(p.settings['Midjourney prompt']).toBe(line)
      expect(p.text).toContain('Size: 448x640')
    },
    SLOW,
  )

  it(
    'txt2img: variation seed + strength (A1111), same seed for the batch; infotext records both',
    async () => {
      const base = { width: 64, height: 64, seed: 1234 }
      const plain = await generate({ ...base })
      const zero = await generate({ ...base, variationSeed: 99, variationStrength: 0 })
      const varied = await generate({
        ...base,
        batchSize: 2,
        sameSeed: true,
        variationSeed: 99,
        variationStrength: 0.4,
      })
      const bytes = async (id: string): Promise<Buffer> =>
        sharp(path.join(gallery.dir, `${id}.png`))
          .raw()
          .toBuffer()
      // strength 0 is the plain image (and writes no variation fields)
      expect((await bytes(zero.images[0]!.id)).equals(await bytes(plain.images[0]!.id))).toBe(true)
      expect(params(zero.images[0]!.id).settings['Variation seed']).toBeUndefined()
      const [a, b] = varied.images
      expect([a!.seed, b!.seed]).toEqual([1234, 1234])
      const pa = params(a!.id)
      const pb = params(b!.id)
      expect(pa.seed).toBe(1234)
      expect(pb.seed).toBe(1234)
      expect(pa.settings['Variation seed']).toBe('99')
      expect(pb.settings['Variation seed']).toBe('100')
      expect(pa.settings['Variation seed strength']).toBe('0.4')
      // a variation differs from the plain image and from its sibling
      expect((await bytes(a!.id)).equals(await bytes(plain.images[0]!.id))).toBe(false)
      expect((await bytes(a!.id)).equals(await bytes(b!.id))).toBe(false)
      // re-running image a alone (seed, variation seed, strength) reproduces it exactly
      const again = await generate({ ...base, variationSeed: 99, variationStrength: 0.4 })
      expect((await bytes(again.images[0]!.id)).equals(await bytes(a!.id))).toBe(true)
    },
    SLOW,
  )

  it("the prompt bar parse: spans, the size at the model's base, warnings and errors", async () => {
    const r = await service.describePrompt('/imagine a fox --ar 2:3 --no snow --v 6', 'blur', TINY)
    expect(r).toMatchObject({
      midjourney: true,
      prompt: 'a fox',
      negativePrompt: 'blur, snow',
      width: 448,
      height: 640,
    })
    expect(r.warnings.join(' ')).toMatch(/--v/)
    expect(r.spans.map((x) => x.text).join('')).toBe('/imagine a fox --ar 2:3 --no snow --v 6')
    expect(r.spans.filter((x) => x.kind === 'unknown').map((x) => x.text)).toEqual(['--v', '6'])
    expect(r.syntax.length).toBeGreaterThan(5)
    const bad = await service.describePrompt('/blend https://a.test/1.png')
    expect(bad.error).toMatch(/2 to 5 images/)
    expect((await service.describePrompt('a plain prompt')).midjourney).toBe(false)
  })

  it(
    'active jobs: request and latest progress while running (for a studio that reloads), gone when finished',
    async () => {
      let jobId = ''
      const seen = new Promise<void>((resolve) => {
        const off = bus.subscribe((e) => {
          if (e.name === 'generate:progress' && e.payload.jobId === jobId && e.payload.step >= 1) {
            off()
            resolve()
          }
        })
      })
      const done = new Promise<GenerationResult>((resolve) => {
        const off = bus.subscribe((e) => {
          if (e.name === 'generate:finished' && e.payload.jobId === jobId) {
            off()
            resolve(e.payload)
          }
        })
      })
      jobId = (
        await service.start({
          mode: 'txt2img',
          model: TINY,
          prompt: 'a cat --no dogs',
          steps: 40,
          width: 64,
          height: 64,
          seed: 5,
        })
      ).jobId
      expect(service.activeJobs().map((a) => a.jobId)).toContain(jobId)
      await seen
      const a = service.activeJobs().find((x) => x.jobId === jobId)
      expect(a?.state).toBe('running')
      expect(a?.request.prompt).toBe('a cat --no dogs')
      expect(a?.progress?.total).toBe(40)
      service.cancel(jobId)
      expect((await done).state).toBe('cancelled')
      expect(service.activeJobs().find((x) => x.jobId === jobId)).toBeUndefined()
    },
    SLOW,
  )
})
