/**
 * Image prompts through the studio pipeline on the tiny models: the IP UNet variant beside a converted
 * model (cached, weights shared), txt2img / img2img with one and with several reference images, a weight
 * change that only changes a feed (no new graph, no new session), IP-Adapter + LoRA branches in one graph,
 * and the refusals (another family, a ready ONNX export).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { convertCheckpoint } from '../convert/convert'
import type { ConvertedModel } from '../convert/convert'
import { applyLoras } from '../lora/variant'
import { runStudio, withDefaults } from '../pipelines/generate'
import type { StudioEnv } from '../pipelines/generate'
import { ModelSet } from '../runtime/model-set'
import { findTokenizer } from '../tokenizer'
import type { ClipTokenizer } from '../tokenizer'
import { IpAdapterError } from './adapter'
import { ImagePromptRuntime } from './runtime'
import { ipUnetVariant } from './unet-variant'
import { IP_SCALE_INPUT } from './unet-hook'

// Seeded tiny models written by the tests themselves (bench/fixtures/tiny-models.ts; no ../shared needed).
const tiny = await ensureTinyModels()
const SD1 = tiny.sd15
const LORA = tiny.lora
const BPE = tiny.tokenizer
const XL = tiny.sdxl
const ADAPTER = tiny.ipAdapter
const ENCODER = tiny.imageEncoder

const files = { adapter: ADAPTER, encoder: ENCODER }

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

function diff(a: Uint8Array, b: Uint8Array): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)))
  return m
}

describe('image prompts in the studio pipeline (tiny SD 1.5)', () => {
  let tmp = ''
  let cache = ''
  let converted: ConvertedModel
  let tok: ClipTokenizer
  const runtime = new ImagePromptRuntime({ preference: 'cpu' })
  const images: Uint8Array[] = []

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ip-studio-'))
    cache = path.join(tmp, 'cache')
    converted = await convertCheckpoint(SD1, { cacheRoot: cache })
    tok = await findTokenizer({ explicit: BPE })
    images.push(await png(64, 48, 1), await png(40, 56, 2), await png(64, 64, 3))
  })
  afterAll(async () => {
    await runtime.release()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  async function generate(
    set: ModelSet,
    prompts: { bytes: Uint8Array; weight: number }[],
    mode: 'txt2img' | 'img2img' = 'txt2img',
  ): Promise<Uint8Array> {
    const tokens = prompts.length ? await runtime.tokens(files, prompts, { cacheRoot: cache }) : undefined
    if (tokens) set.setInputs({ unet: { [IP_SCALE_INPUT]: tokens.scale } })
    let out: Uint8Array | undefined
    const env: StudioEnv = {
      model: set,
      encode: (t) => tok.encode(t),
      inpaintModel: false,
      ...(tokens ? { imageTokens: tokens } : {}),
      onBatch: (b) => {
        out = b.images[0]?.data
      },
    }
    const req = withDefaults({
      mode,
      model: 'tiny',
      prompt: 'a photo of a cat',
      steps: 3,
      width: 64,
      height: 64,
      sampler: 'DDIM',
      ...(mode === 'img2img' ? { image: images[2], strength: 0.6 } : {}),
    })
    await runStudio(req, 7, env)
    if (!out) throw new Error('no image')
    return out
  }

  it('builds the variant once beside the converted UNet; its weights are the base graph files', async () => {
    const a = await ipUnetVariant(converted, ADAPTER, { cacheRoot: cache })
    expect(a).toMatchObject({ cached: false, tokens: 4, loraInputs: {} })
    expect(path.dirname(a.path)).toBe(path.dirname(converted.paths.unet))
    const b = await ipUnetVariant(converted, ADAPTER, { cacheRoot: cache })
    expect(b).toMatchObject({ cached: true, key: a.key, path: a.path })
    // only the adapter's K/V weights are new bytes: 2 x (5 layers 32 wide + 11 layers 64 wide) x 64 fp16
    const kvBytes = fs.statSync(path.join(path.dirname(a.path), `ip-${a.key}.bin`)).size
    expect(kvBytes).toBe(2 * (5 * 32 + 11 * 64) * 64 * 2)
  })

  it('txt2img and img2img with one and several images; a weight change reuses the session', async () => {
    const v = await ipUnetVariant(converted, ADAPTER, { cacheRoot: cache })
    const plain = new ModelSet('plain', converted.paths, { preference: 'cpu' })
    const set = new ModelSet('ip', { ...converted.paths, unet: v.path }, { preference: 'cpu' })
    try {
      const textOnly = await generate(plain, [])
      const create = vi.spyOn(ort.InferenceSession, 'create')
      const one = await generate(set, [{ bytes: images[0] as Uint8Array, weight: 0.8 }])
      const sessions = create.mock.calls.length
      expect(sessions).toBeGreaterThan(0)
      const unetSession = set.graph('unet')
      const lighter = await generate(set, [{ bytes: images[0] as Uint8Array, weight: 0.3 }])
      const zero = await generate(set, [{ bytes: images[0] as Uint8Array, weight: 1e-9 }])
      const several = await generate(set, [
        { bytes: images[0] as Uint8Array, weight: 1 },
        { bytes: images[1] as Uint8Array, weight: 0.5 },
      ])
      // weights 0.8 -> 0.3 -> 1e-9 -> (1, 0.5): feeds only; no session or graph was created again
      expect(create.mock.calls.length).toBe(sessions)
      expect(set.graph('unet')).toBe(unetSession)
      expect(unetSession.loaded).toBe(true)
      create.mockRestore()
      const i2i = await generate(set, [{ bytes: images[1] as Uint8Array, weight: 1 }], 'img2img')
      expect(diff(one, textOnly)).toBeGreaterThan(0)
      expect(diff(one, lighter)).toBeGreaterThan(0)
      expect(diff(several, one)).toBeGreaterThan(0)
      // at a vanishing weight the image attention adds (almost) nothing: the text-only picture
      expect(diff(zero, textOnly)).toBeLessThanOrEqual(1)
      expect(i2i.length).toBe(64 * 64 * 3)
    } finally {
      await set.release()
      await plain.release()
    }
  })

  it('IP-Adapter + LoRA in one UNet: at ip_scale 0 it is the LoRA branch graph, the multiplier is an input', async () => {
    const v = await ipUnetVariant(converted, ADAPTER, {
      cacheRoot: cache,
      loras: [{ path: LORA, multiplier: 0.8 }],
    })
    expect(v.loraInputs).toEqual({ lora_scale_0: 0.8 })
    const lora = await applyLoras(converted, [{ path: LORA, multiplier: 0.8 }], { cacheRoot: cache })
    const ip = new ModelSet('ip+lora', { ...converted.paths, unet: v.path }, { preference: 'cpu' })
    const br = new ModelSet('lora', lora.paths, { preference: 'cpu' }, lora.inputs)
    try {
      const sample = new ort.Tensor(
        'float32',
        Float32Array.from({ length: 2 * 4 * 8 * 8 }, (_, i) => Math.sin(i)),
        [2, 4, 8, 8],
      )
      const text = Float32Array.from({ length: 2 * 77 * 64 }, (_, i) => Math.cos(i * 0.37))
      const withTokens = new Float32Array(2 * 81 * 64)
      for (let r = 0; r < 2; r++) withTokens.set(text.subarray(r * 77 * 64, (r + 1) * 77 * 64), r * 81 * 64)
      ip.setInputs({ unet: { [IP_SCALE_INPUT]: 0 } })
      const a = await ip.unet(sample, 500, new ort.Tensor('float32', withTokens, [2, 81, 64]))
      const b = await br.unet(sample, 500, new ort.Tensor('float32', text, [2, 77, 64]))
      let m = 0
      const x = a.data as Float32Array
      const y = b.data as Float32Array
      for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs((x[i] as number) - (y[i] as number)))
      expect(m).toBeLessThan(1e-5)
    } finally {
      await ip.release()
      await br.release()
    }
  })

  it('refuses an adapter of another family and a ready ONNX export, naming both', async () => {
    const xl = await convertCheckpoint(XL, { cacheRoot: cache })
    await expect(ipUnetVariant(xl, ADAPTER, { cacheRoot: cache })).rejects.toThrow(IpAdapterError)
    await expect(ipUnetVariant(xl, ADAPTER, { cacheRoot: cache })).rejects.toThrow(/tiny-sdxl/)
    const onnxDir: ConvertedModel = {
      ...converted,
      manifest: { ...converted.manifest, source: { ...converted.manifest.source, kind: 'onnx' } },
    }
    await expect(ipUnetVariant(onnxDir, ADAPTER, { cacheRoot: cache })).rejects.toThrow(/ready ONNX export/)
  })
})
