import { GraphBuilder } from '../../model-formats/onnx/builder'
import type { BlockContext, CrossAttentionHook } from './unet-blocks'
import { downsample, resnet, spatialTransformer, upsample } from './unet-blocks'
import type { UnetConfig } from './unet-config'
import { attentionHeads, inferUnetConfig } from './unet-config'
import type { AttentionImpl, GegluImpl, GroupNormImpl, LinearImpl } from './unet-layers'
import { Consts, conv, gemm, groupNorm, silu } from './unet-layers'
import type { WeightProvider } from './weights'

/**
 * diffusers UNet2DConditionModel (SD 1.x topology, any widths) as an ONNX graph.
 *
 * Inputs:
 * - `sample` float32 [B, Cin, H, W] (Cin 4, or 9 for inpainting models; any H, W: odd sizes follow
 *   diffusers' upsample_size path).
 * - `timestep` float32 [T] with T = 1 (one timestep broadcast over the batch, what every sampler passes)
 *   or T = B (one per sample). Fractional values are kept.
 * - `encoder_hidden_states` float32 [B, L, ctx]; L is dynamic (77 per prompt chunk).
 *
 * Output: `eps` float32 [B, Cout, H, W]. With `debug`, also `debug_time_proj`, `debug_time_embedding`,
 * `debug_conv_in`, `debug_down_block_i`, `debug_mid_block`, `debug_up_block_i` (the oracle's trace names).
 */

export interface UnetBuildOptions {
  debug?: boolean
  /** Attention heads (SD 1.x: 8 everywhere). */
  heads?: number
  /** Heads = channels / headDim (SD 2.x / SDXL: 64; the default when the UNet has add_embedding). */
  headDim?: number
  /** Heads per level (a diffusers config's list); overrides heads and headDim. */
  headsPerLevel?: number[]
  /** SDXL: sinusoidal width of each time id (addition_time_embed_dim); required with add_embedding. */
  additionTimeEmbedDim?: number
  /**
   * Graph forms. Defaults, measured in CPU seconds on one thread (bench/unet-parts.ts, bench/unet.ts): fused
   * MultiHeadAttention (0.55 vs 0.68 CPU s unfused for the 4,096-token self-attention), GroupNorm as
   * Reshape/InstanceNormalization/Reshape (40 % less than opset-21 GroupNormalization, which ORT expands into
   * a function), sliced GEGLU and MatMul linears. `geglu: 'conv'` and `linear: 'gemm'` are about as fast
   * (within 2 %) and need no transposed weight copies, but the LoRA branch grafting does not follow them yet.
   */
  groupNorm?: GroupNormImpl
  attention?: AttentionImpl
  geglu?: GegluImpl
  linear?: LinearImpl
  /** Extra cross-attention K/V per attn2 (IP-Adapter image tokens + scale input). */
  crossAttention?: CrossAttentionHook
}

export const UNET_INPUTS = ['sample', 'timestep', 'encoder_hidden_states'] as const
/** Extra UNet inputs of SDXL models (added conditioning). */
export const UNET_ADDED_INPUTS = ['text_embeds', 'time_ids'] as const

/**
 * Sinusoidal frequencies exp(-ln(10000) * i / half), computed in float32 steps as diffusers'
 * get_timestep_embedding does (freq_shift 0), so the products with t match it bit for bit.
 */
export function timestepFrequencies(half: number): Float32Array {
  const f = Math.fround
  const out = new Float32Array(half)
  const k = f(-Math.log(10000))
  for (let i = 0; i < half; i++) out[i] = f(Math.exp(f(f(k * i) / half)))
  return out
}

function timeProjection(g: GraphBuilder, c: Consts, t: string, dim: number): string {
  const half = dim / 2
  const freqs = g.constFloat(timestepFrequencies(half), [1, half], 'time_freqs')
  const args = g.op('Mul', [g.op('Unsqueeze', [t, c.int64([1])]), freqs])
  // sin/cos of arguments up to ~1000 rad: evaluate in float64 and round once, so the result is the
  // correctly rounded float32 value whatever the provider's float32 range reduction does.
  const args64 = g.op('Cast', [args], { to: 11 })
  const cos = g.op('Cast', [g.op('Cos', [args64])], { to: 1 })
  const sin = g.op('Cast', [g.op('Sin', [args64])], { to: 1 })
  // flip_sin_to_cos=True: [cos, sin]
  return g.op('Concat', [cos, sin], { axis: 1 })
}

/**
 * SDXL added conditioning (diffusers addition_embed_type "text_time"): inputs `text_embeds` [B, pooled] and
 * `time_ids` [B, 6]; each time id gets the timestep's sinusoidal embedding (width timeEmbedDim), flattened
 * after the pooled embedding into add_embedding (linear, SiLU, linear). Returns [B, time embedding width].
 */
function addedEmbedding(
  g: GraphBuilder,
  c: Consts,
  w: WeightProvider,
  a: NonNullable<UnetConfig['addition']>,
  debug: (name: string, value: string, dims: (number | string)[]) => void,
): string {
  const textEmbeds = g.input('text_embeds', 'float32', ['batch', a.pooledDim])
  const timeIds = g.input('time_ids', 'float32', ['batch', a.timeIds])
  const proj = timeProjection(g, c, g.op('Reshape', [timeIds, c.int64([-1])]), a.timeEmbedDim)
  debug('add_time_proj', proj, ['batch_time_ids', a.timeEmbedDim])
  const flat = g.op('Reshape', [proj, c.int64([-1, a.timeIds * a.timeEmbedDim])])
  const x = g.op('Concat', [textEmbeds, flat], { axis: 1 })
  const aug = gemm(g, w, 'add_embedding.linear_2', silu(g, gemm(g, w, 'add_embedding.linear_1', x)))
  debug('add_embedding', aug, ['batch', w.shape('add_embedding.linear_2.weight')[0] ?? 0])
  return aug
}

export function buildUnet(
  w: WeightProvider,
  opts: UnetBuildOptions = {},
): { graph: GraphBuilder; config: UnetConfig } {
  const config = inferUnetConfig(w, {
    heads: opts.heads,
    headDim: opts.headDim,
    headsPerLevel: opts.headsPerLevel,
    additionTimeEmbedDim: opts.additionTimeEmbedDim,
  })
  const g = new GraphBuilder('unet')
  const c = new Consts(g)
  const debug = (name: string, value: string, dims: (number | string)[]): void => {
    if (opts.debug) g.output(value, 'float32', dims, `debug_${name}`)
  }

  const sample = g.input('sample', 'float32', ['batch', config.inChannels, 'height', 'width'])
  const timestep = g.input('timestep', 'float32', ['timesteps'])
  const ehs = g.input('encoder_hidden_states', 'float32', ['batch', 'sequence', config.crossAttentionDim])
  const context = opts.crossAttention?.textContext?.(g, c, ehs) ?? ehs

  const tproj = timeProjection(g, c, timestep, config.timeProjDim)
  debug('time_proj', tproj, ['timesteps', config.timeProjDim])
  let temb = gemm(g, w, 'time_embedding.linear_2', silu(g, gemm(g, w, 'time_embedding.linear_1', tproj)))
  debug('time_embedding', temb, ['timesteps', config.timeEmbedDim])
  if (config.addition) temb = g.op('Add', [temb, addedEmbedding(g, c, w, config.addition, debug)])

  const ctx: BlockContext = {
    g,
    w,
    c,
    heads: config.heads,
    headsFor: (channels) => attentionHeads(config, channels),
    opts: {
      groupNorm: opts.groupNorm ?? 'instance',
      attention: opts.attention ?? 'mha',
      geglu: opts.geglu ?? 'sliced',
      linear: opts.linear ?? 'matmul',
    },
    tembAct: silu(g, temb),
    context,
    context2d: g.op('Reshape', [context, c.int64([-1, config.crossAttentionDim])]),
    crossAttention: opts.crossAttention,
  }
  const levels = config.blockOutChannels.length
  const layers = config.layersPerBlock

  let h = conv(g, w, 'conv_in', sample)
  debug('conv_in', h, ['batch', config.blockOutChannels[0] as number, 'height', 'width'])
  const skips: string[] = [h]
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < layers; j++) {
      h = resnet(ctx, `down_blocks.${i}.resnets.${j}`, h)
      if (config.downAttention[i]) h = spatialTransformer(ctx, `down_blocks.${i}.attentions.${j}`, h)
      skips.push(h)
    }
    if (i < levels - 1) {
      h = downsample(ctx, `down_blocks.${i}.downsamplers.0`, h)
      skips.push(h)
    }
    debug(`down_block_${i}`, h, ['batch', config.blockOutChannels[i] as number, `h_d${i}`, `w_d${i}`])
  }

  h = resnet(ctx, 'mid_block.resnets.0', h)
  if (config.midAttention) h = spatialTransformer(ctx, 'mid_block.attentions.0', h)
  h = resnet(ctx, 'mid_block.resnets.1', h)
  debug('mid_block', h, ['batch', config.blockOutChannels[levels - 1] as number, 'h_mid', 'w_mid'])

  for (let i = 0; i < levels; i++) {
    for (let j = 0; j <= layers; j++) {
      const skip = skips.pop()
      if (skip === undefined) throw new Error('UNet skip connections ran out (inconsistent config)')
      h = resnet(ctx, `up_blocks.${i}.resnets.${j}`, g.op('Concat', [h, skip], { axis: 1 }))
      if (config.upAttention[i]) h = spatialTransformer(ctx, `up_blocks.${i}.attentions.${j}`, h)
    }
    if (i < levels - 1) {
      const next = skips[skips.length - 1]
      if (next === undefined) throw new Error('UNet skip connections ran out (inconsistent config)')
      h = upsample(ctx, `up_blocks.${i}.upsamplers.0`, h, next)
    }
    const width = config.blockOutChannels[levels - 1 - i] as number
    debug(`up_block_${i}`, h, ['batch', width, `h_u${i}`, `w_u${i}`])
  }

  h = groupNorm(g, w, c, 'conv_norm_out', h, config.blockOutChannels[0] as number, 1e-5, ctx.opts.groupNorm)
  const eps = conv(g, w, 'conv_out', silu(g, h))
  g.output(eps, 'float32', ['batch', config.outChannels, 'height', 'width'], 'eps')
  return { graph: g, config }
}
