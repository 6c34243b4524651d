import type { KeyView } from './keys'
import type { Base, UnetArch } from './types'
import { ProbeError } from './types'

/** Everything but the heads, which follow a per-family rule or the diffusers config. */
export type UnetShape = Omit<UnetArch, 'heads' | 'midHeads'>

interface Level {
  channels: number
  resnets: number
  depth: number
}

function unsupported(problem: string): never {
  throw new ProbeError(`unsupported UNet layout: ${problem}`, 'unsupported-architecture')
}

function depthOf(v: KeyView, attnPrefix: string): number {
  const re = new RegExp(`^${attnPrefix.replace(/\./g, '\\.')}transformer_blocks\\.(\\d+)\\.`)
  return v.count(re)
}

function finish(
  levels: Level[],
  partial: Omit<UnetShape, 'blockOutChannels' | 'layersPerBlock' | 'transformerDepth'>,
): UnetShape {
  if (levels.length === 0) unsupported('no down blocks found')
  const layersPerBlock = levels[0]!.resnets
  if (levels.some((l) => l.resnets !== layersPerBlock)) {
    unsupported(`down blocks have different resnet counts (${levels.map((l) => l.resnets).join(', ')})`)
  }
  return {
    ...partial,
    blockOutChannels: levels.map((l) => l.channels),
    layersPerBlock,
    transformerDepth: levels.map((l) => l.depth),
  }
}

/** Architecture from original LDM/SGM naming; `v` is under `model.diffusion_model.`. */
export function unetFromLdm(v: KeyView): UnetShape {
  const convIn = v.shape('input_blocks.0.0.weight')
  if (!convIn || convIn.length !== 4) unsupported('input_blocks.0.0.weight (conv_in) is missing')
  const levels: Level[] = []
  let cur: Level | undefined
  let linearProjection = false
  for (const i of v.indices(/^input_blocks\.(\d+)\./)) {
    if (i === 0) continue
    const p = `input_blocks.${i}.`
    if (v.has(`${p}0.op.weight`) || v.has(`${p}0.conv.weight`)) {
      if (cur) levels.push(cur)
      cur = undefined
      continue
    }
    if (!v.has(`${p}0.in_layers.2.weight`))
      unsupported(`input block ${i} is neither a resnet nor a downsampler`)
    const channels = v.dim(`${p}0.out_layers.3.weight`, 0)
    cur ??= { channels, resnets: 0, depth: 0 }
    cur.resnets++
    cur.channels = channels
    const depth = depthOf(v, `${p}1.`)
    if (depth > 0) {
      cur.depth = Math.max(cur.depth, depth)
      linearProjection = v.shape(`${p}1.proj_in.weight`)?.length === 2
    }
  }
  if (cur) levels.push(cur)

  const upBlockCount = levels.length
  const perUp = (levels[0]?.resnets ?? 0) + 1
  const transformerDepthUp: number[] = []
  for (let b = 0; b < upBlockCount; b++) {
    let d = 0
    for (let j = 0; j < perUp; j++) d = Math.max(d, depthOf(v, `output_blocks.${b * perUp + j}.1.`))
    transformerDepthUp.push(d)
  }
  const attn2 = v.find((n) => /transformer_blocks\.\d+\.attn2\.to_k\.weight$/.test(n))
  const labelEmb = v.shape('label_emb.0.0.weight')
  return finish(levels, {
    inChannels: convIn[1]!,
    outChannels: v.dim('out.2.weight', 0),
    modelChannels: convIn[0]!,
    midTransformerDepth: depthOf(v, 'middle_block.1.'),
    transformerDepthUp,
    contextDim: attn2 ? v.dim(attn2, 1) : 0,
    timeEmbedDim: v.dim('time_embed.0.weight', 0),
    linearProjection,
    ...(labelEmb ? { additionEmbedInDim: labelEmb[1]! } : {}),
  })
}

/** Architecture from diffusers naming (`conv_in`, `down_blocks.N.resnets.M`, ...); `v` is the UNet's own keys. */
export function unetFromDiffusers(v: KeyView): UnetShape {
  const convIn = v.shape('conv_in.weight')
  if (!convIn || convIn.length !== 4) unsupported('conv_in.weight is missing')
  const levels: Level[] = []
  let linearProjection = false
  for (const i of v.indices(/^down_blocks\.(\d+)\./)) {
    const resnets = v.indices(new RegExp(`^down_blocks\\.${i}\\.resnets\\.(\\d+)\\.`))
    const last = resnets[resnets.length - 1]
    if (last === undefined) unsupported(`down block ${i} has no resnets`)
    let depth = 0
    for (const a of v.indices(new RegExp(`^down_blocks\\.${i}\\.attentions\\.(\\d+)\\.`))) {
      depth = Math.max(depth, depthOf(v, `down_blocks.${i}.attentions.${a}.`))
      linearProjection = v.shape(`down_blocks.${i}.attentions.${a}.proj_in.weight`)?.length === 2
    }
    levels.push({
      channels: v.dim(`down_blocks.${i}.resnets.${last}.conv2.weight`, 0),
      resnets: resnets.length,
      depth,
    })
  }
  const transformerDepthUp = v.indices(/^up_blocks\.(\d+)\./).map((i) => {
    let d = 0
    for (const a of v.indices(new RegExp(`^up_blocks\\.${i}\\.attentions\\.(\\d+)\\.`))) {
      d = Math.max(d, depthOf(v, `up_blocks.${i}.attentions.${a}.`))
    }
    return d
  })
  const attn2 = v.find((n) => /transformer_blocks\.\d+\.attn2\.to_k\.weight$/.test(n))
  const addEmb = v.shape('add_embedding.linear_1.weight')
  return finish(levels, {
    inChannels: convIn[1]!,
    outChannels: v.dim('conv_out.weight', 0),
    modelChannels: convIn[0]!,
    midTransformerDepth: depthOf(v, 'mid_block.attentions.0.'),
    transformerDepthUp,
    contextDim: attn2 ? v.dim(attn2, 1) : 0,
    timeEmbedDim: v.dim('time_embedding.linear_1.weight', 0),
    linearProjection,
    ...(addEmb ? { additionEmbedInDim: addEmb[1]! } : {}),
  })
}

/**
 * Heads per family: SD 1.x uses 8 heads everywhere (the head size is channels / 8); SD 2.x and SDXL use
 * 64-wide heads (heads = channels / 64). Levels without attention get 0.
 */
export function withHeads(shape: UnetShape, base: Base): UnetArch {
  const rule = (ch: number) => (base === 'sd-1' ? 8 : Math.max(1, Math.floor(ch / 64)))
  const last = shape.blockOutChannels[shape.blockOutChannels.length - 1] ?? 0
  return {
    ...shape,
    heads: shape.blockOutChannels.map((ch, i) => (shape.transformerDepth[i] ? rule(ch) : 0)),
    midHeads: shape.midTransformerDepth ? rule(last) : 0,
  }
}

/** Heads from a diffusers config: `num_attention_heads`, else `attention_head_dim` (which diffusers uses as the count). */
export function withConfigHeads(shape: UnetShape, config: Record<string, unknown>): UnetArch | undefined {
  const raw = config.num_attention_heads ?? config.attention_head_dim
  const n = shape.blockOutChannels.length
  let list: number[] | undefined
  if (typeof raw === 'number') list = Array<number>(n).fill(raw)
  else if (Array.isArray(raw) && raw.length === n && raw.every((x) => typeof x === 'number'))
    list = raw as number[]
  if (!list) return undefined
  const heads = list.map((h, i) => (shape.transformerDepth[i] ? h : 0))
  return { ...shape, heads, midHeads: shape.midTransformerDepth ? list[n - 1]! : 0 }
}

/**
 * SDXL: label_emb input = pooled text width + N * time-id embedding size, N = 6 for the base
 * (original size, crop, target size) and 5 for the refiner (original size, crop, aesthetic score).
 */
export function withAdditionTimeDim(
  arch: UnetArch,
  pooledDim: number | undefined,
  refiner = false,
): UnetArch {
  if (arch.additionEmbedInDim === undefined || pooledDim === undefined) return arch
  const n = refiner ? 5 : 6
  const rest = arch.additionEmbedInDim - pooledDim
  return rest > 0 && rest % n === 0 ? { ...arch, additionTimeEmbedDim: rest / n } : arch
}
