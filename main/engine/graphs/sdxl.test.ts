/**
 * SDXL graphs against the oracle's traces, built from the converter's key mapping of the tiny SDXL single
 * file (SGM layout, OpenCLIP second encoder) and of its diffusers folder: every intermediate the oracle
 * records (time / time-id embeddings, added embedding, each block, each encoder layer) must match.
 */
import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { maxAbsDiff } from '../reference/tolerance'
import { openCheckpointSource } from '../convert/source'
import type { CheckpointSource } from '../convert/source'
import { SafetensorsFile, toFloat32 } from '../../model-formats/safetensors'
import type { DType } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import { buildTextEncoder } from './text-encoder'
import { buildUnet } from './unet'
import type { WeightSource } from './weights'
import { InlineWeights } from './weights'

const dir = path.resolve(repoRoot(), '../shared/oracle-sdxl')
const have = fs.existsSync(path.join(dir, 'tiny-sdxl.safetensors'))
if (!have) console.warn(`SDXL graph tests skipped: ${dir} is absent`)

type Tensors = Map<string, { shape: number[]; data: Float32Array }>

async function readAll(file: string): Promise<Tensors> {
  const f = await SafetensorsFile.open(file)
  const out: Tensors = new Map()
  for (const k of f.keys()) out.set(k, { shape: f.info(k).shape, data: await f.readFloat32(k) })
  await f.close()
  return out
}

/** A component's canonical weights read through the converter's sources (byte ranges of the files). */
function inline(sources: Map<string, WeightSource>): InlineWeights {
  const out: Tensors = new Map()
  const fds = new Map<string, number>()
  try {
    for (const [name, s] of sources) {
      if (s.kind !== 'file') throw new Error(`${name}: expected a file source`)
      let fd = fds.get(s.file)
      if (fd === undefined) fds.set(s.file, (fd = fs.openSync(s.file, 'r')))
      const raw = new Uint8Array(s.end - s.begin)
      fs.readSync(fd, raw, 0, raw.length, s.begin)
      out.set(name, { shape: s.shape, data: toFloat32(s.dtype as DType, raw) })
    }
  } finally {
    for (const fd of fds.values()) fs.closeSync(fd)
  }
  return new InlineWeights(out)
}

const t = (x: { shape: number[]; data: Float32Array }): ort.Tensor =>
  new ort.Tensor('float32', x.data, x.shape)

describe.skipIf(!have)('SDXL graphs vs the oracle traces', async () => {
  const single: CheckpointSource | undefined = have
    ? await openCheckpointSource(path.join(dir, 'tiny-sdxl.safetensors'))
    : undefined
  const folder: CheckpointSource | undefined = have
    ? await openCheckpointSource(path.join(dir, 'tiny-sdxl-diffusers'))
    : undefined

  it('reads the architecture facts the shapes alone do not settle', () => {
    for (const s of [single, folder]) {
      expect(s?.family).toBe('sdxl')
      expect(s?.arch.hiddenAct).toEqual({ text_encoder: 'quick_gelu', text_encoder_2: 'gelu' })
      expect(s?.arch.additionTimeEmbedDim).toBe(32)
    }
    expect(single?.arch.unetHeads).toEqual({ headDim: 64 })
    expect(folder?.arch.unetHeads).toEqual({ perLevel: [1, 1, 2] })
  })

  it('UNet: eps and every debug intermediate (time ids, added embedding, blocks)', async () => {
    const ref = await readAll(path.join(dir, 'unet.safetensors'))
    const get = (n: string) => ref.get(n) ?? expect.unreachable(n)
    for (const src of [single, folder]) {
      const { graph, config } = buildUnet(inline(src?.components.unet ?? new Map()), {
        debug: true,
        additionTimeEmbedDim: src?.arch.additionTimeEmbedDim,
      })
      expect(config.addition).toEqual({ inDim: 320, pooledDim: 128, timeEmbedDim: 32, timeIds: 6 })
      expect(config.headDim).toBe(64)
      const sess = await ort.InferenceSession.create(graph.encode())
      const out = await sess.run({
        sample: t(get('sample')),
        timestep: new ort.Tensor('float32', get('timesteps').data.slice(0, 1), [1]),
        encoder_hidden_states: t(get('encoder_hidden_states')),
        text_embeds: t(get('text_embeds')),
        time_ids: t(get('time_ids')),
      })
      await sess.release()
      const eps = get('eps')
      expect(
        maxAbsDiff(out.eps?.data as Float32Array, eps.data.subarray(0, eps.data.length / 3)),
      ).toBeLessThan(2e-4)
      for (const [name, want] of ref) {
        if (!name.startsWith('debug_')) continue
        const got = out[name]?.data as Float32Array
        expect(got, name).toBeDefined()
        // time_proj / time_embedding run once (one timestep) and broadcast; the oracle repeats them.
        expect(maxAbsDiff(got, want.data.subarray(0, got.length)), name).toBeLessThan(2e-4)
      }
    }
  })

  it('text encoders: every layer, the penultimate states, the final LN and the pooled projection', async () => {
    const ref = await readAll(path.join(dir, 'text_encoders.safetensors'))
    const get = (n: string) => ref.get(n) ?? expect.unreachable(n)
    const f = await SafetensorsFile.open(path.join(dir, 'text_encoders.safetensors'))
    const ids = (await f.readTyped('input_ids')) as BigInt64Array
    const ids2 = (await f.readTyped('input_ids_2')) as BigInt64Array
    await f.close()
    for (const src of [single, folder]) {
      for (const [c, x, tag, n] of [
        ['text_encoder', ids, 'te1', 2],
        ['text_encoder_2', ids2, 'te2', 3],
      ] as const) {
        const act = src?.arch.hiddenAct[c]
        const g = buildTextEncoder(inline(src?.components[c] ?? new Map()), {
          debug: true,
          ...(act ? { config: { act } } : {}),
        })
        const sess = await ort.InferenceSession.create(g.encode())
        const out = await sess.run({ input_ids: new ort.Tensor('int64', x, [3, 77]) })
        await sess.release()
        for (let k = 0; k <= n; k++) {
          const d = maxAbsDiff(
            out[`hidden_state_${k}`]?.data as Float32Array,
            get(`debug_${tag}_hidden_state_${k}`).data,
          )
          expect(d, `${tag} hidden_state_${k}`).toBeLessThan(1e-4)
        }
        const pen = out.penultimate_hidden_state?.data as Float32Array
        expect(maxAbsDiff(pen, get(`${tag}_penultimate_hidden_state`).data)).toBeLessThan(1e-4)
        if (tag === 'te2') {
          const ln = out.last_hidden_state?.data as Float32Array
          expect(maxAbsDiff(ln, get('debug_te2_last_hidden_state_ln').data)).toBeLessThan(1e-4)
          expect(
            maxAbsDiff(out.text_embeds?.data as Float32Array, get('pooled_prompt_embeds').data),
          ).toBeLessThan(1e-4)
        } else expect(out.text_embeds).toBeUndefined()
      }
    }
  })
})
