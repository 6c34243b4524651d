/**
 * IP-Adapters and image encoders in the model library: probed by content (also a safe .bin), filed under their
 * own types from the Atelier / ComfyUI folders, and used as the defaults of a request.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels, TINY_ENCODER } from '../../../bench/fixtures/tiny-models'
import { Library } from '../../library/library'
import { writeSafetensors } from '../../model-formats/safetensors'
import { createResolvers } from '../generation/resolve'
import { installFileName, isImagePromptPickle } from './image-prompt-files'
import { imagePromptModelInfo } from '../../model-formats/probe/image-prompt'

// Seeded tiny models written by the tests themselves (bench/fixtures/tiny-models.ts; no ../shared needed).
const tiny = await ensureTinyModels()
const ENCODER = path.join(tiny.imageEncoder, 'model.safetensors')

let tmp = ''
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ip-lib-'))
})
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe('image-prompt models: remote files that install as pickles', () => {
  const file = (name: string, p = name, fileType = 'Model') =>
    ({ name, path: p, fileType }) as Parameters<typeof isImagePromptPickle>[0]
  it('takes IP-Adapter and image-encoder .bin files, not other pickles', () => {
    expect(isImagePromptPickle(file('ip-adapter_sd15.bin', 'models/ip-adapter_sd15.bin'))).toBe(true)
    expect(isImagePromptPickle(file('pytorch_model.bin', 'models/image_encoder/pytorch_model.bin'))).toBe(
      true,
    )
    expect(isImagePromptPickle(file('model.safetensors'))).toBe(false)
    expect(isImagePromptPickle(file('v1-5-pruned.ckpt'))).toBe(false)
    expect(isImagePromptPickle(file('ip-adapter.bin', 'x', 'Training Data'))).toBe(false)
  })

  it('names Hugging Face image encoders after their repo and folder (no two model.safetensors)', () => {
    expect(
      installFileName(file('model.safetensors', 'models/image_encoder/model.safetensors'), 'h94/IP-Adapter'),
    ).toBe('IP-Adapter-models-image_encoder.safetensors')
    expect(
      installFileName(
        file('model.safetensors', 'sdxl_models/image_encoder/model.safetensors'),
        'h94/IP-Adapter',
      ),
    ).toBe('IP-Adapter-sdxl_models-image_encoder.safetensors')
    expect(
      installFileName(
        file('ip-adapter_sd15.safetensors', 'models/ip-adapter_sd15.safetensors'),
        'h94/IP-Adapter',
      ),
    ).toBe('ip-adapter_sd15.safetensors')
    expect(installFileName(file('model.safetensors', 'model.safetensors'), 'org/some-model')).toBe(
      'model.safetensors',
    )
  })
})

describe('image-prompt models in the library', () => {
  it('probes adapters (family by token width) and encoders; other files are left to the generic probe', async () => {
    const a = await imagePromptModelInfo(tiny.ipAdapter)
    expect(a).toMatchObject({ type: 'ip-adapter', family: null, format: 'safetensors', note: null })
    expect(a?.architecture).toMatch(/4 image tokens, 16 layers, CLIP embeddings 48/)
    const e = await imagePromptModelInfo(ENCODER)
    expect(e).toMatchObject({ type: 'image-encoder', note: null })
    const { width, layers, projection } = TINY_ENCODER
    expect(e?.architecture).toMatch(new RegExp(`${width} wide, ${layers} layers.*embeddings ${projection}`))
    expect(await imagePromptModelInfo(path.join(tiny.imageEncoder, 'config.json'))).toBeNull()
    expect(await imagePromptModelInfo(tiny.sd15)).toBeNull()
    // an SD 1.5-sized adapter is filed as sd-1
    const sd15 = path.join(tmp, 'sd15-shapes.safetensors')
    const z = (shape: number[]) => ({
      dtype: 'F16' as const,
      shape,
      data: new Uint16Array(shape.reduce((x, y) => x * y, 1)),
    })
    await writeSafetensors(sd15, {
      'image_proj.proj.weight': z([3072, 8]),
      'image_proj.proj.bias': z([3072]),
      'image_proj.norm.weight': z([768]),
      'image_proj.norm.bias': z([768]),
      'ip_adapter.1.to_k_ip.weight': z([8, 768]),
      'ip_adapter.1.to_v_ip.weight': z([8, 768]),
    })
    expect(await imagePromptModelInfo(sd15)).toMatchObject({ type: 'ip-adapter', family: 'sd-1' })
  })

  it('files them from their folders and hands them to requests as defaults', async () => {
    const home = path.join(tmp, 'home')
    const lib = await Library.open(home)
    try {
      const dir = lib.libraryDir
      fs.mkdirSync(path.join(dir, 'ip-adapters'), { recursive: true })
      fs.mkdirSync(path.join(dir, 'image-encoders'), { recursive: true })
      fs.copyFileSync(tiny.ipAdapter, path.join(dir, 'ip-adapters', 'tiny-ip.safetensors'))
      fs.copyFileSync(ENCODER, path.join(dir, 'image-encoders', 'tiny-vision.safetensors'))
      await lib.scan()
      const types = lib.list().map((r) => [r.name, r.type])
      expect(types).toEqual(
        expect.arrayContaining([
          ['tiny-ip', 'ip-adapter'],
          ['tiny-vision', 'image-encoder'],
        ]),
      )
      const resolvers = createResolvers({ library: lib, roots: [] })
      const c = await resolvers.imagePromptCandidates?.()
      expect(c?.adapters.map((x) => x.name)).toEqual(['tiny-ip'])
      expect(c?.encoders.map((x) => x.name)).toEqual(['tiny-vision'])
      expect((await resolvers.ipAdapter?.('tiny-ip'))?.sha256).toMatch(/^[0-9a-f]{64}$/)
    } finally {
      await lib.dispose()
    }
  })
})
