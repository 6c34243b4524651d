import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TINY_SD15, writeSd15 } from '../../../bench/fixtures/full-sd15'
import { ModelSet } from '../runtime/model-set'
import { onnx } from '../../model-formats/onnx/builder'
import { convertCheckpoint } from './convert'

/**
 * fp32 cache entries (fast CPU session creation): an fp16 checkpoint's weights are cast once at conversion,
 * so the graphs carry float32 initializers and no Cast of a weight, with the same numbers as the fp16 entry.
 */

let tmp: string
let ckpt: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-fp32-'))
  ckpt = path.join(tmp, 'tiny-fp16.safetensors')
  writeSd15(ckpt, TINY_SD15, 7)
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

function initializerTypes(modelPath: string): { types: Set<number>; castOfWeight: number } {
  const m = onnx.ModelProto.decode(fs.readFileSync(modelPath))
  const inits = new Set((m.graph?.initializer ?? []).map((t) => t.name ?? ''))
  const types = new Set(
    (m.graph?.initializer ?? [])
      .filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)
      .map((t) => t.dataType ?? 0),
  )
  const castOfWeight = (m.graph?.node ?? []).filter(
    (n) => n.opType === 'Cast' && inits.has(n.input?.[0] ?? ''),
  ).length
  return { types, castOfWeight }
}

async function unetOut(paths: Record<string, string>): Promise<Float32Array> {
  const set = new ModelSet('t', paths, { preference: 'cpu' })
  try {
    const sample = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 2 * 4 * 8 * 8 }, (_, i) => Math.sin(i)),
      [2, 4, 8, 8],
    )
    const ctx = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 2 * 77 * 64 }, (_, i) => Math.cos(i) / 2),
      [2, 77, 64],
    )
    return (await set.unet(sample, 500, ctx)).data as Float32Array
  } finally {
    await set.release()
  }
}

describe('fp32 conversion entries', () => {
  it('casts fp16 weights once: float32 initializers, no Cast of a weight, same UNet output as fp16', async () => {
    const cacheRoot = path.join(tmp, 'cache')
    const f16 = await convertCheckpoint(ckpt, { cacheRoot })
    const f32 = await convertCheckpoint(ckpt, { cacheRoot, precision: 'fp32' })
    expect(f32.dir).not.toBe(f16.dir)
    expect(path.basename(f32.dir)).toMatch(/-fp32$/)

    const a = initializerTypes(f16.paths.unet)
    expect(a.types).toEqual(new Set([onnx.TensorProto.DataType.FLOAT16]))
    expect(a.castOfWeight).toBeGreaterThan(100)
    for (const g of ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'] as const) {
      const b = initializerTypes(f32.paths[g])
      expect(b.types, g).toEqual(new Set([onnx.TensorProto.DataType.FLOAT]))
      expect(b.castOfWeight, g).toBe(0)
      // Nothing links the checkpoint: every weight is in the entry's own side file, 4 bytes each.
      expect(f32.manifest.graphs[g]?.linked, g).toBe(false)
    }
    const unetBytes = f32.manifest.graphs.unet?.copiedBytes ?? 0
    const f16Bytes = fs.statSync(path.join(f16.dir, 'unet', 'checkpoint.safetensors')).size
    expect(unetBytes).toBeGreaterThan(0)
    expect(unetBytes).toBeLessThan(2 * f16Bytes)

    const x = await unetOut(f16.paths)
    const y = await unetOut(f32.paths)
    expect(y.length).toBe(x.length)
    let worst = 0
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs((x[i] as number) - (y[i] as number)))
    expect(worst).toBeLessThan(1e-5)
    expect(x.some((v) => v !== 0)).toBe(true)
  })
})
