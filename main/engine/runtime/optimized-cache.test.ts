import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GraphBuilder } from '../../model-formats/onnx/builder'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { convertCheckpoint } from '../convert/convert'
import type { ConvertedModel } from '../convert/convert'
import { applyLoras } from '../lora/variant'
import { ModelSet } from './model-set'
import { OPTIMIZED_DIR, optimizedBytesUnder, optimizedDir } from './optimized-cache'
import { OnnxGraph, openSession } from './session'

let tmp: string
let converted: ConvertedModel
let lora: string

beforeAll(async () => {
  const tiny = await ensureTinyModels()
  lora = tiny.lora
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ortcache-'))
  // fp16 entry: weights hard-linked into the checkpoint, so the optimised copy is where fp32 appears.
  converted = await convertCheckpoint(tiny.sd15, { cacheRoot: tmp, precision: 'fp16' })
}, 120_000)

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

function unetFeeds(): Record<string, ort.Tensor> {
  const n = 4 * 8 * 8
  return {
    sample: new ort.Tensor(
      'float32',
      Float32Array.from({ length: n }, (_, i) => Math.sin(i)),
      [1, 4, 8, 8],
    ),
    timestep: new ort.Tensor('float32', Float32Array.of(500), [1]),
    encoder_hidden_states: new ort.Tensor(
      'float32',
      Float32Array.from({ length: 77 * 64 }, (_, i) => Math.cos(i / 7)),
      [1, 77, 64],
    ),
  }
}

async function eps(graph: OnnxGraph): Promise<Float32Array> {
  const r = await graph.run(unetFeeds())
  return Object.values(r)[0]?.data as Float32Array
}

describe('ORT optimised-model cache', () => {
  it('builds the optimised copy on first load, loads it next time, with the same numbers', async () => {
    const unet = converted.paths.unet
    const plain = new OnnxGraph('unet', unet, { preference: 'cpu' })
    const expected = await eps(plain)
    expect(plain.optimized).toBeUndefined()
    await plain.release()

    const first = new OnnxGraph('unet', unet, { preference: 'cpu', optimizedCache: true })
    const a = await eps(first)
    expect(first.optimized?.state).toBe('built')
    const dir = optimizedDir(unet, 'cpu')
    expect(first.optimized).toMatchObject({ dir })
    expect(fs.readdirSync(dir).sort()).toEqual(['model.onnx', 'ready.json', 'weights.bin'])
    // fp16 weights are stored as fp32 in the optimised copy: more bytes than the checkpoint's UNet part.
    const bytes = (first.optimized as { bytes: number }).bytes
    expect(bytes).toBeGreaterThan(fs.statSync(path.join(dir, 'weights.bin')).size - 1)
    await first.release()

    const second = new OnnxGraph('unet', unet, { preference: 'cpu', optimizedCache: true })
    const b = await eps(second)
    expect(second.optimized).toEqual({ state: 'loaded', dir })
    await second.release()
    for (const out of [a, b]) {
      expect(out.length).toBe(expected.length)
      let max = 0
      for (let i = 0; i < out.length; i++) max = Math.max(max, Math.abs((out[i] ?? 0) - (expected[i] ?? 0)))
      expect(max).toBeLessThan(1e-4)
    }
    expect(optimizedBytesUnder(converted.dir)).toBe(bytes)
  }, 120_000)

  it('rebuilds a damaged copy, and never uses it', async () => {
    const unet = converted.paths.unet
    const dir = optimizedDir(unet, 'cpu')
    const g = new OnnxGraph('unet', unet, { preference: 'cpu', optimizedCache: true })
    const expected = await eps(g)
    await g.release()
    // Truncated weights (a disk problem, a copy cut short): the size check in ready.json catches it.
    fs.truncateSync(path.join(dir, 'weights.bin'), 100)
    const h = new OnnxGraph('unet', unet, { preference: 'cpu', optimizedCache: true })
    expect(await eps(h)).toEqual(expected)
    expect(h.optimized?.state).toBe('built')
    await h.release()
    // Garbage with the right size (ready.json matches, onnxruntime refuses the graph): rebuilt as well.
    const model = path.join(dir, 'model.onnx')
    fs.writeFileSync(model, Buffer.alloc(fs.statSync(model).size, 7))
    const k = new OnnxGraph('unet', unet, { preference: 'cpu', optimizedCache: true })
    expect(await eps(k)).toEqual(expected)
    expect(k.optimized?.state).toBe('built')
    await k.release()
  }, 120_000)

  it('keys on the graph: a changed graph file gets a new folder and the stale one is removed', async () => {
    const dec = converted.paths.vae_decoder
    const o1 = await openSession(dec, { preference: 'cpu', optimizedCache: true })
    await o1.session.release()
    const d1 = optimizedDir(dec, 'cpu')
    expect(fs.existsSync(d1)).toBe(true)
    // Same graph bytes, rewritten (new mtime on an external file changes the key too).
    const ext = fs
      .readdirSync(path.dirname(dec))
      .find((f) => f.endsWith('.safetensors') || f === 'weights.bin')
    expect(ext).toBeDefined()
    const extPath = path.join(path.dirname(dec), ext as string)
    const later = new Date(Date.now() + 5000)
    fs.utimesSync(extPath, later, later)
    const d2 = optimizedDir(dec, 'cpu')
    expect(d2).not.toBe(d1)
    const o2 = await openSession(dec, { preference: 'cpu', optimizedCache: true })
    await o2.session.release()
    expect(o2.optimized).toMatchObject({ state: 'built', dir: d2 })
    expect(fs.existsSync(d1)).toBe(false)
  }, 120_000)

  it('skips the cache when the disk would fill, in low-memory mode, and for in-memory models', async () => {
    const te = converted.paths.text_encoder
    const o = await openSession(te, {
      preference: 'cpu',
      optimizedCache: { minFreeBytes: Number.MAX_SAFE_INTEGER },
    })
    expect(o.optimized?.state).toBe('skipped')
    expect((o.optimized as { reason: string }).reason).toMatch(/GiB free, .* GiB needed/)
    await o.session.release()
    expect(fs.existsSync(path.join(path.dirname(te), OPTIMIZED_DIR))).toBe(false)
    const lean = await openSession(te, { preference: 'cpu', optimizedCache: true, lowMemory: true })
    expect(lean.optimized).toBeUndefined()
    await lean.session.release()
    const g = new GraphBuilder('neg')
    g.output(g.op('Neg', [g.input('x', 'float32', [2])]), 'float32', [2], 'y')
    const bytes = await openSession(g.encode(), { preference: 'cpu', optimizedCache: true })
    expect(bytes.optimized).toBeUndefined()
    await bytes.session.release()
  }, 120_000)

  it('keeps the base graph and the most recent LoRA variant only', async () => {
    const variant = await applyLoras(converted, [{ path: lora, multiplier: 0.8 }], { cacheRoot: tmp })
    expect(variant.paths.unet).not.toBe(converted.paths.unet)
    const set = new ModelSet(
      'lora',
      variant.paths,
      { preference: 'cpu', optimizedCache: true },
      variant.inputs,
    )
    await set.load(['unet'])
    expect(set.graph('unet').optimized?.state).toMatch(/built|loaded/)
    await set.release()
    const root = path.join(path.dirname(converted.paths.unet), OPTIMIZED_DIR)
    const names = fs.readdirSync(root).filter((n) => !n.startsWith('.tmp-'))
    expect(names.some((n) => n.startsWith('model-'))).toBe(true)
    expect(names.filter((n) => n.startsWith('lora-'))).toHaveLength(1)
    // A second variant (another LoRA set) replaces the first: base + 1 variant.
    const v2 = await applyLoras(
      converted,
      [
        { path: lora, multiplier: 0.8 },
        { path: lora, multiplier: 0.3 },
      ],
      { cacheRoot: tmp },
    )
    expect(v2.paths.unet).not.toBe(variant.paths.unet)
    const o = await openSession(v2.paths.unet, { preference: 'cpu', optimizedCache: true })
    await o.session.release()
    const after = fs.readdirSync(root).filter((n) => !n.startsWith('.tmp-'))
    expect(after.filter((n) => n.startsWith('lora-'))).toEqual([
      path.basename(optimizedDir(v2.paths.unet, 'cpu')),
    ])
    expect(after.some((n) => n.startsWith('model-'))).toBe(true)
  }, 120_000)
})
