import { GraphBuilder } from '../../model-formats/onnx/builder'
import { conv2d, groupNorm, linear, silu } from './nn'
import type { WeightProvider } from './weights'

/**
 * diffusers AutoencoderKL (SD 1.x/2.x/XL VAEs) in canonical naming (`encoder.down_blocks.0.resnets.0.conv1`,
 * `decoder.mid_block.attentions.0.to_q`, `quant_conv`, ...). Every number except the GroupNorm group count
 * comes from the weights; H and W are dynamic (multiples of 8 for the usual 3 downsamplings).
 */

export interface VaeConfig {
  blockOutChannels: number[]
  /** resnets per encoder block (the decoder has one more). */
  layersPerBlock: number
  decoderLayersPerBlock: number
  latentChannels: number
  inChannels: number
  outChannels: number
  groups: number
  eps: number
  hasQuantConv: boolean
  hasPostQuantConv: boolean
}

function countIndexed(w: WeightProvider, prefix: string, suffix: string): number {
  let n = 0
  while (w.has(`${prefix}.${n}.${suffix}`)) n++
  return n
}

export function vaeConfig(w: WeightProvider, overrides: Partial<VaeConfig> = {}): VaeConfig {
  if (!w.has('decoder.conv_in.weight') && !w.has('encoder.conv_in.weight'))
    throw new Error('not a VAE: neither encoder.conv_in nor decoder.conv_in is present')
  const side = w.has('encoder.conv_in.weight') ? 'encoder' : 'decoder'
  const blocks =
    side === 'encoder'
      ? countIndexed(w, 'encoder.down_blocks', 'resnets.0.conv1.weight')
      : countIndexed(w, 'decoder.up_blocks', 'resnets.0.conv1.weight')
  const blockOutChannels: number[] = []
  for (let i = 0; i < blocks; i++) {
    const name =
      side === 'encoder'
        ? `encoder.down_blocks.${i}.resnets.0.conv1.weight`
        : `decoder.up_blocks.${blocks - 1 - i}.resnets.0.conv2.weight`
    blockOutChannels.push(w.shape(name)[0] ?? 0)
  }
  const layersPerBlock = w.has('encoder.conv_in.weight')
    ? countIndexed(w, 'encoder.down_blocks.0.resnets', 'conv1.weight')
    : countIndexed(w, 'decoder.up_blocks.0.resnets', 'conv1.weight') - 1
  const decoderLayersPerBlock = w.has('decoder.conv_in.weight')
    ? countIndexed(w, 'decoder.up_blocks.0.resnets', 'conv1.weight')
    : layersPerBlock + 1
  const latentChannels = w.has('decoder.conv_in.weight')
    ? (w.shape('decoder.conv_in.weight')[1] ?? 0)
    : (w.shape('encoder.conv_out.weight')[0] ?? 0) / 2
  return {
    blockOutChannels,
    layersPerBlock,
    decoderLayersPerBlock,
    latentChannels,
    inChannels: w.has('encoder.conv_in.weight') ? (w.shape('encoder.conv_in.weight')[1] ?? 3) : 3,
    outChannels: w.has('decoder.conv_out.weight') ? (w.shape('decoder.conv_out.weight')[0] ?? 3) : 3,
    groups: 32,
    eps: 1e-6,
    hasQuantConv: w.has('quant_conv.weight'),
    hasPostQuantConv: w.has('post_quant_conv.weight'),
    ...overrides,
  }
}

function resnet(g: GraphBuilder, w: WeightProvider, p: string, x: string, cfg: VaeConfig): string {
  let h = silu(g, groupNorm(g, w, `${p}.norm1`, x, cfg.groups, cfg.eps))
  h = conv2d(g, w, `${p}.conv1`, h)
  h = silu(g, groupNorm(g, w, `${p}.norm2`, h, cfg.groups, cfg.eps))
  h = conv2d(g, w, `${p}.conv2`, h)
  const skip = w.has(`${p}.conv_shortcut.weight`) ? conv2d(g, w, `${p}.conv_shortcut`, x) : x
  return g.op('Add', [skip, h])
}

/** Single-head self-attention over the H*W positions, with GroupNorm in front and a residual. */
function midAttention(g: GraphBuilder, w: WeightProvider, p: string, x: string, cfg: VaeConfig): string {
  const n = groupNorm(g, w, `${p}.group_norm`, x, cfg.groups, cfg.eps)
  const seq = g.op('Transpose', [g.op('Reshape', [n, g.constInt64([0, 0, -1])])], { perm: [0, 2, 1] })
  const q = linear(g, w, `${p}.to_q`, seq)
  const k = linear(g, w, `${p}.to_k`, seq)
  const v = linear(g, w, `${p}.to_v`, seq)
  const a = g.op('MultiHeadAttention', [q, k, v], { num_heads: 1 }, { domain: 'com.microsoft' })
  const o = linear(g, w, `${p}.to_out.0`, a)
  const back = g.op('Reshape', [g.op('Transpose', [o], { perm: [0, 2, 1] }), g.op('Shape', [x])])
  return g.op('Add', [back, x])
}

function midBlock(g: GraphBuilder, w: WeightProvider, p: string, x: string, cfg: VaeConfig): string {
  let h = resnet(g, w, `${p}.resnets.0`, x, cfg)
  h = midAttention(g, w, `${p}.attentions.0`, h, cfg)
  return resnet(g, w, `${p}.resnets.1`, h, cfg)
}

/** Encoder trunk: image -> moments (2 x latent channels), through quant_conv when present. */
function encoder(g: GraphBuilder, w: WeightProvider, x: string, cfg: VaeConfig): string {
  let h = conv2d(g, w, 'encoder.conv_in', x)
  const n = cfg.blockOutChannels.length
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < cfg.layersPerBlock; j++)
      h = resnet(g, w, `encoder.down_blocks.${i}.resnets.${j}`, h, cfg)
    if (w.has(`encoder.down_blocks.${i}.downsamplers.0.conv.weight`)) {
      // diffusers Downsample2D with padding=0: pad right/bottom by one, then a stride-2 3x3 conv.
      h = g.op(
        'Conv',
        [
          h,
          w.get(g, `encoder.down_blocks.${i}.downsamplers.0.conv.weight`),
          w.get(g, `encoder.down_blocks.${i}.downsamplers.0.conv.bias`),
        ],
        { kernel_shape: [3, 3], pads: [0, 0, 1, 1], strides: [2, 2] },
      )
    }
  }
  h = midBlock(g, w, 'encoder.mid_block', h, cfg)
  h = silu(g, groupNorm(g, w, 'encoder.conv_norm_out', h, cfg.groups, cfg.eps))
  h = conv2d(g, w, 'encoder.conv_out', h)
  return cfg.hasQuantConv ? conv2d(g, w, 'quant_conv', h) : h
}

/**
 * VAE encoder graph. Input `image` float [batch, 3, H, W] in [-1, 1]. Outputs `moments`, `mean`, `logvar`
 * (clamped to [-30, 20]) and `std` = exp(logvar / 2) (diffusers DiagonalGaussianDistribution).
 */
export function buildVaeEncoder(w: WeightProvider, opts: { config?: Partial<VaeConfig> } = {}): GraphBuilder {
  const cfg = vaeConfig(w, opts.config)
  const g = new GraphBuilder('vae_encoder')
  const x = g.input('image', 'float32', ['batch', cfg.inChannels, 'height', 'width'])
  const moments = encoder(g, w, x, cfg)
  const lc = cfg.latentChannels
  const [mean, rawLogvar] = g.opMulti('Split', [moments, g.constInt64([lc, lc])], { axis: 1 }, { outputs: 2 })
  const logvar = g.op('Clip', [rawLogvar as string, g.constFloat([-30], []), g.constFloat([20], [])])
  const std = g.op('Exp', [g.op('Mul', [logvar, g.constFloat([0.5], [])])])
  const dims = ['batch', lc, 'latent_height', 'latent_width']
  g.output(moments, 'float32', ['batch', 2 * lc, 'latent_height', 'latent_width'], 'moments')
  g.output(mean as string, 'float32', dims, 'mean')
  g.output(logvar, 'float32', dims, 'logvar')
  g.output(std, 'float32', dims, 'std')
  return g
}

/**
 * VAE decoder graph. Input `latent_sample` float [batch, latent channels, h, w], ALREADY divided by the
 * scaling factor. Output `sample` [batch, 3, 8h, 8w], raw (not clamped).
 */
export function buildVaeDecoder(w: WeightProvider, opts: { config?: Partial<VaeConfig> } = {}): GraphBuilder {
  const cfg = vaeConfig(w, opts.config)
  const g = new GraphBuilder('vae_decoder')
  const z = g.input('latent_sample', 'float32', [
    'batch',
    cfg.latentChannels,
    'latent_height',
    'latent_width',
  ])
  let h = cfg.hasPostQuantConv ? conv2d(g, w, 'post_quant_conv', z) : z
  h = conv2d(g, w, 'decoder.conv_in', h)
  h = midBlock(g, w, 'decoder.mid_block', h, cfg)
  const n = cfg.blockOutChannels.length
  const scales = g.constFloat([1, 1, 2, 2], [4], 'up_scales')
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < cfg.decoderLayersPerBlock; j++)
      h = resnet(g, w, `decoder.up_blocks.${i}.resnets.${j}`, h, cfg)
    if (w.has(`decoder.up_blocks.${i}.upsamplers.0.conv.weight`)) {
      h = g.op('Resize', [h, '', scales], {
        mode: 'nearest',
        coordinate_transformation_mode: 'asymmetric',
        nearest_mode: 'floor',
      })
      h = conv2d(g, w, `decoder.up_blocks.${i}.upsamplers.0.conv`, h)
    }
  }
  h = silu(g, groupNorm(g, w, 'decoder.conv_norm_out', h, cfg.groups, cfg.eps))
  h = conv2d(g, w, 'decoder.conv_out', h)
  g.output(h, 'float32', ['batch', cfg.outChannels, 'height', 'width'], 'sample')
  return g
}
