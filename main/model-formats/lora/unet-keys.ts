/**
 * kohya-style LoRA module names for the UNet -> canonical (diffusers) module paths.
 *
 * kohya sd-scripts writes `lora_unet_<diffusers module path with '.' replaced by '_'>`, e.g.
 * `lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0`. Because diffusers names contain
 * underscores themselves, the '_' form cannot be split back; instead every module of the actual UNet is
 * flattened and looked up. Some older trainers flattened the LDM names instead
 * (`lora_unet_input_blocks_1_1_proj_in`); those are recognised too, through the inverse of the LDM mapping.
 */

export const KOHYA_UNET_PREFIX = 'lora_unet_'

export interface UnetLevels {
  levels: number
  layersPerBlock: number
  /** Up levels (diffusers order) that hold attention modules: their upsampler sits at LDM index 2, else 1. */
  upAttention: boolean[]
}

/** Level count, layers per block and up-level attention, counted from canonical weight names. */
export function unetLevelsFromNames(names: Iterable<string>): UnetLevels {
  let levels = 0
  let layersPerBlock = 0
  const upAttn = new Set<number>()
  for (const n of names) {
    let m = /^down_blocks\.(\d+)\.resnets\.(\d+)\./.exec(n)
    if (m) {
      levels = Math.max(levels, Number(m[1]) + 1)
      layersPerBlock = Math.max(layersPerBlock, Number(m[2]) + 1)
    }
    m = /^up_blocks\.(\d+)\.attentions\./.exec(n)
    if (m) upAttn.add(Number(m[1]))
  }
  return { levels, layersPerBlock, upAttention: Array.from({ length: levels }, (_, i) => upAttn.has(i)) }
}

const RESNET_INVERSE: [string, string][] = [
  ['norm1', 'in_layers.0'],
  ['conv1', 'in_layers.2'],
  ['norm2', 'out_layers.0'],
  ['conv2', 'out_layers.3'],
  ['time_emb_proj', 'emb_layers.1'],
  ['conv_shortcut', 'skip_connection'],
]

function resnetPart(rest: string): string {
  for (const [from, to] of RESNET_INVERSE) {
    if (rest === from) return to
    if (rest.startsWith(`${from}.`)) return to + rest.slice(from.length)
  }
  return rest
}

/** The LDM (CompVis) module path of a canonical UNet module path, or undefined when it has none. */
export function canonicalToLdmModule(module: string, lv: UnetLevels): string | undefined {
  const per = lv.layersPerBlock + 1
  const top: Record<string, string> = {
    'time_embedding.linear_1': 'time_embed.0',
    'time_embedding.linear_2': 'time_embed.2',
    conv_in: 'input_blocks.0.0',
    conv_norm_out: 'out.0',
    conv_out: 'out.2',
  }
  if (module in top) return top[module]
  let m = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)(?:\.(.+))?$/.exec(module)
  if (m) {
    const i = 1 + Number(m[1]) * per + Number(m[3])
    const rest = m[4] ?? ''
    const body = m[2] === 'resnets' ? `input_blocks.${i}.0` : `input_blocks.${i}.1`
    const tail = m[2] === 'resnets' ? resnetPart(rest) : rest
    return tail ? `${body}.${tail}` : body
  }
  m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv$/.exec(module)
  if (m) return `input_blocks.${(Number(m[1]) + 1) * per}.0.op`
  m = /^mid_block\.(resnets|attentions)\.(\d+)(?:\.(.+))?$/.exec(module)
  if (m) {
    const rest = m[3] ?? ''
    const idx = m[1] === 'attentions' ? 1 : Number(m[2]) === 0 ? 0 : 2
    const tail = m[1] === 'resnets' ? resnetPart(rest) : rest
    return tail ? `middle_block.${idx}.${tail}` : `middle_block.${idx}`
  }
  m = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)(?:\.(.+))?$/.exec(module)
  if (m) {
    const o = Number(m[1]) * per + Number(m[3])
    const rest = m[4] ?? ''
    const body = m[2] === 'resnets' ? `output_blocks.${o}.0` : `output_blocks.${o}.1`
    const tail = m[2] === 'resnets' ? resnetPart(rest) : rest
    return tail ? `${body}.${tail}` : body
  }
  m = /^up_blocks\.(\d+)\.upsamplers\.0\.conv$/.exec(module)
  if (m) {
    const level = Number(m[1])
    return `output_blocks.${level * per + lv.layersPerBlock}.${lv.upAttention[level] ? 2 : 1}.conv`
  }
  return undefined
}

/**
 * Flattened module name (without `lora_unet_`) -> canonical module path, for every module that owns a
 * `.weight` among `canonicalWeights` (the UNet's canonical tensor names). Both kohya spellings are keyed.
 */
export function kohyaUnetModuleMap(canonicalWeights: Iterable<string>): Map<string, string> {
  const names = [...canonicalWeights]
  const lv = unetLevelsFromNames(names)
  const map = new Map<string, string>()
  for (const n of names) {
    if (!n.endsWith('.weight')) continue
    const module = n.slice(0, -'.weight'.length)
    map.set(module.replace(/\./g, '_'), module)
    const ldm = canonicalToLdmModule(module, lv)
    if (ldm !== undefined) {
      const flat = ldm.replace(/\./g, '_')
      if (!map.has(flat)) map.set(flat, module)
    }
  }
  return map
}

export interface KohyaKey {
  /** Canonical module path, e.g. `down_blocks.0.attentions.0.proj_in`. */
  module: string
  /** What the key holds. */
  part: 'down' | 'up' | 'alpha' | 'mid' | 'other'
  /** The text after the module name, e.g. `lora_down.weight`. */
  suffix: string
}

/** Resolve one `lora_unet_*` key against a module map; undefined for keys of other components or modules. */
export function resolveKohyaUnetKey(key: string, modules: Map<string, string>): KohyaKey | undefined {
  if (!key.startsWith(KOHYA_UNET_PREFIX)) return undefined
  const dot = key.indexOf('.')
  if (dot < 0) return undefined
  const flat = key.slice(KOHYA_UNET_PREFIX.length, dot)
  const module = modules.get(flat)
  if (module === undefined) return undefined
  const suffix = key.slice(dot + 1)
  const part =
    suffix === 'alpha'
      ? 'alpha'
      : suffix.startsWith('lora_down.')
        ? 'down'
        : suffix.startsWith('lora_up.')
          ? 'up'
          : suffix.startsWith('lora_mid.')
            ? 'mid'
            : 'other'
  return { module, part, suffix }
}
