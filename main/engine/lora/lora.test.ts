import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModelSet } from '../runtime/model-set'
import { repoRoot } from '../../platform/paths'
import { convertCheckpoint } from '../convert/convert'
import type { ConvertedModel } from '../convert/convert'
import { openCheckpointSource } from '../convert/source'
import { SafetensorsFile, writeSafetensors } from '../../model-formats/safetensors'
import type { TensorToWrite } from '../../model-formats/safetensors'
import { LoraError, ModuleIndex, readLora } from '../../model-formats/lora/lora-file'
import { maxAbsDiff } from '../reference/tolerance'
import { applyLoras } from './variant'

const ORACLE = path.resolve(repoRoot(), '../shared/oracle')
const CKPT = path.join(ORACLE, 'tiny-sd15.safetensors')
const LORA = path.join(ORACLE, 'tiny-lora.safetensors')
const present = fs.existsSync(CKPT) && fs.existsSync(LORA)
if (!present) console.warn(`skipping LoRA tests: ${ORACLE} is absent`)

let tmp: string
let cacheRoot: string
let base: ConvertedModel
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-lora-'))
  cacheRoot = path.join(tmp, 'cache')
  if (present) base = await convertCheckpoint(CKPT, { cacheRoot })
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const g of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!g.isDirectory()) continue
    for (const f of ['model.onnx', 'checkpoint.safetensors']) {
      const p = path.join(dir, g.name, f)
      if (fs.existsSync(p)) {
        const s = fs.statSync(p)
        out.set(p, `${s.size}:${s.mtimeMs}:${s.ino}`)
      }
    }
  }
  return out
}

function f32(shape: number[], fill = 0.01): TensorToWrite {
  return { dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill) }
}

describe('module resolution', () => {
  it('resolves kohya (underscored) and diffusers (dotted) names without a table', () => {
    const idx = new ModuleIndex([
      'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.weight',
      'down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight',
      'text_model.encoder.layers.0.self_attn.q_proj.weight',
    ])
    expect(
      idx.resolve({
        module: 'down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0',
        naming: 'kohya',
      }),
    ).toBe('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.weight')
    expect(
      idx.resolve({
        module: 'down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj',
        naming: 'diffusers',
      }),
    ).toBe('down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight')
    expect(idx.resolve({ module: 'text_model_encoder_layers_0_self_attn_q_proj', naming: 'kohya' })).toBe(
      'text_model.encoder.layers.0.self_attn.q_proj.weight',
    )
    expect(idx.resolve({ module: 'mid_block_attentions_0_proj_in', naming: 'kohya' })).toBeUndefined()
  })

  it('reads kohya, PEFT and old-processor diffusers keys', async () => {
    const f = path.join(tmp ?? os.tmpdir(), 'mixed.safetensors')
    await writeSafetensors(f, {
      'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight': f32([
        2, 8,
      ]),
      'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight': f32([
        8, 2,
      ]),
      'text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_A.weight': f32([2, 8]),
      'text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_B.weight': f32([8, 2]),
      'text_encoder.text_model.encoder.layers.0.mlp.fc1.alpha': f32([], 1),
    })
    const lf = await readLora(f)
    await lf.st.close()
    expect(lf.pairs.map((p) => [p.target, p.module, p.naming, p.alphaKey !== undefined]).sort()).toEqual([
      ['text_encoder', 'text_model.encoder.layers.0.mlp.fc1', 'diffusers', true],
      ['unet', 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0', 'diffusers', false],
    ])
  })
})

describe.skipIf(!present)('LoRA sets on a converted checkpoint', () => {
  it('branch mode: a multiplier change reuses the graph and its session; the base is never re-converted', async () => {
    const before = snapshot(base.dir)
    const manifestBefore = fs.readFileSync(path.join(base.dir, 'manifest.json'), 'utf8')
    const a = await applyLoras(base, [{ path: LORA, multiplier: 0.8 }], { cacheRoot })
    expect(a.mode).toBe('branch')
    expect(a.cached).toBe(false)
    expect(a.merged).toEqual({ text_encoder: 12, unet: 192 })
    expect(a.paths.vae_decoder).toBe(base.paths.vae_decoder)
    expect(a.paths.unet).not.toBe(base.paths.unet)
    expect(a.inputs).toEqual({ text_encoder: { lora_scale_0: 0.8 }, unet: { lora_scale_0: 0.8 } })
    const b = await applyLoras(base, [{ path: LORA, multiplier: 0.5 }], { cacheRoot })
    expect(b.cached).toBe(true)
    expect(b.paths).toEqual(a.paths)
    expect(b.inputs.unet).toEqual({ lora_scale_0: 0.5 })
    expect(snapshot(base.dir)).toEqual(before)
    expect(fs.readFileSync(path.join(base.dir, 'manifest.json'), 'utf8')).toBe(manifestBefore)
    expect((await convertCheckpoint(CKPT, { cacheRoot })).cached).toBe(true)
    // The side file holds only the low-rank factors.
    expect(fs.statSync(a.paths.unet.replace(/\.onnx$/, '.bin')).size).toBeLessThan(
      fs.statSync(CKPT).size / 20,
    )
    expect((await applyLoras(base, [{ path: LORA, multiplier: 0 }], { cacheRoot })).paths).toEqual(base.paths)

    // One loaded session serves every multiplier: 0 gives the base model exactly as the base graph does.
    const ids = BigInt64Array.from([49406n, 320n, 1125n, 539n, 320n, 2368n, 49407n, 49407n])
    const plain = new ModelSet('base', base.paths, { preference: 'cpu' })
    const ref = (await plain.encodeText(ids, 1)).data as Float32Array
    await plain.release()
    const set = new ModelSet('lora', a.paths, { preference: 'cpu' }, a.inputs)
    const withLora = Float32Array.from((await set.encodeText(ids, 1)).data as Float32Array)
    set.setInputs({ text_encoder: { lora_scale_0: 0 } })
    const off = (await set.encodeText(ids, 1)).data as Float32Array
    await set.release()
    expect(maxAbsDiff(off, ref)).toBeLessThan(1e-5)
    expect(maxAbsDiff(withLora, ref)).toBeGreaterThan(1e-3)
    // Callers that pass only paths get the multipliers applyLoras last wrote beside the graph.
    const pathsOnly = new ModelSet('p', b.paths, { preference: 'cpu' })
    const half = (await pathsOnly.encodeText(ids, 1)).data as Float32Array
    await pathsOnly.release()
    expect(maxAbsDiff(half, ref)).toBeGreaterThan(1e-4)
    expect(maxAbsDiff(half, withLora)).toBeGreaterThan(1e-4)
  })

  it('merge mode: every multiplier is its own variant; a bounded number is kept per graph', async () => {
    const a = await applyLoras(base, [{ path: LORA, multiplier: 0.8 }], { cacheRoot, mode: 'merge' })
    const b = await applyLoras(base, [{ path: LORA, multiplier: 0.5 }], { cacheRoot, mode: 'merge' })
    expect(b.key).not.toBe(a.key)
    expect(a.inputs).toEqual({})
    expect(
      (await applyLoras(base, [{ path: LORA, multiplier: 0.8 }], { cacheRoot, mode: 'merge' })).cached,
    ).toBe(true)
    // The merged text encoder reproduces the oracle's merged-weight golden.
    const gold = await SafetensorsFile.open(path.join(ORACLE, 'text_encoder.safetensors'))
    const ids = (await gold.readTyped('input_ids')) as BigInt64Array
    const want = await gold.readFloat32('lora_last_hidden_state')
    await gold.close()
    const set = new ModelSet('m', a.paths, { preference: 'cpu' })
    const got = (await set.encodeText(ids, ids.length / 77)).data as Float32Array
    await set.release()
    expect(got.reduce((m, v, i) => Math.max(m, Math.abs(v - (want[i] ?? 0))), 0)).toBeLessThan(1e-4)
    for (const m of [0.1, 0.2, 0.3])
      await applyLoras(base, [{ path: LORA, multiplier: m }], { cacheRoot, keep: 2, mode: 'merge' })
    const unetDir = path.dirname(base.paths.unet)
    expect(fs.readdirSync(unetDir).filter((f) => /^lora-.*\.onnx$/.test(f))).toHaveLength(2)
    expect(fs.readdirSync(unetDir).filter((f) => /^lora-.*\.bin$/.test(f))).toHaveLength(2)
  })

  it('merges a PEFT/diffusers-format copy of the LoRA to the same weights, and stacks LoRAs additively', async () => {
    const src = await openCheckpointSource(CKPT)
    const idx = {
      unet: new ModuleIndex(src.components.unet?.keys() ?? []),
      text_encoder: new ModuleIndex(src.components.text_encoder?.keys() ?? []),
      text_encoder_2: new ModuleIndex(src.components.text_encoder_2?.keys() ?? []),
    }
    const kohya = await readLora(LORA)
    const out: Record<string, TensorToWrite> = {}
    for (const p of kohya.pairs) {
      const weight = idx[p.target].resolve(p)
      expect(weight, p.module).toBeDefined()
      const mod = `${p.target}.${(weight as string).slice(0, -'.weight'.length)}`
      for (const [key, as] of [
        [p.downKey, 'lora_A.weight'],
        [p.upKey, 'lora_B.weight'],
        [p.alphaKey, 'alpha'],
      ] as const) {
        if (!key) continue
        const info = kohya.st.info(key)
        out[`${mod}.${as}`] = { dtype: info.dtype, shape: info.shape, data: await kohya.st.readRaw(key) }
      }
    }
    await kohya.st.close()
    const peft = path.join(tmp, 'peft.safetensors')
    await writeSafetensors(peft, out)

    const k = await applyLoras(base, [{ path: LORA, multiplier: 0.8 }], { cacheRoot, mode: 'merge' })
    const p = await applyLoras(base, [{ path: peft, multiplier: 0.8 }], { cacheRoot, mode: 'merge' })
    for (const g of ['unet', 'text_encoder'] as const) {
      const kb = fs.readFileSync(k.paths[g].replace(/\.onnx$/, '.bin'))
      const pb = fs.readFileSync(p.paths[g].replace(/\.onnx$/, '.bin'))
      expect(pb.equals(kb), g).toBe(true)
    }
    const stacked = await applyLoras(
      base,
      [
        { path: LORA, multiplier: 0.5 },
        { path: peft, multiplier: 0.3 },
      ],
      { cacheRoot, mode: 'merge' },
    )
    const one = new Float32Array(
      new Uint8Array(fs.readFileSync(k.paths.unet.replace(/\.onnx$/, '.bin'))).buffer,
    )
    const two = new Float32Array(
      new Uint8Array(fs.readFileSync(stacked.paths.unet.replace(/\.onnx$/, '.bin'))).buffer,
    )
    expect(two.length).toBe(one.length)
    let max = 0
    for (let i = 0; i < one.length; i++) max = Math.max(max, Math.abs(one[i]! - two[i]!))
    expect(max).toBeLessThan(1e-5)

    // Branch mode: two LoRAs get two multiplier inputs; 0.5 + 0.3 of the same LoRA equals 0.8 of it.
    const br = await applyLoras(
      base,
      [
        { path: LORA, multiplier: 0.5 },
        { path: peft, multiplier: 0.3 },
      ],
      { cacheRoot },
    )
    expect(br.inputs.text_encoder).toEqual({ lora_scale_0: 0.5, lora_scale_1: 0.3 })
    const single = await applyLoras(base, [{ path: LORA, multiplier: 0.8 }], { cacheRoot })
    const ids = BigInt64Array.from([49406n, 320n, 1125n, 49407n])
    const s1 = new ModelSet('a', br.paths, { preference: 'cpu' }, br.inputs)
    const s2 = new ModelSet('b', single.paths, { preference: 'cpu' }, single.inputs)
    const h1 = (await s1.encodeText(ids, 1)).data as Float32Array
    const h2 = (await s2.encodeText(ids, 1)).data as Float32Array
    await s1.release()
    await s2.release()
    expect(h1.reduce((m, v, i) => Math.max(m, Math.abs(v - (h2[i] ?? 0))), 0)).toBeLessThan(1e-5)
  })

  it('refuses LoRAs made for another family with a readable error', async () => {
    const sdxl = path.join(tmp, 'sdxl-lora.safetensors')
    await writeSafetensors(sdxl, {
      'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight': f32([4, 1280]),
      'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight': f32([5120, 4]),
    })
    await expect(applyLoras(base, [{ path: sdxl, multiplier: 1 }], { cacheRoot })).rejects.toThrow(
      /sdxl-lora\.safetensors: this LoRA is for SDXL/,
    )

    const wide = path.join(tmp, 'wide-lora.safetensors')
    await writeSafetensors(wide, {
      'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight': f32([4, 2048]),
      'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight': f32([32, 4]),
    })
    const err = await applyLoras(base, [{ path: wide, multiplier: 1 }], { cacheRoot }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(LoraError)
    // The family check (header only, before any work) names both families.
    expect(String(err)).toMatch(/wide-lora\.safetensors: this LoRA is for SDXL; the checkpoint is SD 1\.x/)

    // Shapes that fit no family rule are still caught layer by layer.
    const odd = path.join(tmp, 'odd-lora.safetensors')
    await writeSafetensors(odd, {
      'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight': f32([4, 48]),
      'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight': f32([48, 4]),
    })
    await expect(applyLoras(base, [{ path: odd, multiplier: 1 }], { cacheRoot })).rejects.toThrow(
      /odd-lora\.safetensors: layer .*attn1_to_q .*another model family/,
    )

    const deep = path.join(tmp, 'deep-lora.safetensors')
    await writeSafetensors(deep, {
      'lora_unet_down_blocks_1_attentions_0_transformer_blocks_1_attn1_to_q.lora_down.weight': f32([4, 64]),
      'lora_unet_down_blocks_1_attentions_0_transformer_blocks_1_attn1_to_q.lora_up.weight': f32([64, 4]),
    })
    await expect(applyLoras(base, [{ path: deep, multiplier: 1 }], { cacheRoot })).rejects.toThrow(
      /deep-lora\.safetensors: 1 of 1 unet layers match nothing in this checkpoint/,
    )
    // Nothing half-written is left beside the base graphs.
    const unetDir = path.dirname(base.paths.unet)
    expect(fs.readdirSync(unetDir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('reads the LoRA pairs of the oracle file', async () => {
    const lf = await readLora(LORA)
    await lf.st.close()
    expect(lf.pairs.filter((p) => p.target === 'unet')).toHaveLength(192)
    expect(lf.pairs.filter((p) => p.target === 'text_encoder')).toHaveLength(12)
    expect(lf.pairs.every((p) => p.alphaKey !== undefined)).toBe(true)
  })
})
