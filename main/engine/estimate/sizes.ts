import fs from 'node:fs'
import { onnx } from '../../model-formats/onnx/builder'

/**
 * What a memory estimate needs to know about one converted model: parameters per stage (counted from its
 * graphs' initializers, so LoRA-free conversions of any width count exactly) and the widths that size its
 * activations: the UNet's first level (320 for SD 1.x and SDXL) and the VAE decoder's full-resolution level
 * (128).
 */
export interface ModelSizes {
  params: { unet: number; text: number; vae: number }
  unetChannels: number
  vaeChannels: number
}

interface Counted {
  params: number
  shapes: Map<string, number[]>
}

function count(file: string): Counted {
  const m = onnx.ModelProto.decode(fs.readFileSync(file))
  let params = 0
  const shapes = new Map<string, number[]>()
  for (const t of m.graph?.initializer ?? []) {
    const dims = (t.dims ?? []).map(Number)
    params += dims.reduce((a, b) => a * b, 1)
    if (t.name) shapes.set(t.name, dims)
  }
  return { params, shapes }
}

/** Sizes of a converted model from its graph files (text_encoder_2 counts with the text encoders). */
export function modelSizes(paths: {
  unet: string
  text_encoder: string
  text_encoder_2?: string
  vae_decoder: string
}): ModelSizes {
  const unet = count(paths.unet)
  const vae = count(paths.vae_decoder)
  let text = count(paths.text_encoder).params
  if (paths.text_encoder_2 && fs.existsSync(paths.text_encoder_2)) text += count(paths.text_encoder_2).params
  const width = (c: Counted, name: string, fallback: number): number => c.shapes.get(name)?.[0] ?? fallback
  return {
    params: { unet: unet.params, text, vae: vae.params },
    unetChannels: width(unet, 'conv_in.weight', 320),
    vaeChannels: width(vae, 'decoder.conv_norm_out.weight', 128),
  }
}
