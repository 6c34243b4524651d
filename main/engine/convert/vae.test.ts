/**
 * Standalone VAEs (A1111 `models/VAE`): every layout read to the same canonical weights, converted once into
 * a cache entry of their own, and swapped into a loaded model without touching its UNet or text encoder.
 * The pictures must come from the override's decoder (the same final latents decoded directly with its
 * graph give the same pixels), and img2img must encode with the override's encoder.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { writeTinyVae } from '../../../bench/fixtures/tiny-vae'
import { encodePng, imageToTensor, tensorToImage } from '../image'
import type { RawImage } from '../image'
import { runStudio, withDefaults } from '../pipelines/generate'
import type { DiffusionModel } from '../pipelines/types'
import { ModelSet } from '../runtime/model-set'
import { findTokenizer } from '../tokenizer'
import type { ClipTokenizer } from '../tokenizer'
import { SafetensorsFile } from '../../model-formats/safetensors'
import type { TensorToSave } from '../../model-formats/pickle/torch-writer'
import { torchSaveZip } from '../../model-formats/pickle/torch-writer'
import { convertCheckpoint } from './convert'
import { convertVae, openVaeSource } from './vae'

const SLOW = 300_000
let tmp = ''
let checkpoint = ''
let vaeFile = ''
let tokenizer: ClipTokenizer

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-vae-'))
  checkpoint = (await ensureTinyModels()).sd15
  vaeFile = writeTinyVae(path.join(tmp, 'VAE', 'tiny-ft-mse.safetensors'), { seed: 11 })
  tokenizer = await findTokenizer()
}, SLOW)
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe('standalone VAE sources', () => {
  it('reads LDM (with and without first_stage_model.), diffusers and a diffusers vae/ folder alike', async () => {
    const ldm = await openVaeSource(vaeFile)
    expect(ldm.ignored).toBe(0)
    const prefixed = writeTinyVae(path.join(tmp, 'prefixed.safetensors'), {
      seed: 11,
      layout: 'ldm-prefixed',
    })
    const diffusers = writeTinyVae(path.join(tmp, 'sd-vae', 'vae', 'diffusion_pytorch_model.safetensors'), {
      seed: 11,
      layout: 'diffusers',
    })
    const names = (m: Map<string, unknown>): string[] => [...m.keys()].sort()
    for (const other of [
      prefixed,
      diffusers,
      path.dirname(diffusers),
      path.dirname(path.dirname(diffusers)),
    ]) {
      const s = await openVaeSource(other)
      expect(names(s.vae)).toEqual(names(ldm.vae))
      expect(s.ignored).toBe(0)
    }
    // An A1111 .pt / .ckpt VAE ({'state_dict': ...}, torch.save zip) through the safe reader, `loss.*` ignored.
    const pt = path.join(tmp, 'tiny-ft-mse.vae.pt')
    fs.writeFileSync(pt, await torchZipOf(vaeFile, { 'loss.logvar': [] }))
    const pickled = await openVaeSource(pt)
    expect(names(pickled.vae)).toEqual(names(ldm.vae))
    expect(pickled.ignored).toBe(1)
    // The checkpoint's own VAE keys read the same way (first_stage_model. prefix).
    expect(names((await openVaeSource(checkpoint)).vae)).toEqual(names(ldm.vae))
    await expect(openVaeSource(path.join(tmp, 'missing.safetensors'))).rejects.toThrow(/no such file/)
    fs.writeFileSync(path.join(tmp, 'empty-dir-marker'), '')
    await expect(openVaeSource(tmp)).rejects.toThrow(/not a VAE folder/)
  })

  it('converts once per content (SHA-256), encoder and decoder graphs only', async () => {
    const cacheRoot = path.join(tmp, 'cache-once')
    const first = await convertVae(vaeFile, { cacheRoot })
    expect(first.cached).toBe(false)
    expect(Object.keys(first.manifest.graphs).sort()).toEqual(['vae_decoder', 'vae_encoder'])
    expect(first.manifest.source.kind).toBe('vae')
    const moved = path.join(tmp, 'renamed.safetensors')
    fs.copyFileSync(vaeFile, moved)
    const again = await convertVae(moved, { cacheRoot })
    expect(again.cached).toBe(true)
    expect(again.dir).toBe(first.dir)
    expect(again.manifest.source.path).toBe(fs.realpathSync(moved))
  })
})

/** A torch.save zip ({'state_dict': ...}) of a safetensors file's tensors, plus zero-filled F32 extras. */
async function torchZipOf(file: string, extra: Record<string, number[]> = {}): Promise<Uint8Array> {
  const st = await SafetensorsFile.open(file)
  const tensors: [string, TensorToSave][] = []
  for (const [name, t] of st.tensors)
    tensors.push([name, { dtype: t.dtype as 'F16', shape: t.shape, bytes: await st.readRaw(name) }])
  await st.close()
  for (const [name, shape] of Object.entries(extra))
    tensors.push([name, { dtype: 'F32', shape, bytes: new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)) }])
  return torchSaveZip(tensors, { wrapper: 'state_dict', archive: 'vae' })
}

interface Trace {
  latents: Float32Array[]
  encoded: Float32Array[]
}

/** The set as the pipelines see it, recording what reaches the VAE. */
function traced(set: ModelSet, t: Trace): DiffusionModel {
  return {
    id: set.id,
    family: set.family,
    encodeText: (...a) => set.encodeText(...a),
    tokenEmbeddingWidth: () => set.tokenEmbeddingWidth(),
    unet: (...a) => set.unet(...a),
    async encode(image) {
      const r = await set.encode(image)
      t.encoded.push(Float32Array.from(r.mean.data as Float32Array))
      return r
    },
    async decode(latents) {
      t.latents.push(Float32Array.from(latents.data as Float32Array))
      return set.decode(latents)
    },
  }
}

async function generate(model: DiffusionModel, extra: Partial<Parameters<typeof withDefaults>[0]> = {}) {
  const images: RawImage[] = []
  await runStudio(
    withDefaults({
      mode: 'txt2img',
      model: 'tiny',
      prompt: 'a red fox in the snow',
      steps: 3,
      width: 64,
      height: 64,
      sampler: 'Euler',
      ...extra,
    }),
    42,
    {
      model,
      encode: (t) => tokenizer.encode(t),
      inpaintModel: false,
      onBatch: (b) => {
        images.push(...b.images)
      },
    },
  )
  return images
}

async function runGraph(
  file: string,
  feeds: Record<string, ort.Tensor>,
): Promise<ort.InferenceSession.OnnxValueMapType> {
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'] })
  try {
    return await s.run(feeds)
  } finally {
    await s.release()
  }
}

describe('VAE override in generation (tiny SD 1.5)', () => {
  it(
    'decodes and encodes with the override; the UNet and text encoder sessions stay',
    async () => {
      const cacheRoot = path.join(tmp, 'cache-gen')
      const base = await convertCheckpoint(checkpoint, { cacheRoot, precision: 'fp32' })
      const vae = await convertVae(vaeFile, { cacheRoot, precision: 'fp32' })
      const set = new ModelSet('tiny', base.paths, { preference: 'cpu' })
      try {
        const own: Trace = { latents: [], encoded: [] }
        const baked = await generate(traced(set, own))
        const unet = set.graphs.unet
        const text = set.graphs.text_encoder
        expect(unet?.loaded && text?.loaded).toBe(true)

        await set.useVae({ vae_encoder: vae.paths.vae_encoder, vae_decoder: vae.paths.vae_decoder })
        expect(set.graphs.unet).toBe(unet)
        expect(set.graphs.text_encoder).toBe(text)
        expect(unet?.loaded && text?.loaded).toBe(true)
        expect(set.vaePaths.vae_decoder).toBe(vae.paths.vae_decoder)

        const over: Trace = { latents: [], encoded: [] }
        const swapped = await generate(traced(set, over))
        // Same UNet, same seed: the same final latents reach a different decoder.
        expect(over.latents[0]).toEqual(own.latents[0])
        const a = baked[0] as RawImage
        const b = swapped[0] as RawImage
        let differ = 0
        for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) differ++
        expect(differ).toBeGreaterThan(a.data.length / 4)

        // The override's decoder graph run directly on those latents gives exactly the generated pixels.
        const z = over.latents[0] as Float32Array
        const direct = await runGraph(vae.paths.vae_decoder, {
          latent_sample: new ort.Tensor('float32', z, [1, 4, 8, 8]),
        })
        const px = tensorToImage((direct.sample as ort.Tensor).data as Float32Array, 64, 64)
        expect(Buffer.from(px.data).equals(Buffer.from(b.data))).toBe(true)

        // img2img encodes with the override's encoder too.
        const input = await encodePng(a)
        await generate(traced(set, over), { mode: 'img2img', image: new Uint8Array(input), strength: 0.5 })
        const pixels = imageToTensor(a)
        const enc = await runGraph(vae.paths.vae_encoder, {
          image: new ort.Tensor('float32', pixels, [1, 3, 64, 64]),
        })
        const mean = (enc.mean as ort.Tensor).data as Float32Array
        const got = over.encoded[0] as Float32Array
        let worst = 0
        for (let i = 0; i < mean.length; i++)
          worst = Math.max(worst, Math.abs((got[i] ?? 0) - (mean[i] ?? 0)))
        expect(worst).toBeLessThan(1e-5)

        // Back to the checkpoint's own VAE: the baked picture again.
        await set.useVae()
        expect(set.vaePaths.vae_decoder).toBe(base.paths.vae_decoder)
        const back = await generate(traced(set, { latents: [], encoded: [] }))
        expect(Buffer.from((back[0] as RawImage).data).equals(Buffer.from(a.data))).toBe(true)
      } finally {
        await set.release()
      }
    },
    SLOW,
  )
})
