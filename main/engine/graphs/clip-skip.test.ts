/**
 * A1111's Clip skip N: `hidden_states[-N]` of the CLIP text encoder through its final LayerNorm
 * (sd_hijack_clip: `z = outputs.hidden_states[-N]; z = final_layer_norm(z)`). Checked against a direct
 * computation: the raw hidden states of a debug graph on the same weights, normalised here in JavaScript
 * with the checkpoint's final_layer_norm weight and bias.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { maxAbsDiff } from '../reference/tolerance'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { toFloat32 } from '../../model-formats/safetensors'
import type { DType } from '../../model-formats/safetensors'
import { convertCheckpoint } from '../convert/convert'
import { openCheckpointSource } from '../convert/source'
import { ModelSet } from '../runtime/model-set'
import { buildTextEncoder } from './text-encoder'
import { InlineWeights } from './weights'

const SLOW = 300_000
const IDS = BigInt64Array.from([49406n, 320n, 1125n, 539n, 320n, 2368n, 49407n, 49407n])
let tmp = ''
let checkpoint = ''
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-clip-skip-'))
  checkpoint = (await ensureTinyModels()).sd15
}, SLOW)
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

function layerNorm(x: Float32Array, width: number, w: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(x.length)
  for (let r = 0; r < x.length / width; r++) {
    const row = x.subarray(r * width, (r + 1) * width)
    let mean = 0
    for (const v of row) mean += v
    mean /= width
    let v2 = 0
    for (const v of row) v2 += (v - mean) ** 2
    const inv = 1 / Math.sqrt(v2 / width + 1e-5)
    for (let i = 0; i < width; i++)
      out[r * width + i] = ((row[i] as number) - mean) * inv * (w[i] as number) + (b[i] as number)
  }
  return out
}

describe('Clip skip (tiny SD 1.5, 2 text-encoder layers)', () => {
  it(
    'N = 1, 2, 3 are the last, penultimate and embedding hidden states through the final LayerNorm',
    async () => {
      const src = await openCheckpointSource(checkpoint)
      const tensors = new Map<string, { shape: number[]; data: Float32Array }>()
      const fd = fs.openSync(checkpoint, 'r')
      try {
        for (const [name, s] of src.components.text_encoder ?? []) {
          if (s.kind !== 'file') throw new Error(`${name}: expected a file source`)
          const raw = new Uint8Array(s.end - s.begin)
          fs.readSync(fd, raw, 0, raw.length, s.begin)
          tensors.set(name, { shape: s.shape, data: toFloat32(s.dtype as DType, raw) })
        }
      } finally {
        fs.closeSync(fd)
      }
      const lnW = tensors.get('text_model.final_layer_norm.weight')?.data as Float32Array
      const lnB = tensors.get('text_model.final_layer_norm.bias')?.data as Float32Array
      const width = lnW.length
      const debug = await ort.InferenceSession.create(
        buildTextEncoder(new InlineWeights(tensors), { debug: true }).encode(),
      )
      const raw = await debug.run({ input_ids: new ort.Tensor('int64', IDS, [1, IDS.length]) })
      await debug.release()
      const hidden = (i: number): Float32Array => raw[`hidden_state_${i}`]?.data as Float32Array
      const layers = 2

      const converted = await convertCheckpoint(checkpoint, {
        cacheRoot: path.join(tmp, 'cache'),
        precision: 'fp32',
      })
      const set = new ModelSet('tiny', converted.paths, { preference: 'cpu' })
      try {
        const got: Float32Array[] = []
        for (const n of [1, 2, 3]) {
          const t = await set.encodeText(IDS, 1, n)
          expect(t.dims).toEqual([1, IDS.length, width])
          const data = t.data as Float32Array
          got.push(data)
          const want = layerNorm(hidden(layers + 1 - n), width, lnW, lnB)
          expect(maxAbsDiff(data, want), `clip skip ${n}`).toBeLessThan(1e-4)
        }
        // Each N is a different conditioning.
        expect(maxAbsDiff(got[0] as Float32Array, got[1] as Float32Array)).toBeGreaterThan(0.1)
        expect(maxAbsDiff(got[1] as Float32Array, got[2] as Float32Array)).toBeGreaterThan(0.1)
        await expect(set.encodeText(IDS, 1, 4)).rejects.toThrow(
          /Clip skip 4 is more than this text encoder has layers \(2\)/,
        )
        await expect(set.encodeText(IDS, 1, 0)).rejects.toThrow(/whole number/)
      } finally {
        await set.release()
      }
    },
    SLOW,
  )
})
