/**
 * Generation end to end on seeded tiny checkpoints (bench/fixtures/tiny-models.ts): the CLI for each mode, the service with its
 * worker thread (seeds, cancel, errors), pixels outside the mask bit-identical, output sizes, metadata.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import type { GenerateRequest, GenerationProgress, GenerationResult } from '../../../preload/contract-types'
import { runCli } from '../../cli/index'
import { blurMask, decodeImage, loadMask } from '../../engine/image'
import type { RawImage } from '../../engine/image'
import { writeSafetensors } from '../../model-formats/safetensors'
import { EventBus } from '../events'
import { JobManager } from '../jobs'
import { GalleryStore } from './gallery'
import { readImageParameters } from './parameters'
import { createResolvers } from './resolve'
import { toApiError } from './runner'
import { GenerationService } from './service'
import { GenerationWorker } from './worker-client'

// Seeded tiny models written by the tests themselves (no ../shared needed).
const tiny = await ensureTinyModels()
const TINY = tiny.sd15
const TINY9 = tiny.sd15Inpaint
const BPE = tiny.tokenizer

/** Generous: these run real (tiny) models on a shared 2-core machine. */
const SLOW = 300_000
const W = 96
const H = 64

async function writeInputs(dir: string): Promise<{ image: string; mask: string }> {
  const rgb = Buffer.alloc(W * H * 3)
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 3
      rgb[i] = Math.round((x * 255) / W)
      rgb[i + 1] = Math.round((y * 255) / H)
      rgb[i + 2] = (x ^ y) & 16 ? 200 : 40
    }
  const m = Buffer.alloc(W * H)
  for (let y = 16; y < 40; y++) for (let x = 40; x < 72; x++) m[y * W + x] = 255
  const image = path.join(dir, 'in.png')
  const mask = path.join(dir, 'mask.png')
  await sharp(rgb, { raw: { width: W, height: H, channels: 3 } })
    .png()
    .toFile(image)
  await sharp(m, { raw: { width: W, height: H, channels: 1 } })
    .png()
    .toFile(mask)
  return { image, mask }
}

async function pixels(file: string | Uint8Array): Promise<RawImage> {
  return decodeImage(typeof file === 'string' ? new Uint8Array(fs.readFileSync(file)) : file)
}

describe('generation (tiny SD 1.5)', () => {
  let tmp = ''
  let cache = ''
  let inputs: { image: string; mask: string }
  let service: GenerationService
  let bus: EventBus
  let jobs: JobManager
  let gallery: GalleryStore

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-generation-'))
    cache = path.join(tmp, 'cache')
    inputs = await writeInputs(tmp)
    bus = new EventBus()
    jobs = new JobManager(bus)
    gallery = new GalleryStore(path.join(tmp, 'outputs'), readImageParameters)
    service = new GenerationService({
      bus,
      jobs,
      gallery,
      // The tiny-models folder is a library root: prompt LoRA tags resolve inside the library only.
      resolvers: createResolvers({ roots: [path.join(tmp, 'models'), tiny.dir] }),
      cacheRoot: cache,
      appVersion: 'test',
      tokenizer: BPE,
    })
  })

  afterAll(async () => {
    jobs?.dispose()
    await service?.dispose()
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  /** Starts a job and resolves with its result and progress events. */
  async function generate(
    req: Partial<GenerateRequest>,
    onProgress?: (p: GenerationProgress) => void,
  ): Promise<{ result: GenerationResult; progress: GenerationProgress[] }> {
    const progress: GenerationProgress[] = []
    let jobId = ''
    const early: GenerationResult[] = []
    let resolve: (r: GenerationResult) => void = () => {}
    const done = new Promise<GenerationResult>((r) => (resolve = r))
    const off = bus.subscribe((e) => {
      if (e.name === 'generate:progress' && e.payload.jobId === jobId) {
        progress.push(e.payload)
        onProgress?.(e.payload)
      }
      if (e.name === 'generate:finished') {
        if (e.payload.jobId === jobId) resolve(e.payload)
        else early.push(e.payload)
      }
    })
    try {
      jobId = (
        await service.start({
          mode: 'txt2img',
          model: TINY,
          prompt: 'a photo of a cat',
          steps: 4,
          seed: 11,
          width: 64,
          height: 64,
          ...req,
        } as GenerateRequest)
      ).jobId
      const mine = early.find((r) => r.jobId === jobId)
      if (mine) resolve(mine)
      return { result: await done, progress }
    } finally {
      off()
    }
  }

  async function cli(args: string[]): Promise<number> {
    return runCli([
      ...args,
      '--tokenizer',
      BPE,
      '--cache',
      cache,
      '--home',
      path.join(tmp, 'home'),
      '--quiet',
      '--steps',
      '4',
      '--seed',
      '5',
      '--prompt',
      'a photo of a cat',
    ])
  }

  it(
    'CLI: txt2img, img2img, inpaint and outpaint each write a PNG of the right size',
    async () => {
      const out = (n: string): string => path.join(tmp, `${n}.png`)
      expect(
        await cli(['txt2img', '--model', TINY, '--width', '64', '--height', '48', '--out', out('t2i')]),
      ).toBe(0)
      expect(
        await cli([
          'img2img',
          '--model',
          TINY,
          '--image',
          inputs.image,
          '--strength',
          '0.6',
          '--out',
          out('i2i'),
        ]),
      ).toBe(0)
      expect(
        await cli([
          'inpaint',
          '--model',
          TINY,
          '--image',
          inputs.image,
          '--mask',
          inputs.mask,
          '--out',
          out('inp'),
        ]),
      ).toBe(0)
      expect(
        await cli([
          'outpaint',
          '--model',
          TINY,
          '--image',
          inputs.image,
          '--right',
          '24',
          '--top',
          '8',
          '--out',
          out('outp'),
        ]),
      ).toBe(0)
      const sizes = await Promise.all(
        ['t2i', 'i2i', 'inp', 'outp'].map(async (n) => sharp(out(n)).metadata()),
      )
      expect(sizes.map((m) => [m.width, m.height])).toEqual([
        [64, 48],
        [W, H],
        [W, H],
        [W + 24, H + 8],
      ])
    },
    SLOW,
  )

  it(
    'CLI: bad input is a readable error with a nonzero exit code',
    async () => {
      const out = path.join(tmp, 'bad.png')
      const errs: string[] = []
      const write = process.stderr.write.bind(process.stderr)
      process.stderr.write = ((s: string) => {
        errs.push(String(s))
        return true
      }) as typeof process.stderr.write
      try {
        expect(await cli(['txt2img', '--model', TINY, '--width', '60', '--out', out])).toBe(1)
        expect(await cli(['txt2img', '--model', path.join(tmp, 'nope.safetensors'), '--out', out])).toBe(1)
      } finally {
        process.stderr.write = write
      }
      expect(errs.join('')).toMatch(/width must be a multiple of 8/)
      expect(errs.join('')).toMatch(/Model ".*nope\.safetensors" was not found/)
      expect(fs.existsSync(out)).toBe(false)
    },
    SLOW,
  )

  it(
    'the same seed gives the same PNG bytes; batch images use seed, seed + 1',
    async () => {
      const a = await generate({ seed: 42, batchSize: 2 })
      const b = await generate({ seed: 42, batchSize: 2 })
      const c = await generate({ seed: 42, batchCount: 2 })
      expect(a.result.state).toBe('done')
      expect(a.result.images.map((i) => i.seed)).toEqual([42, 43])
      expect(c.result.images.map((i) => i.seed)).toEqual([42, 43])
      const bytes = async (id: string): Promise<Buffer> => Buffer.from(await gallery.image(id))
      const [a0, a1, b0, b1, c0, c1] = await Promise.all(
        [...a.result.images, ...b.result.images, ...c.result.images].map((i) => bytes(i.id)),
      )
      expect(a0?.equals(b0 as Buffer)).toBe(true)
      expect(a1?.equals(b1 as Buffer)).toBe(true)
      expect(a0?.equals(a1 as Buffer)).toBe(false)
      // one image per UNet call vs two: same noise, same picture up to float rounding
      for (const [x, y] of [
        [a0, c0],
        [a1, c1],
      ] as const) {
        const px = await pixels(new Uint8Array(x as Buffer))
        const py = await pixels(new Uint8Array(y as Buffer))
        let worst = 0
        for (let i = 0; i < px.data.length; i++) worst = Math.max(worst, Math.abs(px.data[i]! - py.data[i]!))
        expect(worst).toBeLessThanOrEqual(2)
      }
    },
    SLOW,
  )

  it(
    'reports progress per step with an ETA and preview PNGs',
    async () => {
      const r = await generate({ steps: 12 })
      expect(r.progress.map((p) => p.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
      expect(r.progress.every((p) => p.total === 12 && p.etaMs >= 0)).toBe(true)
      const previews = r.progress.filter((p) => p.preview)
      expect(previews.length).toBeGreaterThan(0)
      expect(Array.from(previews[0]?.preview?.subarray(1, 4) ?? [])).toEqual([0x50, 0x4e, 0x47])
    },
    SLOW,
  )

  it(
    'a cancelled job stops within a step and saves nothing',
    async () => {
      let cancelledAt = 0
      let jobRef = ''
      const off = bus.subscribe((e) => {
        if (e.name === 'generate:progress' && e.payload.step === 3 && !cancelledAt) {
          cancelledAt = 3
          jobRef = e.payload.jobId
          service.cancel(jobRef)
        }
      })
      try {
        const r = await generate({ steps: 400, width: 128, height: 128 })
        expect(r.result.state).toBe('cancelled')
        expect(r.result.images).toEqual([])
        const last = Math.max(...r.progress.map((p) => p.step))
        // one step may be in flight when the cancel message arrives
        expect(last - cancelledAt).toBeLessThanOrEqual(2)
      } finally {
        off()
      }
    },
    SLOW,
  )

  it(
    'inpaint: pixels outside the blurred mask keep their exact bytes (ordinary and 9-channel, whole and only masked)',
    async () => {
      const image = new Uint8Array(fs.readFileSync(inputs.image))
      const mask = new Uint8Array(fs.readFileSync(inputs.mask))
      const src = await pixels(image)
      const blurred = blurMask(await loadMask(mask), 4)
      const cases: Partial<GenerateRequest>[] = [
        { model: TINY },
        { model: TINY9 },
        { model: TINY, inpaintArea: 'only-masked', onlyMaskedPadding: 8, width: 64, height: 64 },
        { model: TINY, maskedContent: 'fill', strength: 0.9 },
        { model: TINY, maskedContent: 'latent-noise', strength: 1 },
      ]
      for (const c of cases) {
        const { result } = await generate({
          mode: 'inpaint',
          image,
          mask,
          width: undefined,
          height: undefined,
          ...c,
        })
        expect(result.state, JSON.stringify(result.error)).toBe('done')
        const out = await pixels(await gallery.image(result.images[0]!.id))
        expect([out.width, out.height]).toEqual([W, H])
        let same = 0
        let changedInside = 0
        for (let p = 0; p < W * H; p++) {
          const eq = [0, 1, 2].every((k) => out.data[p * 3 + k] === src.data[p * 3 + k])
          if (blurred.data[p] === 0) {
            expect(
              eq,
              `pixel ${p % W},${Math.floor(p / W)} changed outside the mask (${JSON.stringify(c)})`,
            ).toBe(true)
            same++
          } else if (!eq) changedInside++
        }
        expect(same).toBeGreaterThan(W * H * 0.5)
        expect(changedInside).toBeGreaterThan(100)
      }
    },
    SLOW,
  )

  it(
    'outpaint: output = input + extension, original pixels outside the overlap band unchanged',
    async () => {
      const image = new Uint8Array(fs.readFileSync(inputs.image))
      const src = await pixels(image)
      const ext = { left: 12, right: 0, top: 8, bottom: 20, overlap: 16 }
      for (const model of [TINY, TINY9]) {
        const { result } = await generate({
          mode: 'outpaint',
          model,
          image,
          outpaint: ext,
          width: undefined,
          height: undefined,
        })
        expect(result.state, JSON.stringify(result.error)).toBe('done')
        const out = await pixels(await gallery.image(result.images[0]!.id))
        expect([out.width, out.height]).toEqual([W + 12, H + 28])
        for (let y = 0; y < H; y++)
          for (let x = 0; x < W; x++) {
            const inBand = x < ext.overlap || y < ext.overlap || y >= H - ext.overlap
            if (inBand) continue
            const o = ((y + ext.top) * out.width + x + ext.left) * 3
            const s = (y * W + x) * 3
            expect([out.data[o], out.data[o + 1], out.data[o + 2]], `${x},${y}`).toEqual([
              src.data[s],
              src.data[s + 1],
              src.data[s + 2],
            ])
          }
      }
      const zoom = await generate({
        mode: 'outpaint',
        model: TINY,
        image,
        outpaint: { zoomOut: 1.5 },
        width: undefined,
        height: undefined,
      })
      expect(zoom.result.state).toBe('done')
      expect([zoom.result.images[0]?.width, zoom.result.images[0]?.height]).toEqual([W, H])
      const twice = await generate({
        mode: 'outpaint',
        model: TINY,
        image,
        outpaint: { right: 16, repeat: 2 },
        width: undefined,
        height: undefined,
      })
      expect([twice.result.images[0]?.width, twice.result.images[0]?.height]).toEqual([W + 32, H])
    },
    SLOW,
  )

  it(
    'img2img output sizes for every resize mode; exact steps runs the requested steps',
    async () => {
      const image = new Uint8Array(fs.readFileSync(inputs.image))
      for (const resizeMode of ['just-resize', 'crop-and-resize', 'resize-and-fill'] as const) {
        const r = await generate({ mode: 'img2img', image, width: 64, height: 72, resizeMode, strength: 0.5 })
        expect(r.result.state).toBe('done')
        expect([r.result.images[0]?.width, r.result.images[0]?.height]).toEqual([64, 72])
        // A1111: t_enc = int(0.5 x 4) = 2 -> t_enc + 1 sampler steps
        expect(r.progress.at(-1)?.total).toBe(3)
      }
      const exact = await generate({ mode: 'img2img', image, strength: 0.5, steps: 4, exactSteps: true })
      expect(exact.progress.at(-1)?.total).toBe(4)
      // diffusers convention: int(steps x strength)
      const diffusers = await generate({
        mode: 'img2img',
        image,
        strength: 0.5,
        steps: 4,
        samplerConvention: 'diffusers',
      })
      expect(diffusers.progress.at(-1)?.total).toBe(2)
    },
    SLOW,
  )

  it(
    'the parameters chunk round-trips (A1111 infotext with hashes, LoRA, strength, mask settings)',
    async () => {
      const image = new Uint8Array(fs.readFileSync(inputs.image))
      const mask = new Uint8Array(fs.readFileSync(inputs.mask))
      const { result } = await generate({
        mode: 'inpaint',
        image,
        mask,
        prompt: 'a (cat:1.2), oil painting <lora:tiny-lora:0.7>',
        negativePrompt: 'blurry',
        sampler: 'DPM++ 2M Karras',
        cfgScale: 6.5,
        seed: 123,
        width: undefined,
        height: undefined,
        strength: 0.55,
        exactSteps: true,
        maskBlur: 6,
        maskedContent: 'fill',
        clipSkip: 2,
      })
      expect(result.state, JSON.stringify(result.error)).toBe('done')
      const p = gallery.parameters(await gallery.image(result.images[0]!.id))
      expect(p).toMatchObject({
        prompt: 'a (cat:1.2), oil painting <lora:tiny-lora:0.7>',
        negativePrompt: 'blurry',
        steps: 4,
        sampler: 'DPM++ 2M',
        scheduleType: 'Karras',
        cfgScale: 6.5,
        seed: 123,
        width: W,
        height: H,
        model: 'tiny-sd15',
        denoisingStrength: 0.55,
        exactSteps: true,
        clipSkip: 2,
        maskBlur: 6,
        maskedContent: 'fill',
        inpaintArea: 'Whole picture',
      })
      expect(p.modelHash).toMatch(/^[0-9a-f]{10}$/)
      expect(p.loraHashes?.map((h) => h.name)).toEqual(['tiny-lora'])
      expect(p.loraHashes?.[0]?.hash).toMatch(/^[0-9a-f]{12}$/)
      expect(p.text).toContain('Lora hashes:')
      const noMeta = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
        .png()
        .toBuffer()
      expect(gallery.parameters(new Uint8Array(noMeta)).text).toBeNull()
      expect(() => gallery.parameters(new Uint8Array([1, 2, 3]))).toThrow(/Not a PNG/)
    },
    SLOW,
  )

  it(
    'clean errors: bad sizes, missing model, incompatible LoRA, empty mask; the gallery lists and deletes',
    async () => {
      await expect(
        service.start({ mode: 'txt2img', model: TINY, prompt: 'x', width: 100 }),
      ).rejects.toMatchObject({
        code: 'invalid-input',
      })
      await expect(
        service.start({ mode: 'txt2img', model: path.join(tmp, 'missing.safetensors'), prompt: 'x' }),
      ).rejects.toMatchObject({
        code: 'not-found',
      })
      await expect(service.start({ mode: 'img2img', model: TINY, prompt: 'x' })).rejects.toMatchObject({
        code: 'invalid-input',
      })
      await expect(
        service.start({ mode: 'txt2img', model: TINY, prompt: 'x', sampler: 'Heun++' }),
      ).rejects.toThrow(/Unknown sampler "Heun\+\+"; known samplers: DPM\+\+ 2M, .*DPM\+\+ 2S a, .*Euler a, /)
      const sdxlLora = path.join(tmp, 'sdxl-lora.safetensors')
      const t = (shape: number[]) => ({
        dtype: 'F16' as const,
        shape,
        data: new Uint16Array(shape.reduce((a, b) => a * b, 1)),
      })
      await writeSafetensors(sdxlLora, {
        'lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': t([4, 768]),
        'lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight': t([768, 4]),
        'lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': t([4, 1280]),
        'lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight': t([1280, 4]),
        'lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight': t([4, 2048]),
        'lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight': t([640, 4]),
      })
      const bad = await generate({ loras: [{ name: sdxlLora, weight: 1 }] })
      expect(bad.result.state).toBe('failed')
      expect(bad.result.error?.code).toBe('unsupported')
      expect(bad.result.error?.message).toMatch(/SDXL/)
      const blank = new Uint8Array(
        await sharp({ create: { width: W, height: H, channels: 3, background: '#000' } })
          .png()
          .toBuffer(),
      )
      const empty = await generate({
        mode: 'inpaint',
        image: new Uint8Array(fs.readFileSync(inputs.image)),
        mask: blank,
        width: undefined,
        height: undefined,
      })
      expect(empty.result.error?.message).toMatch(/mask is empty/)
      // the service keeps working after failures
      const ok = await generate({})
      expect(ok.result.state).toBe('done')
      const list = await gallery.list()
      expect(list.some((e) => e.id === ok.result.images[0]?.id)).toBe(true)
      await gallery.delete(ok.result.images[0]!.id)
      expect((await gallery.list()).some((e) => e.id === ok.result.images[0]?.id)).toBe(false)
      await expect(gallery.image('../../etc/passwd')).rejects.toMatchObject({ code: 'invalid-input' })
    },
    SLOW,
  )

  it(
    'jobs run one at a time; a job cancelled while queued finishes at once',
    async () => {
      const order: string[] = []
      const off = bus.subscribe((e) => {
        if (e.name === 'generate:finished') order.push(`${e.payload.jobId}:${e.payload.state}`)
      })
      try {
        const first = generate({ steps: 30, width: 128, height: 128 })
        await new Promise((r) => setTimeout(r, 20))
        const queued = await service.start({
          mode: 'txt2img',
          model: TINY,
          prompt: 'x',
          steps: 4,
          width: 64,
          height: 64,
        })
        service.cancel(queued.jobId)
        const a = await first
        expect(a.result.state).toBe('done')
        expect(order.indexOf(`${queued.jobId}:cancelled`)).toBeGreaterThanOrEqual(0)
        expect(order.indexOf(`${queued.jobId}:cancelled`)).toBeLessThan(
          order.indexOf(`${a.result.jobId}:done`),
        )
      } finally {
        off()
      }
    },
    SLOW,
  )

  it(
    'a crashed worker fails its job with a readable error and is replaced for the next one',
    async () => {
      const b2 = new EventBus()
      const j2 = new JobManager(b2)
      let made = 0
      const s2 = new GenerationService({
        bus: b2,
        jobs: j2,
        gallery,
        resolvers: createResolvers({ roots: [] }),
        cacheRoot: cache,
        appVersion: 'test',
        tokenizer: BPE,
        makeWorker: (h) => {
          made++
          if (made > 1) return new GenerationWorker(h)
          let alive = true
          return {
            get alive() {
              return alive
            },
            send: () => {
              alive = false
              setTimeout(() => h.exit('the generation worker stopped (exit code 134)'), 5)
            },
            terminate: async () => {
              alive = false
            },
          } as unknown as GenerationWorker
        },
      })
      const results: GenerationResult[] = []
      b2.subscribe((e) => {
        if (e.name === 'generate:finished') results.push(e.payload)
      })
      const req: GenerateRequest = {
        mode: 'txt2img',
        model: TINY,
        prompt: 'x',
        steps: 2,
        width: 64,
        height: 64,
      }
      try {
        await s2.start(req)
        await vi.waitFor(() => expect(results).toHaveLength(1), { timeout: 10_000 })
        expect(results[0]).toMatchObject({ state: 'failed', error: { code: 'internal' } })
        expect(results[0]?.error?.message).toMatch(/worker stopped \(exit code 134\)/)
        await s2.start(req)
        await vi.waitFor(() => expect(results).toHaveLength(2), { timeout: 60_000 })
        expect(results[1]?.state).toBe('done')
        expect(made).toBe(2)
      } finally {
        j2.dispose()
        await s2.dispose()
      }
    },
    SLOW,
  )

  it(
    'out-of-memory and other engine errors map to readable codes',
    () => {
      expect(
        toApiError(new Error('[ErrorCode:RuntimeException] Failed to allocate memory for requested buffer'))
          .code,
      ).toBe('out-of-memory')
      expect(toApiError(new RangeError('Array buffer allocation failed')).code).toBe('out-of-memory')
      expect(toApiError(Object.assign(new Error('x'), { name: 'AbortError' })).code).toBe('cancelled')
      expect(toApiError(new Error('size: width 60 is not a multiple of 8')).code).toBe('invalid-input')
    },
    SLOW,
  )
})
