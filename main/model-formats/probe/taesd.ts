import path from 'node:path'
import { readHeader } from '../safetensors'

/**
 * TAESD / TAESDXL (madebyollin's tiny autoencoders) from tensor names alone: diffusers' AutoencoderTiny
 * (`decoder.layers.<i>...`, `encoder.layers.<i>...`, nothing else) or madebyollin's separate halves
 * (`taesd_decoder.safetensors`: `<i>.conv.<k>.weight` keys). TAESD and TAESDXL share every shape, so the
 * family comes from the name (an "xl" in the file or folder name: SDXL, else SD 1.x/2.x).
 */
export interface TaesdProbe {
  family: 'sd-1' | 'sdxl'
  decoder: boolean
  encoder: boolean
}

const DIFFUSERS = /^(decoder|encoder)\.layers\.\d+\.(conv\.[024]\.|skip\.)?(weight|bias)$/
const SPLIT = /^\d+\.(conv\.[024]\.|skip\.)?(weight|bias)$/

export async function probeTaesd(file: string): Promise<TaesdProbe | null> {
  if (!/\.(safetensors|sft)$/i.test(file)) return null
  let keys: string[]
  try {
    keys = [...(await readHeader(file)).tensors.keys()]
  } catch {
    return null
  }
  if (keys.length === 0) return null
  const where = `${path.basename(path.dirname(file))}/${path.basename(file)}`
  const family = /xl/i.test(where) ? 'sdxl' : 'sd-1'
  if (keys.every((k) => DIFFUSERS.test(k))) {
    const decoder = keys.some((k) => k.startsWith('decoder.layers.') && k.includes('.conv.4.'))
    const encoder = keys.some((k) => k.startsWith('encoder.layers.') && k.includes('.conv.4.'))
    return decoder || encoder ? { family, decoder, encoder } : null
  }
  // madebyollin's split files: only trust the bare numeric names with "taesd" in the file name.
  if (
    /taesd/i.test(path.basename(file)) &&
    keys.every((k) => SPLIT.test(k)) &&
    keys.some((k) => k.includes('.conv.4.'))
  ) {
    const encoder = /encoder/i.test(path.basename(file))
    return { family, decoder: !encoder, encoder }
  }
  return null
}
