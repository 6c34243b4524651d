import type { KeyMapping } from '../graphs/weights'

/**
 * Checkpoint key -> canonical (diffusers) names for the text encoder and the VAE, for both layouts:
 * single-file LDM (`cond_stage_model.transformer.text_model.*`, `first_stage_model.*`) and diffusers folders
 * (`text_model.*`, VAE already in diffusers naming, older `query/key/value/proj_attn` attention names).
 */

export const LDM_TEXT_PREFIX = 'cond_stage_model.transformer.'
export const LDM_VAE_PREFIX = 'first_stage_model.'

/** Text encoder: LDM `cond_stage_model.transformer.text_model.X` or HF `text_model.X` -> `text_model.X`. */
export function textEncoderKey(key: string): KeyMapping {
  const k = key.startsWith(LDM_TEXT_PREFIX) ? key.slice(LDM_TEXT_PREFIX.length) : key
  if (!k.startsWith('text_model.')) return undefined
  if (k.endsWith('.position_ids')) return undefined
  return k
}

const RESNET_PART: Record<string, string> = {
  norm1: 'norm1',
  conv1: 'conv1',
  norm2: 'norm2',
  conv2: 'conv2',
  nin_shortcut: 'conv_shortcut',
  conv_shortcut: 'conv_shortcut',
}

const ATTN_PART: Record<string, string> = {
  norm: 'group_norm',
  group_norm: 'group_norm',
  q: 'to_q',
  k: 'to_k',
  v: 'to_v',
  proj_out: 'to_out.0',
  to_q: 'to_q',
  to_k: 'to_k',
  to_v: 'to_v',
  'to_out.0': 'to_out.0',
  query: 'to_q',
  key: 'to_k',
  value: 'to_v',
  proj_attn: 'to_out.0',
}

function attnKey(prefix: string, rest: string, shape: number[]): KeyMapping {
  const dot = rest.lastIndexOf('.')
  const part = ATTN_PART[rest.slice(0, dot)]
  if (!part) return undefined
  const name = `${prefix}.${part}${rest.slice(dot)}`
  // Original SD stores the projections as 1x1 convs [C, C, 1, 1]; diffusers uses Linear [C, C]: same bytes.
  if (part !== 'group_norm' && shape.length === 4) return { name, shape: shape.slice(0, 2) }
  return name
}

/**
 * VAE key (without `first_stage_model.`) -> canonical. `upBlocks` is the number of decoder up blocks (LDM
 * numbers them from the lowest resolution up, diffusers the other way).
 */
export function vaeKey(key: string, shape: number[], upBlocks: number): KeyMapping {
  let m: RegExpExecArray | null
  if ((m = /^(encoder|decoder)\.(conv_in|conv_out)\.(weight|bias)$/.exec(key))) return key
  if ((m = /^(encoder|decoder)\.norm_out\.(weight|bias)$/.exec(key))) return `${m[1]}.conv_norm_out.${m[2]}`
  if (/^(post_)?quant_conv\.(weight|bias)$/.test(key)) return key
  if ((m = /^encoder\.down\.(\d+)\.block\.(\d+)\.(\w+)\.(weight|bias)$/.exec(key))) {
    const part = RESNET_PART[m[3] as string]
    return part && `encoder.down_blocks.${m[1]}.resnets.${m[2]}.${part}.${m[4]}`
  }
  if ((m = /^encoder\.down\.(\d+)\.downsample\.conv\.(weight|bias)$/.exec(key)))
    return `encoder.down_blocks.${m[1]}.downsamplers.0.conv.${m[2]}`
  if ((m = /^decoder\.up\.(\d+)\.block\.(\d+)\.(\w+)\.(weight|bias)$/.exec(key))) {
    const part = RESNET_PART[m[3] as string]
    return part && `decoder.up_blocks.${upBlocks - 1 - Number(m[1])}.resnets.${m[2]}.${part}.${m[4]}`
  }
  if ((m = /^decoder\.up\.(\d+)\.upsample\.conv\.(weight|bias)$/.exec(key)))
    return `decoder.up_blocks.${upBlocks - 1 - Number(m[1])}.upsamplers.0.conv.${m[2]}`
  if ((m = /^(encoder|decoder)\.mid\.block_([12])\.(\w+)\.(weight|bias)$/.exec(key))) {
    const part = RESNET_PART[m[3] as string]
    return part && `${m[1]}.mid_block.resnets.${Number(m[2]) - 1}.${part}.${m[4]}`
  }
  if ((m = /^(encoder|decoder)\.mid\.attn_1\.(.+)$/.exec(key)))
    return attnKey(`${m[1]}.mid_block.attentions.0`, m[2] as string, shape)
  // Already diffusers naming (a diffusers folder's vae/ or a converted file).
  if ((m = /^(encoder|decoder)\.mid_block\.attentions\.0\.(.+)$/.exec(key)))
    return attnKey(`${m[1]}.mid_block.attentions.0`, m[2] as string, shape)
  if (/^(encoder|decoder)\.(down_blocks|up_blocks|mid_block|conv_norm_out)\./.test(key)) return key
  return undefined
}

/** Number of LDM decoder up blocks among the keys (`decoder.up.N.`), after stripping the prefix. */
export function ldmVaeUpBlocks(keys: Iterable<string>): number {
  let n = 0
  for (const k of keys) {
    const m = /^decoder\.up\.(\d+)\./.exec(k)
    if (m) n = Math.max(n, Number(m[1]) + 1)
  }
  return n
}
