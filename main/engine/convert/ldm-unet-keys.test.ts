import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../../platform/paths'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { LdmUnetKeyError, mapLdmUnetKeys } from './ldm-unet-keys'

const shared = path.resolve(repoRoot(), '../shared/oracle')
const haveShared = fs.existsSync(path.join(shared, 'tiny-sd15.safetensors'))
if (!haveShared) console.warn(`ldm-unet-keys: skipping oracle checks, ${shared} is absent`)

/** A synthetic SD1-style LDM key list for a given level count and layers per block. */
function syntheticKeys(levels: number, layers: number, attnLevels: number): string[] {
  const keys = ['time_embed.0.weight', 'time_embed.2.weight', 'input_blocks.0.0.weight', 'out.0.weight']
  let i = 1
  for (let l = 0; l < levels; l++) {
    for (let j = 0; j < layers; j++, i++) {
      keys.push(`input_blocks.${i}.0.in_layers.0.weight`, `input_blocks.${i}.0.emb_layers.1.weight`)
      if (l < attnLevels) keys.push(`input_blocks.${i}.1.proj_in.weight`)
    }
    if (l < levels - 1) keys.push(`input_blocks.${i++}.0.op.weight`)
  }
  keys.push(
    'middle_block.0.out_layers.3.weight',
    'middle_block.1.norm.weight',
    'middle_block.2.skip_connection.bias',
  )
  let o = 0
  for (let l = 0; l < levels; l++) {
    for (let j = 0; j <= layers; j++, o++) {
      keys.push(`output_blocks.${o}.0.in_layers.2.weight`)
      const attn = l >= levels - attnLevels
      if (attn) keys.push(`output_blocks.${o}.1.proj_out.weight`)
      if (j === layers && l < levels - 1) keys.push(`output_blocks.${o}.${attn ? 2 : 1}.conv.weight`)
    }
  }
  return keys.map((k) => `model.diffusion_model.${k}`)
}

describe('mapLdmUnetKeys', () => {
  it('infers levels and layers per block from where the downsamplers sit', () => {
    const { layout, map, unmapped } = mapLdmUnetKeys(syntheticKeys(3, 3, 2))
    expect(layout).toEqual({ levels: 3, layersPerBlock: 3, inputBlocks: 12, outputBlocks: 12 })
    expect(unmapped).toEqual([])
    expect(map.get('down_blocks.0.resnets.2.norm1.weight')).toBe(
      'model.diffusion_model.input_blocks.3.0.in_layers.0.weight',
    )
    expect(map.get('down_blocks.0.downsamplers.0.conv.weight')).toBe(
      'model.diffusion_model.input_blocks.4.0.op.weight',
    )
    expect(map.get('down_blocks.1.attentions.0.proj_in.weight')).toBe(
      'model.diffusion_model.input_blocks.5.1.proj_in.weight',
    )
    expect(map.get('up_blocks.0.resnets.3.conv1.weight')).toBe(
      'model.diffusion_model.output_blocks.3.0.in_layers.2.weight',
    )
    expect(map.get('up_blocks.0.upsamplers.0.conv.weight')).toBe(
      'model.diffusion_model.output_blocks.3.1.conv.weight',
    )
    expect(map.get('up_blocks.1.upsamplers.0.conv.weight')).toBe(
      'model.diffusion_model.output_blocks.7.2.conv.weight',
    )
    expect(map.get('up_blocks.1.attentions.3.proj_out.weight')).toBe(
      'model.diffusion_model.output_blocks.7.1.proj_out.weight',
    )
    expect(map.get('mid_block.resnets.1.conv_shortcut.bias')).toBe(
      'model.diffusion_model.middle_block.2.skip_connection.bias',
    )
    expect(map.get('time_embedding.linear_2.weight')).toBe('model.diffusion_model.time_embed.2.weight')
    expect(map.get('conv_norm_out.weight')).toBe('model.diffusion_model.out.0.weight')
  })

  it('reports keys no rule covers and rejects inconsistent layouts', () => {
    const keys = [
      ...syntheticKeys(2, 1, 1),
      'model.diffusion_model.label_emb.0.0.weight',
      'first_stage_model.x',
    ]
    const { layout, unmapped } = mapLdmUnetKeys(keys)
    expect(layout.levels).toBe(2)
    expect(unmapped).toEqual(['model.diffusion_model.label_emb.0.0.weight'])
    const broken = syntheticKeys(4, 2, 3).filter((k) => !k.includes('output_blocks.11.'))
    expect(() => mapLdmUnetKeys(broken)).toThrow(LdmUnetKeyError)
    expect(() => mapLdmUnetKeys(['model.diffusion_model.out.0.weight'])).toThrow(/not an LDM UNet/)
  })

  it.skipIf(!haveShared)('reproduces the diffusers folder of the oracle bit for bit', async () => {
    const ldm = await SafetensorsFile.open(path.join(shared, 'tiny-sd15.safetensors'))
    const dif = await SafetensorsFile.open(
      path.join(shared, 'tiny-sd15-diffusers/unet/diffusion_pytorch_model.safetensors'),
    )
    try {
      const { layout, map, unmapped } = mapLdmUnetKeys(ldm.keys())
      expect(layout).toEqual({ levels: 4, layersPerBlock: 2, inputBlocks: 12, outputBlocks: 12 })
      expect(unmapped).toEqual([])
      expect([...map.keys()].sort()).toEqual(dif.keys().sort())
      for (const [to, from] of map) {
        expect(ldm.info(from).shape, to).toEqual(dif.info(to).shape)
        const a = await ldm.readRaw(from)
        const b = await dif.readRaw(to)
        expect(Buffer.compare(Buffer.from(a), Buffer.from(b)), to).toBe(0)
      }
    } finally {
      await ldm.close()
      await dif.close()
    }
  })
})
