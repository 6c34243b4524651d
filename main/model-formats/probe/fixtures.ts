import type { KeyEntry } from './keys'

/**
 * Synthetic safetensors headers (names and shapes only) with real SD 1.5 / SD 2.x / SDXL widths, for probe
 * tests: probing never reads tensor data, so a header map is all a matcher sees.
 */

export interface LdmUnetSpec {
  channels: number[]
  layers?: number
  depth: number[]
  midDepth?: number
  context: number
  inChannels?: number
  linear?: boolean
  labelEmbIn?: number
}

type Shapes = Record<string, number[]>

export function ldmUnet(spec: LdmUnetSpec, prefix = 'model.diffusion_model.'): Shapes {
  const s: Shapes = {}
  const { channels, depth, context } = spec
  const layers = spec.layers ?? 2
  const ch0 = channels[0]!
  const put = (k: string, shape: number[]) => (s[prefix + k] = shape)
  const attn = (p: string, c: number, d: number) => {
    if (!d) return
    put(`${p}proj_in.weight`, spec.linear ? [c, c] : [c, c, 1, 1])
    for (let k = 0; k < d; k++) put(`${p}transformer_blocks.${k}.attn2.to_k.weight`, [c, context])
  }
  put('input_blocks.0.0.weight', [ch0, spec.inChannels ?? 4, 3, 3])
  put('time_embed.0.weight', [4 * ch0, ch0])
  if (spec.labelEmbIn) put('label_emb.0.0.weight', [4 * ch0, spec.labelEmbIn])
  let idx = 1
  let prev = ch0
  channels.forEach((c, l) => {
    for (let r = 0; r < layers; r++, idx++) {
      put(`input_blocks.${idx}.0.in_layers.2.weight`, [c, prev, 3, 3])
      put(`input_blocks.${idx}.0.out_layers.3.weight`, [c, c, 3, 3])
      attn(`input_blocks.${idx}.1.`, c, depth[l]!)
      prev = c
    }
    if (l < channels.length - 1) put(`input_blocks.${idx++}.0.op.weight`, [c, c, 3, 3])
  })
  const last = channels[channels.length - 1]!
  attn('middle_block.1.', last, spec.midDepth ?? Math.max(...depth))
  idx = 0
  for (let b = channels.length - 1; b >= 0; b--) {
    const c = channels[b]!
    for (let j = 0; j <= layers; j++, idx++) {
      put(`output_blocks.${idx}.0.in_layers.2.weight`, [c, 2 * c, 3, 3])
      attn(`output_blocks.${idx}.1.`, c, depth[b]!)
    }
  }
  put('out.2.weight', [4, ch0, 3, 3])
  return s
}

export function hfClip(prefix: string, width: number, layers: number, projection?: number): Shapes {
  const s: Shapes = {
    [`${prefix}text_model.embeddings.token_embedding.weight`]: [49408, width],
    [`${prefix}text_model.embeddings.position_embedding.weight`]: [77, width],
  }
  for (let i = 0; i < layers; i++)
    s[`${prefix}text_model.encoder.layers.${i}.mlp.fc1.weight`] = [4 * width, width]
  if (projection) s[`${prefix}text_projection.weight`] = [projection, width]
  return s
}

export function openClip(prefix: string, width: number, layers: number, projection?: number): Shapes {
  const s: Shapes = {
    [`${prefix}token_embedding.weight`]: [49408, width],
    [`${prefix}positional_embedding`]: [77, width],
  }
  for (let i = 0; i < layers; i++)
    s[`${prefix}transformer.resblocks.${i}.mlp.c_fc.weight`] = [4 * width, width]
  if (projection) s[`${prefix}text_projection`] = [width, projection]
  return s
}

export function ldmVae(prefix = 'first_stage_model.', channels = [128, 256, 512, 512], latent = 4): Shapes {
  const s: Shapes = {
    [`${prefix}encoder.conv_in.weight`]: [channels[0]!, 3, 3, 3],
    [`${prefix}decoder.conv_in.weight`]: [channels[channels.length - 1]!, latent, 3, 3],
    [`${prefix}decoder.conv_out.weight`]: [3, channels[0]!, 3, 3],
    [`${prefix}quant_conv.weight`]: [2 * latent, 2 * latent, 1, 1],
  }
  channels.forEach((c, i) => {
    for (let j = 0; j < 2; j++) s[`${prefix}encoder.down.${i}.block.${j}.conv2.weight`] = [c, c, 3, 3]
  })
  return s
}

export function toHeader(...parts: Shapes[]): Map<string, KeyEntry> {
  const m = new Map<string, KeyEntry>()
  for (const p of parts) for (const [k, shape] of Object.entries(p)) m.set(k, { shape, dtype: 'F16' })
  return m
}

export const SD15_UNET: LdmUnetSpec = { channels: [320, 640, 1280, 1280], depth: [1, 1, 1, 0], context: 768 }
export const SD21_UNET: LdmUnetSpec = { ...SD15_UNET, context: 1024, linear: true }
export const SDXL_UNET: LdmUnetSpec = {
  channels: [320, 640, 1280],
  depth: [0, 2, 10],
  context: 2048,
  linear: true,
  labelEmbIn: 2816,
}
export const SDXL_REFINER_UNET: LdmUnetSpec = {
  channels: [384, 768, 1536, 1536],
  depth: [0, 4, 4, 0],
  midDepth: 4,
  context: 1280,
  linear: true,
  labelEmbIn: 2560,
}
