import fs from 'node:fs/promises'
import { torchSaveZip } from './pickle/torch-writer'
import { f32ToF16, writeSafetensors } from './safetensors'

/**
 * Deterministic textual-inversion files in every format Atelier reads, for tests, fixtures and benches:
 * A1111 `.pt` (torch.save zip of `{'string_to_param': {'*': [n, W]}}`), kohya `.safetensors` (`emb_params`),
 * diffusers `.bin` (`{'<token>': [W]}`) and SDXL `.safetensors` (`clip_l` [n, 768] + `clip_g` [n, 1280]).
 */

export type EmbeddingFixtureFormat = 'a1111-pt' | 'safetensors' | 'diffusers-bin' | 'sdxl'

/** Seeded values in [-scale, scale) (mulberry32). */
export function fixtureVectors(n: number, seed: number, scale = 0.05): Float32Array {
  let a = seed >>> 0
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale
  }
  return out
}

export async function writeEmbeddingFixture(
  file: string,
  format: EmbeddingFixtureFormat,
  o: { vectors?: number; width?: number; seed?: number; fp16?: boolean } = {},
): Promise<void> {
  const n = o.vectors ?? 2
  const w = o.width ?? 768
  const seed = o.seed ?? 1
  if (format === 'sdxl') {
    const l = fixtureVectors(n * 768, seed)
    const g = fixtureVectors(n * 1280, seed + 1)
    await writeSafetensors(file, {
      clip_l: { dtype: 'F16', shape: [n, 768], data: f32ToF16(l) },
      clip_g: { dtype: 'F16', shape: [n, 1280], data: f32ToF16(g) },
    })
    return
  }
  const v = fixtureVectors((format === 'diffusers-bin' ? 1 : n) * w, seed)
  if (format === 'safetensors') {
    await writeSafetensors(file, {
      emb_params: o.fp16
        ? { dtype: 'F16', shape: [n, w], data: f32ToF16(v) }
        : { dtype: 'F32', shape: [n, w], data: v },
    })
    return
  }
  const bytes = new Uint8Array(v.buffer.slice(0))
  if (format === 'diffusers-bin') {
    await fs.writeFile(file, torchSaveZip([['<concept>', { dtype: 'F32', shape: [w], bytes }]]))
    return
  }
  await fs.writeFile(
    file,
    torchSaveZip([['*', { dtype: 'F32', shape: [n, w], bytes }]], { wrapper: 'string_to_param' }),
  )
}
