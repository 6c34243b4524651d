import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { ModelSet } from '../runtime/model-set'
import { convertCheckpoint } from './convert'
import { probeModel } from '../../model-formats/probe'
import { SafetensorsFile } from '../../model-formats/safetensors'
import type { TensorToSave } from '../../model-formats/pickle/torch-writer'
import { torchSaveZip } from '../../model-formats/pickle/torch-writer'

/**
 * An LDM training-style .ckpt ({'state_dict': ...}, torch.save zip) of the seeded tiny SD 1.5 is read through
 * the safe reader: probed like the .safetensors, converted with its tensors referenced in place (byte ranges of
 * the zip), and the graphs compute exactly what the .safetensors conversion computes.
 */

// The seeded tiny SD 1.5 (bench/fixtures/tiny-models.ts; no ../shared needed).
const sd15 = (await ensureTinyModels()).sd15

let tmp = ''
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'atelier-ckpt-'))
})
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

describe('pickled SD checkpoints', () => {
  it('probe and convert a .ckpt like its .safetensors; the decoder output is identical', async () => {
    const st = await SafetensorsFile.open(sd15)
    const tensors: [string, TensorToSave][] = []
    for (const [name, t] of st.tensors)
      tensors.push([name, { dtype: t.dtype as 'F16', shape: t.shape, bytes: await st.readRaw(name) }])
    await st.close()
    const ckpt = path.join(tmp, 'tiny-sd15.ckpt')
    await writeFile(ckpt, torchSaveZip(tensors, { wrapper: 'state_dict', archive: 'tiny-sd15' }))

    const a = await probeModel(sd15)
    const b = await probeModel(ckpt)
    expect(b).toMatchObject({ type: a.type, base: a.base, variant: a.variant, runnable: a.runnable })
    expect(b.unet).toEqual(a.unet)

    const cacheRoot = path.join(tmp, 'cache')
    const sets = await Promise.all(
      [sd15, ckpt].map(async (f, i) => {
        const c = await convertCheckpoint(f, { cacheRoot, precision: 'fp32' })
        return new ModelSet(`m${i}`, c.paths, { preference: 'cpu', threads: 1 })
      }),
    )
    try {
      const z = Float32Array.from({ length: 4 * 8 * 8 }, (_, i) => Math.sin(i * 0.37))
      const [x, y] = await Promise.all(
        sets.map((s) => s.decode(new ort.Tensor('float32', z.slice(), [1, 4, 8, 8]))),
      )
      expect(Array.from(y?.data as Float32Array)).toEqual(Array.from(x?.data as Float32Array))
    } finally {
      for (const s of sets) await s.release()
    }
  }, 300_000)
})
