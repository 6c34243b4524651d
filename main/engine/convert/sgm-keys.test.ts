import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readHeader, writeSafetensors } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import { openClipKey, openClipSources, sgmLabelEmbKey, SGM_TE2_PREFIX, textEncoder2Key } from './sgm-keys'
import { openCheckpointSource, SourceError } from './source'

let tmp = ''
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-sgm-'))
})
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const f32 = (shape: number[], f: (i: number) => number = (i) => i) => ({
  dtype: 'F32' as const,
  shape,
  data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)),
})

describe('SGM / OpenCLIP key mapping', () => {
  it('maps the OpenCLIP text tower to Hugging Face names', () => {
    expect(openClipKey('token_embedding.weight')).toBe('text_model.embeddings.token_embedding.weight')
    expect(openClipKey('positional_embedding')).toBe('text_model.embeddings.position_embedding.weight')
    expect(openClipKey('ln_final.bias')).toBe('text_model.final_layer_norm.bias')
    expect(openClipKey('transformer.resblocks.7.ln_2.weight')).toBe(
      'text_model.encoder.layers.7.layer_norm2.weight',
    )
    expect(openClipKey('transformer.resblocks.0.attn.out_proj.bias')).toBe(
      'text_model.encoder.layers.0.self_attn.out_proj.bias',
    )
    expect(openClipKey('transformer.resblocks.3.mlp.c_proj.weight')).toBe(
      'text_model.encoder.layers.3.mlp.fc2.weight',
    )
    expect(openClipKey('text_projection')).toBe('text_projection')
    expect(openClipKey('text_projection.weight')).toBe('text_projection.weight')
    expect(openClipKey('logit_scale')).toBeUndefined()
    expect(openClipKey('transformer.resblocks.0.attn.in_proj_weight')).toBeUndefined()
    expect(textEncoder2Key('text_projection.weight')).toBe('text_projection.weight')
    expect(textEncoder2Key('text_model.embeddings.position_ids')).toBeUndefined()
    expect(sgmLabelEmbKey('label_emb.0.0.weight')).toBe('add_embedding.linear_1.weight')
    expect(sgmLabelEmbKey('label_emb.0.2.bias')).toBe('add_embedding.linear_2.bias')
    expect(sgmLabelEmbKey('label_emb.0.1.weight')).toBeUndefined()
  })

  it('splits the fused in_proj weight and bias into q/k/v by byte ranges (rows are contiguous)', async () => {
    const file = path.join(tmp, 'te2.safetensors')
    const W = 4
    await writeSafetensors(file, {
      [`${SGM_TE2_PREFIX}transformer.resblocks.0.attn.in_proj_weight`]: f32([3 * W, W]),
      [`${SGM_TE2_PREFIX}transformer.resblocks.0.attn.in_proj_bias`]: f32([3 * W], (i) => 100 + i),
      [`${SGM_TE2_PREFIX}ln_final.weight`]: f32([W]),
      'model.diffusion_model.x': f32([1]),
    })
    const header = await readHeader(file)
    const s = openClipSources(file, header.tensors.entries(), SGM_TE2_PREFIX)
    expect([...s.keys()].sort()).toEqual([
      'text_model.encoder.layers.0.self_attn.k_proj.bias',
      'text_model.encoder.layers.0.self_attn.k_proj.weight',
      'text_model.encoder.layers.0.self_attn.q_proj.bias',
      'text_model.encoder.layers.0.self_attn.q_proj.weight',
      'text_model.encoder.layers.0.self_attn.v_proj.bias',
      'text_model.encoder.layers.0.self_attn.v_proj.weight',
      'text_model.final_layer_norm.weight',
    ])
    const bytes = fs.readFileSync(file)
    const values = (name: string): number[] => {
      const src = s.get(name)
      if (src?.kind !== 'file') throw new Error(name)
      expect(src.shape).toEqual(name.endsWith('weight') ? [W, W] : [W])
      const b = bytes.subarray(src.begin, src.end)
      return [...new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))]
    }
    expect(values('text_model.encoder.layers.0.self_attn.k_proj.weight')).toEqual(
      Array.from({ length: W * W }, (_, i) => W * W + i),
    )
    expect(values('text_model.encoder.layers.0.self_attn.v_proj.bias')).toEqual([108, 109, 110, 111])
  })

  it('refuses a fused projection that does not split in three', async () => {
    const file = path.join(tmp, 'bad.safetensors')
    await writeSafetensors(file, {
      [`${SGM_TE2_PREFIX}transformer.resblocks.0.attn.in_proj_weight`]: f32([5, 4]),
    })
    const header = await readHeader(file)
    expect(() => openClipSources(file, header.tensors.entries(), SGM_TE2_PREFIX)).toThrow(
      /bad\.safetensors: ".*in_proj_weight" \[5,4\] F32 is not a fused q\/k\/v projection/,
    )
  })

  it('names the SDXL refiner and SD 2.x as not supported yet', async () => {
    const refiner = path.join(tmp, 'refiner.safetensors')
    await writeSafetensors(refiner, {
      'conditioner.embedders.0.model.token_embedding.weight': f32([2, 2]),
      'model.diffusion_model.input_blocks.0.0.weight': f32([1]),
    })
    await expect(openCheckpointSource(refiner)).rejects.toThrow(SourceError)
    await expect(openCheckpointSource(refiner)).rejects.toThrow(
      /SDXL refiner checkpoint, which is not supported yet/,
    )
    const sd2 = path.join(tmp, 'sd2.safetensors')
    await writeSafetensors(sd2, {
      'cond_stage_model.model.token_embedding.weight': f32([2, 2]),
      'model.diffusion_model.input_blocks.0.0.weight': f32([1]),
    })
    await expect(openCheckpointSource(sd2)).rejects.toThrow(/SD 2\.x checkpoint .*not supported yet/)
  })
})

const SDXL = path.resolve(repoRoot(), '../shared/oracle-sdxl')
const haveSdxl = fs.existsSync(path.join(SDXL, 'tiny-sdxl.safetensors'))

describe.skipIf(!haveSdxl)(
  'tiny SDXL: single file and diffusers folder map to the same canonical weights',
  () => {
    it('same names, shapes and values (the projection transposed), q/k/v from the fused tensor', async () => {
      const a = await openCheckpointSource(path.join(SDXL, 'tiny-sdxl.safetensors'))
      const b = await openCheckpointSource(path.join(SDXL, 'tiny-sdxl-diffusers'))
      expect([a.family, b.family]).toEqual(['sdxl', 'sdxl'])
      const read = (s: { kind: string; file?: string; begin?: number; end?: number }): Buffer => {
        if (s.kind !== 'file' || !s.file) throw new Error('file source expected')
        const fd = fs.openSync(s.file, 'r')
        const buf = Buffer.alloc((s.end ?? 0) - (s.begin ?? 0))
        fs.readSync(fd, buf, 0, buf.length, s.begin ?? 0)
        fs.closeSync(fd)
        return buf
      }
      for (const c of ['text_encoder', 'text_encoder_2', 'unet', 'vae'] as const) {
        const x = a.components[c] ?? new Map()
        const y = b.components[c] ?? new Map()
        const names = (m: Map<string, unknown>) =>
          [...m.keys()].map((k) => (k === 'text_projection' ? 'text_projection.weight' : k)).sort()
        expect(names(x), c).toEqual(names(y))
        for (const [name, sx] of x) {
          if (name === 'text_projection') continue
          const sy = y.get(name)
          expect(sy?.shape, name).toEqual(sx.shape)
          expect(read(sx).equals(read(sy ?? sx)), name).toBe(true)
        }
      }
      // [width, proj] applied as x @ P in the single file; nn.Linear [proj, width] in the folder.
      const p = read(a.components.text_encoder_2?.get('text_projection') ?? expect.unreachable())
      const q = read(b.components.text_encoder_2?.get('text_projection.weight') ?? expect.unreachable())
      const n = 128
      for (const [i, j] of [
        [0, 1],
        [5, 77],
        [127, 3],
      ] as const)
        expect(p.readUInt16LE(2 * (i * n + j))).toBe(q.readUInt16LE(2 * (j * n + i)))
    })
  },
)
