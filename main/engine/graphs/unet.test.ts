import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { mapLdmUnetKeys } from '../../model-formats/convert/ldm-unet-keys'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import { buildUnet } from './unet'
import { InlineWeights } from './weights'

const oracle = path.resolve(repoRoot(), '../shared/oracle')
const haveOracle = fs.existsSync(path.join(oracle, 'unet.safetensors'))
if (!haveOracle) console.warn(`unet graph: skipping oracle checks, ${oracle} is absent`)

async function ldmUnet(file: string): Promise<InlineWeights> {
  const f = await SafetensorsFile.open(file)
  try {
    const { map } = mapLdmUnetKeys(f.keys())
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>()
    for (const [name, key] of map)
      tensors.set(name, { shape: f.info(key).shape, data: await f.readFloat32(key) })
    return new InlineWeights(tensors)
  } finally {
    await f.close()
  }
}

async function readAll(file: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const f = await SafetensorsFile.open(file)
  const out = new Map<string, { shape: number[]; data: Float32Array }>()
  for (const k of f.keys()) out.set(k, { shape: f.info(k).shape, data: await f.readFloat32(k) })
  await f.close()
  return out
}

function maxErr(a: Float32Array, b: Float32Array, atol: number, rtol: number): { max: number; bad: number } {
  let max = 0
  let bad = 0
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number))
    if (!(d <= atol + rtol * Math.abs(b[i] as number))) bad++
    if (!(d <= max)) max = d
  }
  return { max, bad }
}

describe.skipIf(!haveOracle)('UNet graph vs oracle', () => {
  it('matches debug intermediates and eps', async () => {
    const w = await ldmUnet(path.join(oracle, 'tiny-sd15.safetensors'))
    const { graph, config } = buildUnet(w, { debug: true })
    expect(config.blockOutChannels).toEqual([32, 64, 64, 64])
    const sess = await ort.InferenceSession.create(graph.encode())
    const ref = await readAll(path.join(oracle, 'unet.safetensors'))
    const get = (n: string) => ref.get(n) ?? expect.unreachable(n)
    const sample = get('sample')
    const ehs = get('encoder_hidden_states')
    const ts = get('timesteps').data
    const eps = get('eps')
    const per = eps.data.length / ts.length
    for (let k = 0; k < ts.length; k++) {
      const out = await sess.run({
        sample: new ort.Tensor('float32', sample.data, sample.shape),
        timestep: new ort.Tensor('float32', Float32Array.of(ts[k] as number), [1]),
        encoder_hidden_states: new ort.Tensor('float32', ehs.data, ehs.shape),
      })
      if (k === 0) {
        for (const [name, t] of ref) {
          if (!name.startsWith('debug_')) continue
          const got = out[name]?.data as Float32Array
          const e = maxErr(got, t.data.subarray(0, got.length), 2e-4, 1e-3)
          let amax = 0
          for (const v of t.data) amax = Math.max(amax, Math.abs(v))
          console.log(name, e, amax)
        }
      }
      const e = maxErr(out.eps?.data as Float32Array, eps.data.subarray(k * per, (k + 1) * per), 2e-4, 1e-3)
      console.log('eps', k, ts[k], e)
      expect(e.bad).toBe(0)
    }
  })
})
