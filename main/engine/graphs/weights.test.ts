import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GraphBuilder } from '../../model-formats/onnx/builder'
import { f32ToF16, readHeader, writeSafetensors } from '../../model-formats/safetensors'
import { CheckpointWeights, InlineWeights, sourcesFromFile } from './weights'

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-weights-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

// W [out=3, in=2] as PyTorch stores a Linear weight.
const W = Float32Array.from([1, 2, 3, 4, 5, 6])

/** y = x @ W^T for x = [[1, 10]] through the provider's transposed view. */
async function linearThrough(build: (g: GraphBuilder) => string, dir?: string): Promise<number[]> {
  const g = new GraphBuilder('t')
  const x = g.input('x', 'float32', [1, 2])
  g.output(g.op('MatMul', [x, build(g)]), 'float32', [1, 3], 'y')
  let s: ort.InferenceSession
  if (dir) {
    fs.writeFileSync(path.join(dir, 'model.onnx'), g.encode())
    s = await ort.InferenceSession.create(path.join(dir, 'model.onnx'))
  } else s = await ort.InferenceSession.create(g.encode())
  const r = await s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 10]), [1, 2]) })
  await s.release()
  return [...(r.y?.data as Float32Array)]
}

describe('weight providers', () => {
  it('inline weights: cached per graph, transposed for MatMul', async () => {
    const w = new InlineWeights(new Map([['fc.weight', { shape: [3, 2], data: W }]]))
    const g = new GraphBuilder('g')
    expect(w.get(g, 'fc.weight')).toBe(w.get(g, 'fc.weight'))
    expect(w.getLinearT(g, 'fc.weight')).toBe(w.getLinearT(g, 'fc.weight'))
    expect(w.shape('fc.weight')).toEqual([3, 2])
    expect(() => w.get(g, 'nope.weight')).toThrow(/"nope.weight" is not in this model/)
    expect(await linearThrough((gg) => w.getLinearT(gg, 'fc.weight'))).toEqual([21, 43, 65])
  })

  it('checkpoint weights point into the file (fp16 + Cast) and overrides go to a side file', async () => {
    const dir = path.join(tmp, 'm')
    fs.mkdirSync(dir)
    const file = path.join(dir, 'ck.safetensors')
    const half = f32ToF16(W)
    await writeSafetensors(file, {
      'first_stage_model.x.weight': { dtype: 'F16', shape: [3, 2, 1, 1], data: half },
    })
    const header = await readHeader(file)
    const sources = sourcesFromFile(file, header.tensors, (k) =>
      k === 'first_stage_model.x.weight' ? { name: 'x.weight', shape: [3, 2] } : undefined,
    )
    const w = new CheckpointWeights(sources, { modelDir: dir })
    expect(await linearThrough((g) => w.getLinearT(g, 'x.weight'), dir)).toEqual([21, 43, 65])
    expect(w.sideBytes).toBe(0)

    const doubled = w.withOverrides(new Map([['x.weight', Float32Array.from(W, (v) => 2 * v)]]), {
      sideFileName: 'side.bin',
    })
    expect(await linearThrough((g) => doubled.getLinearT(g, 'x.weight'), dir)).toEqual([42, 86, 130])
    doubled.close()
    expect(fs.statSync(path.join(dir, 'side.bin')).size).toBe(24)
    expect(() => w.withOverrides(new Map([['x.weight', new Float32Array(5)]]))).toThrow(
      /has 5 values; the weight has 6/,
    )
    expect(() => sourcesFromFile(file, header.tensors, () => ({ name: 'y', shape: [4] }))).toThrow(
      /cannot view/,
    )
  })
})
