import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ldmUnet, ldmVae } from '../model-formats/probe/fixtures'
import type { TensorToWrite } from '../model-formats/safetensors'
import { writeSafetensors } from '../model-formats/safetensors'

/**
 * Tiny safetensors files with the key names and the one or two widths the probe looks at (a few KB each),
 * for library tests and the scan bench. `seed` changes the tensor bytes, so each file hashes differently.
 */

type Shapes = Record<string, number[]>

function fill(shapes: Shapes, seed: number): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {}
  let k = 0
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1)
    const data = new Uint16Array(n)
    for (let i = 0; i < n; i++) data[i] = (seed * 7919 + k * 31 + i) & 0x3bff
    out[name] = { dtype: 'F16', shape, data }
    k++
  }
  return out
}

export type TinyFamily = 'sd-1' | 'sd-2' | 'sdxl'

const CONTEXT: Record<TinyFamily, number> = { 'sd-1': 768, 'sd-2': 1024, sdxl: 2048 }

export async function tinyCheckpoint(
  file: string,
  family: TinyFamily,
  opts: { seed?: number; inpaint?: boolean } = {},
): Promise<string> {
  const unet = ldmUnet({
    channels: [8, 16],
    depth: [1, 0],
    context: CONTEXT[family],
    linear: family !== 'sd-1',
    inChannels: opts.inpaint ? 9 : 4,
    ...(family === 'sdxl' ? { labelEmbIn: 2816 } : {}),
  })
  await fs.promises.mkdir(path.dirname(file), { recursive: true })
  await writeSafetensors(file, fill({ ...unet, ...ldmVae('first_stage_model.', [8, 8], 4) }, opts.seed ?? 1))
  return file
}

export async function tinyLora(
  file: string,
  family: TinyFamily = 'sd-1',
  opts: { seed?: number; metadata?: Record<string, string> } = {},
): Promise<string> {
  const mod = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k'
  const shapes: Shapes = {
    [`${mod}.lora_down.weight`]: [1, CONTEXT[family]],
    [`${mod}.lora_up.weight`]: [8, 1],
    [`${mod}.alpha`]: [],
  }
  await fs.promises.mkdir(path.dirname(file), { recursive: true })
  await writeSafetensors(file, fill(shapes, opts.seed ?? 1), opts.metadata)
  return file
}

export async function tinyEmbedding(
  file: string,
  family: 'sd-1' | 'sd-2' = 'sd-1',
  seed = 1,
): Promise<string> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true })
  await writeSafetensors(file, fill({ emb_params: [2, CONTEXT[family]] }, seed))
  return file
}

export async function tinyVae(file: string, seed = 1): Promise<string> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true })
  await writeSafetensors(file, fill(ldmVae('', [8, 8], 4), seed))
  return file
}

export async function tempDir(prefix = 'atelier-lib-'): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), prefix))
}
