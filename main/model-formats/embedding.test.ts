import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { embeddingName, EmbeddingFormatError, readEmbedding } from './embedding'
import { fixtureVectors, writeEmbeddingFixture } from './embedding-fixtures'
import { torchSaveZip } from './pickle/torch-writer'
import { probeModel } from './probe'
import { f16ToF32, f32ToF16, writeSafetensors } from './safetensors'

let dir: string
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'atelier-emb-'))
})
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true })
})

describe('readEmbedding', () => {
  it('A1111 .pt through the safe unpickler', async () => {
    const f = path.join(dir, 'style-a.pt')
    await writeEmbeddingFixture(f, 'a1111-pt', { vectors: 3, width: 768, seed: 5 })
    const e = await readEmbedding(f)
    expect(e).toMatchObject({ name: 'style-a', format: 'a1111-pt', vectors: 3, width: 768 })
    expect(e.vec?.data).toEqual(fixtureVectors(3 * 768, 5))
    expect((await probeModel(f)).type).toBe('embedding')
  })

  it('kohya safetensors (fp16 upcast exactly) and any single tensor', async () => {
    const f = path.join(dir, 'EasyNeg.safetensors')
    await writeEmbeddingFixture(f, 'safetensors', { vectors: 4, width: 768, fp16: true })
    const e = await readEmbedding(f)
    expect(e).toMatchObject({ name: 'EasyNeg', format: 'safetensors', vectors: 4, width: 768 })
    expect(e.vec?.data).toEqual(f16ToF32(f32ToF16(fixtureVectors(4 * 768, 1))))
    const p = await probeModel(f)
    expect(p).toMatchObject({ type: 'embedding', base: 'sd-1' })
  })

  it('diffusers learned_embeds.bin: one vector, the token string unused', async () => {
    const f = path.join(dir, 'cat-toy.bin')
    await writeEmbeddingFixture(f, 'diffusers-bin', { width: 768, seed: 9 })
    const e = await readEmbedding(f)
    expect(e).toMatchObject({ name: 'cat-toy', format: 'diffusers-bin', vectors: 1, width: 768 })
    expect(e.vec?.data).toEqual(fixtureVectors(768, 9))
    expect(await probeModel(f)).toMatchObject({ type: 'embedding', base: 'sd-1' })
  })

  it('SDXL clip_l + clip_g', async () => {
    const f = path.join(dir, 'xl.safetensors')
    await writeEmbeddingFixture(f, 'sdxl', { vectors: 2 })
    const e = await readEmbedding(f)
    expect(e).toMatchObject({ format: 'sdxl', vectors: 2, width: 2048 })
    expect(e.sdxl?.clip_l.data.length).toBe(2 * 768)
    expect(e.sdxl?.clip_g.data.length).toBe(2 * 1280)
    expect(await probeModel(f)).toMatchObject({ type: 'embedding', base: 'sdxl' })
  })

  it('refuses what is not an embedding, naming the problem', async () => {
    const two = path.join(dir, 'two.safetensors')
    await writeSafetensors(two, {
      a: { dtype: 'F32', shape: [1, 8], data: new Float32Array(8) },
      b: { dtype: 'F32', shape: [1, 8], data: new Float32Array(8) },
    })
    await expect(readEmbedding(two)).rejects.toThrow(/holds 2 tensors/)
    const cube = path.join(dir, 'cube.safetensors')
    await writeSafetensors(cube, {
      emb_params: { dtype: 'F32', shape: [2, 2, 2], data: new Float32Array(8) },
    })
    await expect(readEmbedding(cube)).rejects.toBeInstanceOf(EmbeddingFormatError)
    const sd = path.join(dir, 'sd.pt')
    const bytes = new Uint8Array(16)
    await fs.writeFile(
      sd,
      torchSaveZip([
        ['a.weight', { dtype: 'F32', shape: [4], bytes }],
        ['b.weight', { dtype: 'F32', shape: [4], bytes }],
      ]),
    )
    await expect(readEmbedding(sd)).rejects.toThrow(/neither an A1111 embedding/)
  })

  it('names come from the file name without its extension', () => {
    expect(embeddingName('/x/bad-hands-5.pt')).toBe('bad-hands-5')
    expect(embeddingName('/x/v1.0.safetensors')).toBe('v1.0')
  })
})
