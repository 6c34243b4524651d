import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../../platform/paths'
import { mapLdmUnetKeys } from '../convert/ldm-unet-keys'
import { SafetensorsFile } from '../../model-formats/safetensors'
import {
  canonicalToLdmModule,
  kohyaUnetModuleMap,
  resolveKohyaUnetKey,
  unetLevelsFromNames,
} from '../../model-formats/lora/unet-keys'

const oracle = path.resolve(repoRoot(), '../shared/oracle')
const haveOracle = fs.existsSync(path.join(oracle, 'tiny-lora.safetensors'))
if (!haveOracle) console.warn(`lora unet-keys: skipping oracle checks, ${oracle} is absent`)

describe('kohya UNet LoRA keys', () => {
  const names = [
    'down_blocks.0.resnets.0.conv1.weight',
    'down_blocks.0.resnets.1.conv1.weight',
    'down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_out.0.weight',
    'down_blocks.0.downsamplers.0.conv.weight',
    'down_blocks.1.resnets.0.conv_shortcut.weight',
    'mid_block.attentions.0.proj_in.weight',
    'mid_block.resnets.1.time_emb_proj.weight',
    'up_blocks.0.resnets.2.conv2.weight',
    'up_blocks.0.upsamplers.0.conv.weight',
    'up_blocks.1.attentions.2.proj_out.weight',
    'up_blocks.1.resnets.0.norm1.weight',
  ]

  it('maps diffusers-flattened and LDM-flattened names to canonical modules', () => {
    const lv = unetLevelsFromNames(names)
    expect(lv).toEqual({ levels: 2, layersPerBlock: 2, upAttention: [false, true] })
    const m = kohyaUnetModuleMap(names)
    const r = (k: string) => resolveKohyaUnetKey(k, m)
    expect(
      r('lora_unet_down_blocks_0_attentions_1_transformer_blocks_0_attn1_to_out_0.lora_up.weight'),
    ).toEqual({
      module: 'down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_out.0',
      part: 'up',
      suffix: 'lora_up.weight',
    })
    expect(r('lora_unet_input_blocks_2_1_transformer_blocks_0_attn1_to_out_0.alpha')?.module).toBe(
      'down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_out.0',
    )
    expect(r('lora_unet_middle_block_1_proj_in.lora_down.weight')?.module).toBe(
      'mid_block.attentions.0.proj_in',
    )
    expect(r('lora_unet_output_blocks_2_1_conv.lora_down.weight')?.module).toBe(
      'up_blocks.0.upsamplers.0.conv',
    )
    expect(r('lora_unet_output_blocks_5_1_proj_out.lora_down.weight')?.module).toBe(
      'up_blocks.1.attentions.2.proj_out',
    )
    expect(r('lora_unet_input_blocks_3_0_op.lora_down.weight')?.module).toBe(
      'down_blocks.0.downsamplers.0.conv',
    )
    expect(r('lora_unet_input_blocks_4_0_skip_connection.lora_down.weight')?.module).toBe(
      'down_blocks.1.resnets.0.conv_shortcut',
    )
    expect(r('lora_te_text_model_encoder_layers_0_mlp_fc1.alpha')).toBeUndefined()
    expect(r('lora_unet_nonexistent_module.alpha')).toBeUndefined()
  })

  it.skipIf(!haveOracle)(
    'inverts the LDM mapping of the oracle checkpoint and resolves every LoRA key',
    async () => {
      const ckpt = await SafetensorsFile.open(path.join(oracle, 'tiny-sd15.safetensors'))
      const lora = await SafetensorsFile.open(path.join(oracle, 'tiny-lora.safetensors'))
      try {
        const { map } = mapLdmUnetKeys(ckpt.keys())
        const canonical = [...map.keys()]
        const lv = unetLevelsFromNames(canonical)
        for (const [name, ldmKey] of map) {
          const suffix = name.slice(name.lastIndexOf('.'))
          const ldm = canonicalToLdmModule(name.slice(0, -suffix.length), lv)
          expect(`model.diffusion_model.${ldm}${suffix}`).toBe(ldmKey)
        }
        const modules = kohyaUnetModuleMap(canonical)
        const unetKeys = lora.keys().filter((k) => k.startsWith('lora_unet_'))
        expect(unetKeys.filter((k) => !k.endsWith('.alpha')).length).toBe(384)
        for (const k of unetKeys) {
          const r = resolveKohyaUnetKey(k, modules)
          expect(r, k).toBeDefined()
          expect(map.has(`${r?.module}.weight`)).toBe(true)
        }
      } finally {
        await ckpt.close()
        await lora.close()
      }
    },
  )
})
