/**
 * LDM (CompVis / A1111 single-file) UNet key names -> diffusers UNet2DConditionModel names.
 *
 * The rules follow diffusers' convert_from_ckpt (v0.21.4): the LDM UNet is a flat list of
 * `input_blocks` (conv_in, then per level `layers` resnet[+attention] entries and a downsampler on every
 * level but the last), a 3-entry `middle_block` and `output_blocks` (per level `layers + 1` entries,
 * an upsampler riding on the last entry of every level but the last). The level count and layers per
 * block are inferred from the keys present (where the downsamplers sit), never assumed.
 */

export const LDM_UNET_PREFIX = 'model.diffusion_model.'

export interface LdmUnetLayout {
  /** Number of resolution levels (SD 1.x: 4). */
  levels: number
  /** Resnets per down block (SD 1.x: 2); up blocks have one more. */
  layersPerBlock: number
  inputBlocks: number
  outputBlocks: number
}

export class LdmUnetKeyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LdmUnetKeyError'
  }
}

const RESNET_RENAMES: [string, string][] = [
  ['in_layers.0.', 'norm1.'],
  ['in_layers.2.', 'conv1.'],
  ['out_layers.0.', 'norm2.'],
  ['out_layers.3.', 'conv2.'],
  ['emb_layers.1.', 'time_emb_proj.'],
  ['skip_connection.', 'conv_shortcut.'],
]

const TOP_LEVEL: Record<string, string> = {
  'time_embed.0.': 'time_embedding.linear_1.',
  'time_embed.2.': 'time_embedding.linear_2.',
  'input_blocks.0.0.': 'conv_in.',
  'out.0.': 'conv_norm_out.',
  'out.2.': 'conv_out.',
}

function renameResnet(rest: string): string {
  for (const [from, to] of RESNET_RENAMES) if (rest.startsWith(from)) return to + rest.slice(from.length)
  return rest
}

/** Group UNet keys (prefix stripped) as `section.N.M` -> list of the remaining key tails. */
function groupBlocks(keys: string[], section: string): Map<number, Map<number, string[]>> {
  const out = new Map<number, Map<number, string[]>>()
  const re = new RegExp(`^${section}\\.(\\d+)\\.(\\d+)\\.(.+)$`)
  for (const k of keys) {
    const m = re.exec(k)
    if (!m) continue
    const n = Number(m[1])
    const j = Number(m[2])
    let inner = out.get(n)
    if (!inner) out.set(n, (inner = new Map()))
    let tails = inner.get(j)
    if (!tails) inner.set(j, (tails = []))
    tails.push(m[3] as string)
  }
  return out
}

function maxIndex(groups: Map<number, unknown>): number {
  let max = -1
  for (const n of groups.keys()) max = Math.max(max, n)
  return max
}

/** Infer levels and layers per block from the LDM keys (prefix already stripped). */
export function inferLdmUnetLayout(unetKeys: string[]): LdmUnetLayout {
  const input = groupBlocks(unetKeys, 'input_blocks')
  const output = groupBlocks(unetKeys, 'output_blocks')
  const inputBlocks = maxIndex(input) + 1
  const outputBlocks = maxIndex(output) + 1
  if (inputBlocks < 2 || outputBlocks < 1)
    throw new LdmUnetKeyError('UNet has no input_blocks/output_blocks: not an LDM UNet checkpoint')
  const downsamplers: number[] = []
  for (const [n, inner] of input) if (inner.get(0)?.some((t) => t.startsWith('op.'))) downsamplers.push(n)
  downsamplers.sort((a, b) => a - b)
  const levels = downsamplers.length + 1
  const perLevel = (inputBlocks - 1 - downsamplers.length) / levels
  if (!Number.isInteger(perLevel) || perLevel < 1)
    throw new LdmUnetKeyError(
      `UNet input_blocks do not form levels: ${inputBlocks} input blocks with ${downsamplers.length} downsamplers`,
    )
  downsamplers.forEach((n, level) => {
    if (n !== (level + 1) * (perLevel + 1))
      throw new LdmUnetKeyError(`UNet downsampler at input_blocks.${n} is not at the end of level ${level}`)
  })
  if (outputBlocks !== levels * (perLevel + 1))
    throw new LdmUnetKeyError(
      `UNet has ${outputBlocks} output_blocks; ${levels} levels of ${perLevel} layers need ${levels * (perLevel + 1)}`,
    )
  return { levels, layersPerBlock: perLevel, inputBlocks, outputBlocks }
}

/**
 * Map every LDM UNet key to its diffusers name. `keys` may be a whole checkpoint's key list; only keys under
 * `prefix` are considered. Returns diffusers name -> LDM key (full, with prefix) and the LDM keys that no
 * rule covers (e.g. SDXL `label_emb`), which callers should report rather than drop silently.
 */
export function mapLdmUnetKeys(
  keys: Iterable<string>,
  prefix = LDM_UNET_PREFIX,
): { layout: LdmUnetLayout; map: Map<string, string>; unmapped: string[] } {
  const unetKeys: string[] = []
  for (const k of keys) if (k.startsWith(prefix)) unetKeys.push(k.slice(prefix.length))
  const layout = inferLdmUnetLayout(unetKeys)
  const per = layout.layersPerBlock + 1
  const output = groupBlocks(unetKeys, 'output_blocks')
  const map = new Map<string, string>()
  const unmapped: string[] = []

  const rename = (k: string): string | undefined => {
    for (const [from, to] of Object.entries(TOP_LEVEL))
      if (k.startsWith(from)) return to + k.slice(from.length)
    let m = /^input_blocks\.(\d+)\.(\d+)\.(.+)$/.exec(k)
    if (m) {
      const i = Number(m[1])
      const sub = Number(m[2])
      const rest = m[3] as string
      const level = Math.floor((i - 1) / per)
      const j = (i - 1) % per
      if (j === layout.layersPerBlock) {
        return sub === 0 && rest.startsWith('op.')
          ? `down_blocks.${level}.downsamplers.0.conv.${rest.slice(3)}`
          : undefined
      }
      if (sub === 0) return `down_blocks.${level}.resnets.${j}.${renameResnet(rest)}`
      if (sub === 1) return `down_blocks.${level}.attentions.${j}.${rest}`
      return undefined
    }
    m = /^middle_block\.(\d+)\.(.+)$/.exec(k)
    if (m) {
      const sub = Number(m[1])
      const rest = m[2] as string
      if (sub === 0) return `mid_block.resnets.0.${renameResnet(rest)}`
      if (sub === 1) return `mid_block.attentions.0.${rest}`
      if (sub === 2) return `mid_block.resnets.1.${renameResnet(rest)}`
      return undefined
    }
    m = /^output_blocks\.(\d+)\.(\d+)\.(.+)$/.exec(k)
    if (m) {
      const i = Number(m[1])
      const sub = Number(m[2])
      const rest = m[3] as string
      const level = Math.floor(i / per)
      const j = i % per
      if (sub === 0) return `up_blocks.${level}.resnets.${j}.${renameResnet(rest)}`
      // An entry holding only conv.weight/conv.bias is the upsampler (index 1 without attention, else 2).
      const tails = output.get(i)?.get(sub) ?? []
      const isUpsampler = tails.length > 0 && tails.every((t) => t === 'conv.weight' || t === 'conv.bias')
      if (isUpsampler) return `up_blocks.${level}.upsamplers.0.${rest}`
      if (sub === 1) return `up_blocks.${level}.attentions.${j}.${rest}`
      return undefined
    }
    return undefined
  }

  for (const k of unetKeys) {
    const to = rename(k)
    if (to === undefined) {
      unmapped.push(prefix + k)
      continue
    }
    if (map.has(to)) throw new LdmUnetKeyError(`UNet keys ${map.get(to)} and ${prefix + k} both map to ${to}`)
    map.set(to, prefix + k)
  }
  return { layout, map, unmapped }
}
