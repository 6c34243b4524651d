import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import sharp from 'sharp'
import { afterAll, describe, expect, it } from 'vitest'
import { convertCheckpoint } from '../convert/convert'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import { ModelSet } from '../runtime/model-set'
import { createScheduler } from '../schedulers'
import { findTokenizer } from '../tokenizer'
import { encodePrompts, encodePromptsXL } from './conditioning'
import { runStudio, withDefaults } from './generate'
import type { StudioBatch } from './generate'
import {
  SDXL_ASPECT_BUCKETS,
  SDXL_SCHEDULER_CONFIG,
  sdxlTimeIds,
  timestepsFromDenoisingStart,
  withAddedConditioning,
} from './sdxl'
import type { AddedConditioning, DiffusionModel } from './types'

const EOS = 49407
const BOS = 49406

interface XlCall {
  ids: number[]
  ids2: number[]
  batch: number
}

/**
 * An SDXL-shaped fake: encoder 1 gives each token row [id/1000, 1] (width 2), encoder 2 gives
 * [id2/1000, 2, 3] (width 3) and pooled [chunk row's first id2 after BOS, 7]; the UNet records its added
 * conditioning and returns zeros; the VAE returns zeros.
 */
function fakeXL(): DiffusionModel & { calls: XlCall[]; added: AddedConditioning[] } {
  const calls: XlCall[] = []
  const added: AddedConditioning[] = []
  return {
    id: 'fake-xl',
    family: 'sdxl',
    calls,
    added,
    encodeText: () => Promise.reject(new Error('SDXL models do not use encodeText')),
    async encodeTextXL(ids, ids2, batch) {
      calls.push({ ids: Array.from(ids, Number), ids2: Array.from(ids2, Number), batch })
      const seq = ids.length / batch
      const h1 = new Float32Array(ids.length * 2)
      const h2 = new Float32Array(ids.length * 3)
      const pooled = new Float32Array(batch * 2)
      for (let i = 0; i < ids.length; i++) {
        h1.set([Number(ids[i]) / 1000, 1], i * 2)
        h2.set([Number(ids2[i]) / 1000, 2, 3], i * 3)
      }
      for (let b = 0; b < batch; b++) pooled.set([Number(ids2[b * seq + 1]), 7], b * 2)
      return {
        hidden: new ort.Tensor('float32', h1, [batch, seq, 2]),
        hidden2: new ort.Tensor('float32', h2, [batch, seq, 3]),
        pooled: new ort.Tensor('float32', pooled, [batch, 2]),
      }
    },
    async unet(sample, _t, _context, a) {
      if (a) added.push(a)
      return new ort.Tensor('float32', new Float32Array((sample.data as Float32Array).length), sample.dims)
    },
    async encode(image) {
      const [b = 1, , H = 8, W = 8] = image.dims
      const n = b * 4 * (H / 8) * (W / 8)
      const z = new ort.Tensor('float32', new Float32Array(n), [b, 4, H / 8, W / 8])
      return { mean: z, std: z }
    },
    async decode(latents) {
      const [b = 1, , h = 1, w = 1] = latents.dims
      return new ort.Tensor('float32', new Float32Array(b * 3 * h * 8 * w * 8), [b, 3, h * 8, w * 8])
    },
  }
}

/** Word -> id 1000 + its index (BPE stand-in); ',' -> 267 like CLIP. */
const encode = (text: string): number[] =>
  text
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => (w === ',' ? 267 : 1000 + (w.charCodeAt(0) % 50)))

describe('SDXL conditioning', () => {
  it('both tokenizations: EOS padding for encoder 1, 0 after the first EOS for encoder 2', async () => {
    const m = fakeXL()
    await encodePromptsXL({ model: m, encode, prompt: 'a cat', negativePrompt: 'ugly', batch: 1, cfg: true })
    expect(m.calls).toHaveLength(2)
    const [cond] = m.calls
    expect(cond?.ids.slice(0, 5)).toEqual([BOS, 1047, 1049, EOS, EOS])
    expect(cond?.ids2.slice(0, 5)).toEqual([BOS, 1047, 1049, EOS, 0])
    expect(cond?.ids2.slice(4).every((v) => v === 0)).toBe(true)
    expect(cond?.ids.slice(3).every((v) => v === EOS)).toBe(true)
  })

  it('an empty negative prompt gives zeros (context and pooled); an explicit one is encoded', async () => {
    const m = fakeXL()
    const c = await encodePromptsXL({
      model: m,
      encode,
      prompt: 'a cat',
      negativePrompt: '  ',
      batch: 2,
      cfg: true,
    })
    expect(m.calls).toHaveLength(1) // the uncond block is never encoded
    expect(c.context.dims).toEqual([4, 77, 5])
    expect(c.pooled?.dims).toEqual([4, 2])
    const ctx = c.context.data as Float32Array
    const per = 77 * 5
    expect(ctx.subarray(0, 2 * per).every((v) => v === 0)).toBe(true)
    expect(ctx[2 * per + 1 * 5]).toBeCloseTo(1.047) // cond row 1 = "a", encoder 1
    expect(Array.from((c.pooled?.data as Float32Array).subarray(0, 4))).toEqual([0, 0, 0, 0])
    expect(Array.from((c.pooled?.data as Float32Array).subarray(4))).toEqual([1047, 7, 1047, 7])
    expect(c.withUncond).toBe(true)

    const kept = await encodePromptsXL({
      model: fakeXL(),
      encode,
      prompt: 'a cat',
      negativePrompt: '',
      batch: 1,
      cfg: true,
      zeroEmptyNegative: false,
    })
    expect((kept.pooled?.data as Float32Array)[0]).toBe(EOS) // the empty prompt: BOS, EOS, 0...
    const neg = await encodePromptsXL({
      model: fakeXL(),
      encode,
      prompt: 'a',
      negativePrompt: 'bad',
      batch: 1,
      cfg: true,
    })
    expect((neg.pooled?.data as Float32Array)[0]).toBe(1048)
  })

  it('attention weights apply to each encoder on its own (A1111 mean restore per embedder)', async () => {
    const c = await encodePromptsXL({
      model: fakeXL(),
      encode,
      prompt: '(a:1.5) cat',
      negativePrompt: '',
      batch: 1,
      cfg: false,
    })
    const ctx = c.context.data as Float32Array
    const sums: [number, number] = [0, 0]
    const base: [number, number] = [0, 0]
    const ids = [BOS, 1047, 1049, ...new Array<number>(74).fill(EOS)]
    const ids2 = [BOS, 1047, 1049, EOS, ...new Array<number>(73).fill(0)]
    for (let r = 0; r < 77; r++) {
      sums[0] += ctx[r * 5]! + ctx[r * 5 + 1]!
      sums[1] += ctx[r * 5 + 2]! + ctx[r * 5 + 3]! + ctx[r * 5 + 4]!
      base[0] += ids[r]! / 1000 + 1
      base[1] += ids2[r]! / 1000 + 5
    }
    expect(sums[0]).toBeCloseTo(base[0], 2)
    expect(sums[1]).toBeCloseTo(base[1], 2)
    // "a" carries 1.5x the weight of "cat" in both encoders' parts
    expect(ctx[1 * 5]! / ctx[2 * 5]!).toBeCloseTo((1.5 * 1.047) / 1.049, 4)
    expect(ctx[1 * 5 + 3]! / ctx[2 * 5 + 3]!).toBeCloseTo(1.5, 4)
  })

  it('long prompts: 77-token chunks concatenated, the pooled embedding of the first chunk', async () => {
    const m = fakeXL()
    const words = Array.from({ length: 80 }, (_, i) => String.fromCharCode(65 + (i % 26))).join(' ')
    const c = await encodePromptsXL({
      model: m,
      encode,
      prompt: words,
      negativePrompt: '',
      batch: 1,
      cfg: true,
    })
    expect(c.context.dims).toEqual([2, 154, 5])
    expect(m.calls[0]?.batch).toBe(2)
    expect(Array.from(c.pooled?.data as Float32Array).slice(2)).toEqual([1000 + (65 % 50), 7])
  })

  it('encodePrompts dispatches on the model family', async () => {
    const c = await encodePrompts({
      model: fakeXL(),
      encode,
      prompt: 'a',
      negativePrompt: '',
      batch: 1,
      cfg: true,
    })
    expect(c.pooled).toBeDefined()
  })
})

describe('SDXL added conditioning and sizes', () => {
  it('time ids: original size, crop, target size (h, w), defaults from the image size', () => {
    expect(Array.from(sdxlTimeIds(1216, 832))).toEqual([832, 1216, 0, 0, 832, 1216])
    expect(
      Array.from(
        sdxlTimeIds(1024, 1024, {
          originalWidth: 512,
          originalHeight: 256,
          cropTop: 8,
          cropLeft: 16,
          targetWidth: 2048,
        }),
      ),
    ).toEqual([256, 512, 8, 16, 1024, 2048])
  })

  it('binds pooled embeddings and time ids to every UNet call, rows checked', async () => {
    const m = fakeXL()
    const pooled = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [2, 2])
    const bound = withAddedConditioning(m, pooled, sdxlTimeIds(64, 32))
    const s = new ort.Tensor('float32', new Float32Array(2 * 4 * 4 * 8), [2, 4, 4, 8])
    const ctx = new ort.Tensor('float32', new Float32Array(2 * 77 * 5), [2, 77, 5])
    await bound.unet(s, 1, ctx)
    expect(Array.from(m.added[0]?.timeIds.data as Float32Array)).toEqual([
      32, 64, 0, 0, 32, 64, 32, 64, 0, 0, 32, 64,
    ])
    expect(m.added[0]?.textEmbeds).toBe(pooled)
    const one = new ort.Tensor('float32', new Float32Array(4 * 4 * 8), [1, 4, 4, 8])
    await expect(bound.unet(one, 1, ctx)).rejects.toThrow(/2 rows; the UNet call has 1 samples/)
    expect(bound.family).toBe('sdxl')
  })

  it('aspect buckets are multiples of 64 near one megapixel', () => {
    for (const b of SDXL_ASPECT_BUCKETS) {
      expect(b.width % 64).toBe(0)
      expect(b.height % 64).toBe(0)
      expect(Math.abs((b.width * b.height) / 1024 ** 2 - 1)).toBeLessThan(0.08)
    }
  })

  it('denoising_start keeps the timesteps below the cutoff (strength ignored)', () => {
    const ts = timestepsFromDenoisingStart(createScheduler('Euler', SDXL_SCHEDULER_CONFIG), 20, 0.8)
    expect(Array.from(ts)).toEqual([151, 101, 51, 1])
    expect(() => timestepsFromDenoisingStart(createScheduler('Euler'), 20, 1)).toThrow(/between 0 and 1/)
  })

  it('the studio pipeline: SDXL defaults to 1024x1024 and feeds each canvas its own time ids', async () => {
    const m = fakeXL()
    const sizes: [number, number][] = []
    const s = await runStudio(withDefaults({ mode: 'txt2img', model: 'x', prompt: 'a', steps: 1 }), 1, {
      model: m,
      encode,
      inpaintModel: false,
      onBatch: (b) => {
        for (const i of b.images) sizes.push([i.width, i.height])
      },
    })
    expect([s.width, s.height]).toEqual([1024, 1024])
    expect(sizes).toEqual([[1024, 1024]])
    expect(Array.from(m.added[0]?.timeIds.data as Float32Array).slice(0, 6)).toEqual([
      1024, 1024, 0, 0, 1024, 1024,
    ])
    const m2 = fakeXL()
    await runStudio(
      withDefaults({
        mode: 'txt2img',
        model: 'x',
        prompt: 'a',
        steps: 1,
        width: 64,
        height: 32,
        sdxl: { originalWidth: 4096, originalHeight: 2048, cropLeft: 8 },
      }),
      1,
      { model: m2, encode, inpaintModel: false },
    )
    expect(Array.from(m2.added[0]?.timeIds.data as Float32Array).slice(0, 6)).toEqual([
      2048, 4096, 0, 8, 32, 64,
    ])
  })
})

const DIR = path.resolve(repoRoot(), '../shared/oracle-sdxl')
const HAVE = fs.existsSync(path.join(DIR, 'tiny-sdxl.safetensors'))
if (!HAVE) console.warn(`SDXL pipeline oracle tests skipped: ${DIR} is absent`)

describe.skipIf(!HAVE)('SDXL pipelines on the tiny model', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-sdxl-pipe-'))
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))
  const converted = HAVE
    ? await convertCheckpoint(path.join(DIR, 'tiny-sdxl.safetensors'), { cacheRoot: tmp, precision: 'fp32' })
    : undefined
  const set = new ModelSet('tiny-sdxl', converted?.paths ?? {}, { preference: 'cpu' })
  afterAll(() => set.release())
  const tok = HAVE
    ? await findTokenizer({ explicit: path.join(DIR, 'clip/bpe_simple_vocab_16e6.txt.gz') })
    : undefined
  const enc = (t: string): readonly number[] => tok?.encode(t) ?? []

  it('prompt conditioning equals the oracle prompt_embeds and pooled embeddings; empty negative = zeros', async () => {
    expect(set.family).toBe('sdxl')
    const f = await SafetensorsFile.open(path.join(DIR, 'text_encoders.safetensors'))
    const want = await f.readFloat32('prompt_embeds')
    const pooled = await f.readFloat32('pooled_prompt_embeds')
    await f.close()
    const c = await encodePrompts({
      model: set,
      encode: enc,
      prompt: 'a photo of a cat',
      negativePrompt: '',
      batch: 1,
      cfg: true,
    })
    const got = c.context.data as Float32Array
    const per = 77 * 192
    expect(got.subarray(0, per).every((v) => v === 0)).toBe(true)
    let max = 0
    for (let i = 0; i < per; i++) max = Math.max(max, Math.abs(got[per + i]! - want[i]!))
    expect(max).toBeLessThan(1e-4)
    const p = c.pooled?.data as Float32Array
    for (let i = 0; i < 128; i++) expect(Math.abs(p[128 + i]! - pooled[i]!)).toBeLessThan(1e-4)
  })

  it('low-memory sessions (fp16 weights cast per layer, no arena) give the same noise prediction', async () => {
    const lean = new ModelSet('lean', converted?.paths ?? {}, { preference: 'cpu', lowMemory: true })
    const f = await SafetensorsFile.open(path.join(DIR, 'unet.safetensors'))
    const get = async (n: string) => new ort.Tensor('float32', await f.readFloat32(n), f.info(n).shape)
    const sample = await get('sample')
    const ctx = await get('encoder_hidden_states')
    const added = { textEmbeds: await get('text_embeds'), timeIds: await get('time_ids') }
    const eps = await f.readFloat32('eps')
    await f.close()
    const a = (await set.unet(sample, 999, ctx, added)).data as Float32Array
    const b = (await lean.unet(sample, 999, ctx, added)).data as Float32Array
    await lean.release()
    let max = 0
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!))
    expect(max).toBeLessThan(1e-5)
    expect(a.length).toBe(eps.length / 3)
  })

  it('txt2img, img2img, inpaint and outpaint run through the shared pipeline code', async () => {
    const run = async (req: Parameters<typeof withDefaults>[0]): Promise<StudioBatch[]> => {
      const batches: StudioBatch[] = []
      await runStudio(withDefaults(req), 7, {
        model: set,
        encode: enc,
        inpaintModel: false,
        onBatch: (b) => {
          batches.push(b)
        },
      })
      return batches
    }
    const t2i = await run({
      mode: 'txt2img',
      model: 'x',
      prompt: 'a cat',
      steps: 3,
      width: 64,
      height: 48,
      batchSize: 2,
    })
    expect(t2i[0]?.images.map((i) => [i.width, i.height])).toEqual([
      [64, 48],
      [64, 48],
    ])
    const again = await run({
      mode: 'txt2img',
      model: 'x',
      prompt: 'a cat',
      steps: 3,
      width: 64,
      height: 48,
      batchSize: 2,
    })
    expect(Buffer.compare(Buffer.from(again[0]!.images[0]!.data), Buffer.from(t2i[0]!.images[0]!.data))).toBe(
      0,
    )
    const other = await run({
      mode: 'txt2img',
      model: 'x',
      prompt: 'a cat',
      steps: 3,
      width: 64,
      height: 48,
      sdxl: { originalWidth: 16, originalHeight: 16 },
    })
    expect(
      Buffer.compare(Buffer.from(other[0]!.images[0]!.data), Buffer.from(t2i[0]!.images[0]!.data)),
    ).not.toBe(0)

    const img = t2i[0]!.images[0]!
    const png = await sharp(Buffer.from(img.data), { raw: { width: 64, height: 48, channels: 3 } })
      .png()
      .toBuffer()
    const mask = Buffer.alloc(64 * 48)
    for (let y = 8; y < 32; y++) for (let x = 16; x < 48; x++) mask[y * 64 + x] = 255
    const maskPng = await sharp(mask, { raw: { width: 64, height: 48, channels: 1 } })
      .png()
      .toBuffer()
    const i2i = await run({
      mode: 'img2img',
      model: 'x',
      prompt: 'a dog',
      steps: 4,
      strength: 0.5,
      image: png,
    })
    expect(i2i[0]?.images[0]).toMatchObject({ width: 64, height: 48 })
    const inp = await run({
      mode: 'inpaint',
      model: 'x',
      prompt: 'a dog',
      steps: 4,
      image: png,
      mask: maskPng,
      maskBlur: 0,
    })
    const out = inp[0]!.images[0]!
    expect(out).toMatchObject({ width: 64, height: 48 })
    // Outside the mask the input pixels come back unchanged (latent blending + paste-back).
    expect(out.data[0]).toBe(img.data[0])
    const outp = await run({
      mode: 'outpaint',
      model: 'x',
      prompt: 'a dog',
      steps: 3,
      image: png,
      outpaint: { right: 16 },
    })
    expect(outp[0]?.images[0]).toMatchObject({ width: 80, height: 48 })
  })
})
