import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { mapLdmUnetKeys } from '../convert/ldm-unet-keys'
import { kohyaUnetModuleMap, resolveKohyaUnetKey } from '../../model-formats/lora/unet-keys'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import type { UnetBuildOptions } from './unet'
import { buildUnet } from './unet'
import { InlineWeights } from './weights'

const oracle = path.resolve(repoRoot(), '../shared/oracle')
const haveOracle = fs.existsSync(path.join(oracle, 'unet.safetensors'))
if (!haveOracle) console.warn(`unet graph: skipping oracle checks, ${oracle} is absent`)

type Tensors = Map<string, { shape: number[]; data: Float32Array }>

async function readAll(file: string): Promise<Tensors> {
  const f = await SafetensorsFile.open(file)
  const out: Tensors = new Map()
  for (const k of f.keys()) out.set(k, { shape: f.info(k).shape, data: await f.readFloat32(k) })
  await f.close()
  return out
}

/** Test-local kohya merge (W += m * alpha/rank * up @ down); checks the key mapping end to end. */
function mergeLora(tensors: Tensors, lora: Tensors, multiplier: number): number {
  const modules = kohyaUnetModuleMap(tensors.keys())
  let merged = 0
  for (const key of lora.keys()) {
    const r = resolveKohyaUnetKey(key, modules)
    if (!r || r.part !== 'down') continue
    const flat = key.slice(0, key.indexOf('.'))
    const down = lora.get(key) ?? expect.unreachable(key)
    const up = lora.get(`${flat}.lora_up.weight`) ?? expect.unreachable(flat)
    const rank = down.shape[0] as number
    const alpha = lora.get(`${flat}.alpha`)?.data[0] ?? rank
    const w = tensors.get(`${r.module}.weight`) ?? expect.unreachable(r.module)
    const out = w.shape[0] as number
    const inn = down.data.length / rank
    const scale = (multiplier * alpha) / rank
    for (let o = 0; o < out; o++)
      for (let i = 0; i < inn; i++) {
        let acc = 0
        for (let k = 0; k < rank; k++)
          acc += (up.data[o * rank + k] as number) * (down.data[k * inn + i] as number)
        w.data[o * inn + i] = (w.data[o * inn + i] as number) + scale * acc
      }
    merged++
  }
  return merged
}

async function ldmUnet(file: string, lora?: { file: string; multiplier: number }): Promise<InlineWeights> {
  const f = await SafetensorsFile.open(file)
  try {
    const { map } = mapLdmUnetKeys(f.keys())
    const tensors: Tensors = new Map()
    for (const [name, key] of map)
      tensors.set(name, { shape: f.info(key).shape, data: await f.readFloat32(key) })
    if (lora) expect(mergeLora(tensors, await readAll(lora.file), lora.multiplier)).toBe(192)
    return new InlineWeights(tensors)
  } finally {
    await f.close()
  }
}

function check(a: Float32Array, b: Float32Array, atol = 2e-4, rtol = 1e-3): { max: number; bad: number } {
  expect(a.length).toBe(b.length)
  let max = 0
  let bad = 0
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number))
    if (!(d <= atol + rtol * Math.abs(b[i] as number))) bad++
    if (!(d <= max)) max = d
  }
  return { max, bad }
}

describe.skipIf(!haveOracle)('UNet graph vs oracle (tiny SD 1.5)', async () => {
  const ref = haveOracle ? await readAll(path.join(oracle, 'unet.safetensors')) : new Map()
  const get = (n: string): { shape: number[]; data: Float32Array } => ref.get(n) ?? expect.unreachable(n)
  const tiny = path.join(oracle, 'tiny-sd15.safetensors')

  /** Runs eps for the given timestep indices and checks them against rows of `expected`. */
  async function expectEps(
    w: InlineWeights,
    sampleName: string,
    expected: string,
    steps: number[],
    batch: number,
    opts: UnetBuildOptions = {},
  ): Promise<Record<string, ort.Tensor>> {
    const { graph } = buildUnet(w, opts)
    const sess = await ort.InferenceSession.create(graph.encode())
    const sample = get(sampleName)
    const ehs = get('encoder_hidden_states')
    const ts = get('timesteps').data
    const want = get(expected)
    const ctxLen = (ehs.data.length / (ehs.shape[0] as number)) * batch
    const per = sample.data.length * (4 / (sample.shape[1] as number))
    let first: Record<string, ort.Tensor> = {}
    for (const [n, k] of steps.entries()) {
      const out = await sess.run({
        sample: new ort.Tensor('float32', sample.data, sample.shape),
        timestep: new ort.Tensor('float32', Float32Array.of(ts[k] as number), [1]),
        encoder_hidden_states: new ort.Tensor('float32', ehs.data.subarray(0, ctxLen), [
          batch,
          ...ehs.shape.slice(1),
        ]),
      })
      if (n === 0) first = out
      // eps/lora_eps/inpaint_eps hold one row per timestep; odd_eps holds only the one it was run at.
      const row = want.data.length === per * ts.length ? k : n
      const e = check(out.eps?.data as Float32Array, want.data.subarray(row * per, (row + 1) * per))
      expect(e.bad, `${expected}[${n}] (t=${ts[k]}) max abs diff ${e.max}`).toBe(0)
    }
    await sess.release()
    return first
  }

  it('eps at every timestep, and the debug intermediates at the first', async () => {
    const w = await ldmUnet(tiny)
    const out = await expectEps(w, 'sample', 'eps', [0, 1, 2], 2, { debug: true })
    for (const [name, t] of ref) {
      if (!name.startsWith('debug_')) continue
      const got = out[name]?.data as Float32Array
      // time_proj / time_embedding are computed once (T = 1) and broadcast; the oracle repeats them per sample.
      const e = check(got, t.data.subarray(0, got.length))
      expect(e.bad, `${name}: max abs diff ${e.max}`).toBe(0)
    }
  })

  it('takes one timestep per sample (timestep [B])', async () => {
    const { graph } = buildUnet(await ldmUnet(tiny))
    const sess = await ort.InferenceSession.create(graph.encode())
    const sample = get('sample')
    const ehs = get('encoder_hidden_states')
    const ts = get('timesteps').data
    const eps = get('eps').data
    const out = await sess.run({
      sample: new ort.Tensor('float32', sample.data, sample.shape),
      timestep: new ort.Tensor('float32', Float32Array.of(ts[2] as number, ts[0] as number), [2]),
      encoder_hidden_states: new ort.Tensor('float32', ehs.data, ehs.shape),
    })
    const got = out.eps?.data as Float32Array
    const half = got.length / 2
    // sample 0 at timesteps[2], sample 1 at timesteps[0]; eps is [3 timesteps, 2 samples, ...].
    expect(check(got.subarray(0, half), eps.subarray(4 * half, 5 * half)).bad).toBe(0)
    expect(check(got.subarray(half), eps.subarray(half, 2 * half)).bad).toBe(0)
    await sess.release()
  })

  it('takes longer contexts (154 tokens): a context repeated twice attends exactly like the original', async () => {
    const { graph } = buildUnet(await ldmUnet(tiny))
    const sess = await ort.InferenceSession.create(graph.encode())
    const sample = get('sample')
    const ehs = get('encoder_hidden_states')
    const [b = 2, l = 77, d = 64] = ehs.shape
    const doubled = new Float32Array(b * 2 * l * d)
    for (let i = 0; i < b; i++)
      for (let r = 0; r < 2; r++)
        doubled.set(ehs.data.subarray(i * l * d, (i + 1) * l * d), (i * 2 + r) * l * d)
    const out = await sess.run({
      sample: new ort.Tensor('float32', sample.data, sample.shape),
      timestep: new ort.Tensor('float32', Float32Array.of(get('timesteps').data[1] as number), [1]),
      encoder_hidden_states: new ort.Tensor('float32', doubled, [b, 2 * l, d]),
    })
    const per = sample.data.length
    expect(check(out.eps?.data as Float32Array, get('eps').data.subarray(per, 2 * per)).bad).toBe(0)
    await sess.release()
  })

  it('the alternative graph forms (unfused attention, opset-21 GroupNormalization, split or conv GEGLU, Gemm linears) agree', async () => {
    await expectEps(await ldmUnet(tiny), 'sample', 'eps', [1], 2, {
      attention: 'unfused',
      groupNorm: 'native',
      geglu: 'split',
      linear: 'gemm',
    })
    await expectEps(await ldmUnet(tiny), 'sample', 'eps', [2], 2, { linear: 'gemm' })
    await expectEps(await ldmUnet(tiny), 'sample', 'eps', [0], 2, { geglu: 'conv' })
    await expectEps(await ldmUnet(tiny), 'odd_sample', 'odd_eps', [1], 1, { geglu: 'conv', linear: 'gemm' })
  })

  it('odd latent sizes (9x15: downsampling rounds up, upsampling to the skip size)', async () => {
    await expectEps(await ldmUnet(tiny), 'odd_sample', 'odd_eps', [1], 1)
  })

  it('9-channel inpainting UNet', async () => {
    const w = await ldmUnet(path.join(oracle, 'tiny-sd15-inpaint.safetensors'))
    await expectEps(w, 'inpaint_sample', 'inpaint_eps', [0, 1, 2], 2)
  })

  it('kohya LoRA merged at 0.8', async () => {
    const w = await ldmUnet(tiny, { file: path.join(oracle, 'tiny-lora.safetensors'), multiplier: 0.8 })
    await expectEps(w, 'sample', 'lora_eps', [0, 1, 2], 2)
  })
})
