import type { WeightProvider } from './weights'

/**
 * The architecture of an SD-style UNet2DConditionModel, read off the weights (canonical diffusers names).
 * Nothing here is a constant of one model: widths, level count, layers per block, which levels carry
 * attention, transformer depth, context width and input channels all come from tensor shapes.
 */
export interface UnetConfig {
  inChannels: number
  outChannels: number
  /** Output channels per level, e.g. SD 1.5: [320, 640, 1280, 1280]. */
  blockOutChannels: number[]
  /** Resnets per down block (SD 1.5: 2); every up block has one more. */
  layersPerBlock: number
  /** Per level: whether the down block / the up block (diffusers up index) has Transformer2D modules. */
  downAttention: boolean[]
  upAttention: boolean[]
  midAttention: boolean
  /** Width of encoder_hidden_states (SD 1.5: 768). */
  crossAttentionDim: number
  /** Sinusoidal time projection width (= first block width) and time embedding width (SD 1.5: 320, 1280). */
  timeProjDim: number
  timeEmbedDim: number
  /** Attention heads in every transformer (SD 1.x rule: 8; head size = channels / heads). */
  heads: number
}

export class UnetConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UnetConfigError'
  }
}

function count(w: WeightProvider, name: (i: number) => string): number {
  let n = 0
  while (w.has(name(n))) n++
  return n
}

function need(w: WeightProvider, name: string): number[] {
  if (!w.has(name)) throw new UnetConfigError(`UNet weight ${name} is missing`)
  return w.shape(name)
}

export function countTransformerBlocks(w: WeightProvider, prefix: string): number {
  return count(w, (k) => `${prefix}.transformer_blocks.${k}.attn1.to_q.weight`)
}

export function inferUnetConfig(w: WeightProvider, opts: { heads?: number } = {}): UnetConfig {
  const convIn = need(w, 'conv_in.weight')
  const convOut = need(w, 'conv_out.weight')
  const levels = count(w, (i) => `down_blocks.${i}.resnets.0.conv1.weight`)
  if (levels === 0)
    throw new UnetConfigError('UNet has no down blocks (down_blocks.0.resnets.0.conv1.weight)')
  const layersPerBlock = count(w, (j) => `down_blocks.0.resnets.${j}.conv1.weight`)
  const upLevels = count(w, (i) => `up_blocks.${i}.resnets.0.conv1.weight`)
  if (upLevels !== levels)
    throw new UnetConfigError(`UNet has ${levels} down blocks but ${upLevels} up blocks`)
  for (let i = 0; i < levels; i++) {
    const down = count(w, (j) => `down_blocks.${i}.resnets.${j}.conv1.weight`)
    const up = count(w, (j) => `up_blocks.${i}.resnets.${j}.conv1.weight`)
    if (down !== layersPerBlock || up !== layersPerBlock + 1)
      throw new UnetConfigError(
        `UNet level ${i} has ${down} down / ${up} up resnets; expected ${layersPerBlock} / ${layersPerBlock + 1}`,
      )
  }
  const blockOutChannels = Array.from(
    { length: levels },
    (_, i) => need(w, `down_blocks.${i}.resnets.0.conv1.weight`)[0] as number,
  )
  const downAttention = Array.from({ length: levels }, (_, i) =>
    w.has(`down_blocks.${i}.attentions.0.proj_in.weight`),
  )
  const upAttention = Array.from({ length: levels }, (_, i) =>
    w.has(`up_blocks.${i}.attentions.0.proj_in.weight`),
  )
  const midAttention = w.has('mid_block.attentions.0.proj_in.weight')
  const attnPrefix = midAttention
    ? 'mid_block.attentions.0'
    : `down_blocks.${downAttention.indexOf(true)}.attentions.0`
  const toK = `${attnPrefix}.transformer_blocks.0.attn2.to_k.weight`
  const crossAttentionDim = w.has(toK) ? (w.shape(toK)[1] as number) : 0
  const lin1 = need(w, 'time_embedding.linear_1.weight')
  const heads = opts.heads ?? 8
  for (const c of blockOutChannels)
    if (c % heads !== 0) throw new UnetConfigError(`UNet width ${c} is not divisible by ${heads} heads`)
  return {
    inChannels: convIn[1] as number,
    outChannels: convOut[0] as number,
    blockOutChannels,
    layersPerBlock,
    downAttention,
    upAttention,
    midAttention,
    crossAttentionDim,
    timeProjDim: lin1[1] as number,
    timeEmbedDim: lin1[0] as number,
    heads,
  }
}
