import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { maxAbsDiff } from '../reference/tolerance'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { TINY_SD15_LAYERS, writeAdapterFile } from '../../../e2e/fixtures/lycoris-files'
import type { FixtureAdapterKind } from '../../../e2e/fixtures/lycoris-files'
import { readLora } from '../../model-formats/lora/lora-file'
import { moduleUpdate } from '../../model-formats/lora/lycoris'
import type { LycoPart, Mat } from '../../model-formats/lora/lycoris'
import { lohaAsPairs, modulesFor } from './delta'
import { applyLoras } from './variant'
import type { LoraSpec } from './variant'
import { convertCheckpoint } from '../convert/convert'
import type { ConvertedModel } from '../convert/convert'
import { ModelSet } from '../runtime/model-set'

/**
 * LyCORIS files on the tiny SD 1.5: multiplier changes keep graphs and sessions, branch (in-graph deltas) and
 * merge mode agree, adapters of mixed kinds stack, and files for another family are refused from the header.
 */

// Seeded tiny models written by the tests themselves (bench/fixtures/tiny-models.ts; no ../shared needed).
const tiny = await ensureTinyModels()
const CKPT = tiny.sd15

let tmp: string
let cacheRoot: string
let base: ConvertedModel
const files: Partial<Record<FixtureAdapterKind, string>> = {}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-lyco-'))
  cacheRoot = path.join(tmp, 'cache')
  for (const [i, k] of (['lora', 'locon', 'loha', 'lokr', 'dora', 'full'] as const).entries()) {
    files[k] = path.join(tmp, `${k}.safetensors`)
    await writeAdapterFile(files[k] as string, k, TINY_SD15_LAYERS, { seed: 10 + i, scale: 0.3 })
  }
  base = await convertCheckpoint(CKPT, { cacheRoot, precision: 'fp32' })
}, 120_000)
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

const sample = (): ort.Tensor => {
  const d = new Float32Array(4 * 16 * 16)
  for (let i = 0; i < d.length; i++) d[i] = Math.sin(i * 0.37)
  return new ort.Tensor('float32', d, [1, 4, 16, 16])
}
const context = (): ort.Tensor => {
  const d = new Float32Array(77 * 64)
  for (let i = 0; i < d.length; i++) d[i] = Math.cos(i * 0.11) * 0.5
  return new ort.Tensor('float32', d, [1, 77, 64])
}
const ids = BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i === 0 ? 49406 : i < 6 ? 320 + i : 49407))

async function outputs(set: ModelSet): Promise<{ eps: Float32Array; te: Float32Array }> {
  const eps = (await set.unet(sample(), 500, context())).data as Float32Array
  const te = (await set.encodeText(ids, 1)).data as Float32Array
  return { eps: Float32Array.from(eps), te: Float32Array.from(te) }
}

describe('LyCORIS files', () => {
  it('read as LoRA files: plain pairs as branches, the rest as modules of their kind', async () => {
    for (const [k, kinds] of [
      ['locon', { pairs: 6, modules: [] }],
      ['loha', { pairs: 0, modules: ['loha'] }],
      ['lokr', { pairs: 0, modules: ['lokr'] }],
      ['dora', { pairs: 0, modules: ['lora'] }],
      ['full', { pairs: 0, modules: ['full'] }],
    ] as const) {
      const f = await readLora(files[k] as string)
      await f.st.close()
      expect(f.pairs.length + f.modules.length, k).toBe(TINY_SD15_LAYERS.length)
      if (kinds.pairs) expect(f.pairs.length, k).toBeGreaterThanOrEqual(kinds.pairs)
      expect([...new Set(f.modules.map((m) => m.kind))], k).toEqual(kinds.modules)
    }
  })
})

describe('LoHa as a low-rank pair', () => {
  it('U @ V * alpha / r1 equals the LoHa update (w1a @ w1b) * (w2a @ w2b) * alpha / r1', async () => {
    const f = await readLora(files.loha as string)
    try {
      const refs = modulesFor([f], 'unet').concat(modulesFor([f], 'text_encoder'))
      const { deltas, rest } = await lohaAsPairs(refs)
      expect(rest).toHaveLength(0)
      expect(deltas).toHaveLength(TINY_SD15_LAYERS.length)
      for (const d of deltas) {
        const ref = refs.find((r) => r.module.module === d.pair.module) as (typeof refs)[number]
        const read = async (part: LycoPart): Promise<Mat | undefined> => {
          const k = ref.module.parts[part]
          return k ? { data: await f.st.readFloat32(k), shape: [...f.st.info(k).shape] } : undefined
        }
        const inner = d.downTail[0] as number
        const u = await moduleUpdate('loha', read, d.out * inner, d.pair.module)
        const { up, down } = d.factors as { up: Float32Array; down: Float32Array }
        let worst = 0
        for (let o = 0; o < d.out; o++)
          for (let i = 0; i < inner; i++) {
            let s = 0
            for (let r = 0; r < d.rank; r++)
              s += (up[o * d.rank + r] as number) * (down[r * inner + i] as number)
            worst = Math.max(worst, Math.abs(s * d.alphaScale - (u.dW[o * inner + i] as number)))
          }
        expect(worst, d.pair.module).toBeLessThan(1e-6)
      }
    } finally {
      await f.st.close()
    }
  })
})

describe('LyCORIS on the tiny SD 1.5', () => {
  it('a multiplier change keeps the graph and its session; the result equals a merge at that multiplier', async () => {
    const spec = (m: number): LoraSpec[] => [{ path: files.loha as string, multiplier: m }]
    const a = await applyLoras(base, spec(0.5), { cacheRoot })
    expect(a.cached).toBe(false)
    const baseline = new ModelSet('base', base.paths, { preference: 'cpu' })
    const plain = await outputs(baseline)
    await baseline.release()
    const set = new ModelSet('loha', a.paths, { preference: 'cpu' }, a.inputs)
    const half = await outputs(set)
    expect(maxAbsDiff(half.eps, plain.eps)).toBeGreaterThan(1e-3)
    expect(maxAbsDiff(half.te, plain.te)).toBeGreaterThan(1e-3)

    const b = await applyLoras(base, spec(1.0), { cacheRoot })
    expect(b.cached).toBe(true)
    expect(b.paths).toEqual(a.paths)
    set.setInputs(b.inputs)
    const one = await outputs(set)
    await set.release()

    const merged = await applyLoras(base, spec(1.0), { cacheRoot, mode: 'merge' })
    const ms = new ModelSet('merged', merged.paths, { preference: 'cpu' })
    const ref = await outputs(ms)
    await ms.release()
    expect(maxAbsDiff(one.eps, ref.eps)).toBeLessThan(1e-4)
    expect(maxAbsDiff(one.te, ref.te)).toBeLessThan(1e-4)
    expect(maxAbsDiff(one.eps, half.eps)).toBeGreaterThan(1e-3)
  }, 300_000)

  it('mixed kinds at once (LoRA, LoCon, LoKr, DoRA, full) with TE/UNet multipliers: branches and deltas = merge', async () => {
    const specs: LoraSpec[] = [
      { path: files.lora as string, multiplier: 0.7 },
      { path: files.locon as string, multiplier: 0.5, teMultiplier: 0.9 },
      { path: files.lokr as string, multiplier: 0.8 },
      { path: files.dora as string, multiplier: 0.6 },
      { path: files.full as string, multiplier: 1.0, teMultiplier: 0.4 },
    ]
    const br = await applyLoras(base, specs, { cacheRoot })
    const s1 = new ModelSet('br', br.paths, { preference: 'cpu' }, br.inputs)
    const got = await outputs(s1)
    await s1.release()
    const mg = await applyLoras(base, specs, { cacheRoot, mode: 'merge' })
    const s2 = new ModelSet('mg', mg.paths, { preference: 'cpu' })
    const ref = await outputs(s2)
    await s2.release()
    expect(maxAbsDiff(got.eps, ref.eps)).toBeLessThan(2e-4)
    expect(maxAbsDiff(got.te, ref.te)).toBeLessThan(2e-4)
    expect(br.inputs.text_encoder).toEqual({
      lora_scale_0: 0.7,
      lora_scale_1: 0.9,
      lora_scale_2: 0.8,
      lora_scale_3: 0.6,
      lora_scale_4: 0.4,
    })
    expect(br.inputs.unet?.lora_scale_4).toBe(1.0)
    // The plain LoRA as deltas instead of branches: same numbers.
    const asDelta = await applyLoras(base, [specs[0] as LoraSpec], { cacheRoot, branches: false })
    const asBranch = await applyLoras(base, [specs[0] as LoraSpec], { cacheRoot })
    expect(asDelta.paths.unet).not.toBe(asBranch.paths.unet)
    const s3 = new ModelSet('d', asDelta.paths, { preference: 'cpu' }, asDelta.inputs)
    const s4 = new ModelSet('b', asBranch.paths, { preference: 'cpu' }, asBranch.inputs)
    const d = await outputs(s3)
    const b = await outputs(s4)
    await s3.release()
    await s4.release()
    expect(maxAbsDiff(d.eps, b.eps)).toBeLessThan(1e-4)
  }, 300_000)

  it('refuses a LyCORIS file made for SDXL from its header, naming both families', async () => {
    const xl = path.join(tmp, 'xl-loha.safetensors')
    await writeAdapterFile(
      xl,
      'loha',
      [
        { name: 'lora_te1_text_model_encoder_layers_0_self_attn_q_proj', shape: [768, 768] },
        { name: 'lora_te2_text_model_encoder_layers_0_self_attn_q_proj', shape: [1280, 1280] },
      ],
      { baseModel: 'sdxl_base_v1-0' },
    )
    await expect(applyLoras(base, [{ path: xl, multiplier: 1 }], { cacheRoot })).rejects.toThrow(
      /for SDXL.*SD 1/,
    )
  })
})

const SDXL_CKPT = tiny.sdxl

describe('LyCORIS on the tiny SDXL (both text encoders, SGM UNet names)', () => {
  it('LoHa + LoKr + DoRA at once: in-graph deltas equal merged weights, and change every graph', async () => {
    const xl = await convertCheckpoint(SDXL_CKPT, { cacheRoot, precision: 'fp32' })
    const layers = [
      { name: 'lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q', shape: [64, 64] },
      { name: 'lora_unet_input_blocks_1_0_in_layers_2', shape: [32, 32, 3, 3] },
      { name: 'lora_unet_middle_block_1_transformer_blocks_0_attn2_to_k', shape: [128, 192] },
      { name: 'lora_te1_text_model_encoder_layers_0_self_attn_q_proj', shape: [64, 64] },
      { name: 'lora_te2_text_model_encoder_layers_0_self_attn_q_proj', shape: [128, 128] },
    ]
    const specs: LoraSpec[] = []
    for (const [i, k] of (['loha', 'lokr', 'dora'] as const).entries()) {
      const f = path.join(tmp, `xl-${k}.safetensors`)
      await writeAdapterFile(f, k, layers, { seed: 30 + i, scale: 0.3, baseModel: 'sdxl_base_v1-0' })
      specs.push({ path: f, multiplier: 0.6 + 0.1 * i })
    }
    const run = async (paths: ConvertedModel['paths'], inputs = {}): Promise<Float32Array[]> => {
      const set = new ModelSet('xl', paths, { preference: 'cpu' }, inputs)
      const x = new Float32Array(4 * 8 * 8).map((_, i) => Math.sin(i))
      const ctx = new Float32Array(77 * 192).map((_, i) => Math.cos(i * 0.3) * 0.5)
      const eps = await set.unet(
        new ort.Tensor('float32', x, [1, 4, 8, 8]),
        500,
        new ort.Tensor('float32', ctx, [1, 77, 192]),
        {
          textEmbeds: new ort.Tensor('float32', new Float32Array(128).fill(0.1), [1, 128]),
          timeIds: new ort.Tensor('float32', Float32Array.of(64, 64, 0, 0, 64, 64), [1, 6]),
        },
      )
      const te = await set.encodeTextXL(ids, ids, 1)
      const out = [eps, te.hidden, te.hidden2].map((t) => Float32Array.from(t.data as Float32Array))
      await set.release()
      return out
    }
    const plain = await run(xl.paths)
    const br = await applyLoras(xl, specs, { cacheRoot })
    expect(Object.keys(br.inputs).sort()).toEqual(['text_encoder', 'text_encoder_2', 'unet'])
    const got = await run(br.paths, br.inputs)
    const mg = await applyLoras(xl, specs, { cacheRoot, mode: 'merge' })
    const ref = await run(mg.paths)
    for (let i = 0; i < 3; i++) {
      expect(maxAbsDiff(got[i] as Float32Array, ref[i] as Float32Array), `output ${i}`).toBeLessThan(2e-4)
      expect(maxAbsDiff(got[i] as Float32Array, plain[i] as Float32Array), `output ${i}`).toBeGreaterThan(
        1e-3,
      )
    }
  }, 300_000)
})
