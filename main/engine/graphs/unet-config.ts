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
  /**
   * SD 2.x / SDXL rule: a fixed head width (64), heads = channels / headDim; overrides `heads`.
   * `headsPerLevel` (a diffusers config's counts per level) overrides both.
   */
  headDim?: number
  headsPerLevel?: number[]
  /**
   * SDXL added conditioning (`add_embedding`, SGM `label_emb`): linear_1 takes the pooled text embedding
   * (pooledDim) followed by the sinusoidal embeddings (timeEmbedDim each) of the six time ids.
   */
  addition?: { inDim: number; pooledDim: number; timeEmbedDim: number; timeIds: number }
}

export interface UnetConfigOptions {
  /** Heads in every transformer (SD 1.x: 8, the default without add_embedding). */
  heads?: number
  /** Heads = channels / headDim (the default, 64, for UNets with add_embedding: SDXL). */
  headDim?: number
  /** Heads per level (diffusers `attention_head_dim` / `num_attention_heads` lists). */
  headsPerLevel?: number[]
  /** SDXL: width of each time id's sinusoidal embedding (addition_time_embed_dim; SDXL base: 256). */
  additionTimeEmbedDim?: number
}

/** Attention heads of a transformer `channels` wide under the config's rule. */
export function attentionHeads(config: UnetConfig, channels: number): number {
  const level = config.blockOutChannels.indexOf(channels)
  const listed = level >= 0 ? config.headsPerLevel?.[level] : undefined
  if (listed !== undefined) return listed
  if (config.headDim !== undefined) return Math.max(1, Math.floor(channels / config.headDim))
  return config.heads
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

/** SDXL time ids: original size (h, w), crop top-left (y, x), target size (h, w). */
export const SDXL_TIME_IDS = 6

export function inferUnetConfig(w: WeightProvider, opts: UnetConfigOptions = {}): UnetConfig {
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
  const addIn = w.has('add_embedding.linear_1.weight')
    ? w.shape('add_embedding.linear_1.weight')[1]
    : undefined
  let addition: UnetConfig['addition']
  if (addIn !== undefined) {
    const d = opts.additionTimeEmbedDim
    if (d === undefined)
      throw new UnetConfigError(
        'UNet has SDXL added conditioning (add_embedding) but the time-id embedding width is unknown ' +
          '(it follows from the second text encoder: (add_embedding input - projection width) / 6)',
      )
    const pooledDim = addIn - SDXL_TIME_IDS * d
    if (pooledDim <= 0 || d % 2 !== 0)
      throw new UnetConfigError(
        `UNet add_embedding takes ${addIn} values: no room for 6 time ids of width ${d} and a pooled text embedding`,
      )
    addition = { inDim: addIn, pooledDim, timeEmbedDim: d, timeIds: SDXL_TIME_IDS }
  }
  const headDim = opts.headDim ?? (addition && opts.heads === undefined ? 64 : undefined)
  const perLevel = opts.headsPerLevel
  if (perLevel && perLevel.length !== blockOutChannels.length)
    throw new UnetConfigError(
      `UNet has ${blockOutChannels.length} levels but ${perLevel.length} head counts were given`,
    )
  blockOutChannels.forEach((c, i) => {
    const n = perLevel?.[i] ?? (headDim !== undefined ? Math.max(1, Math.floor(c / headDim)) : heads)
    const used = downAttention[i] || upAttention[blockOutChannels.length - 1 - i]
    if (used && c % n !== 0) throw new UnetConfigError(`UNet width ${c} is not divisible by ${n} heads`)
  })
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
    ...(headDim !== undefined ? { headDim } : {}),
    ...(perLevel ? { headsPerLevel: [...perLevel] } : {}),
    ...(addition ? { addition } : {}),
  }
}
