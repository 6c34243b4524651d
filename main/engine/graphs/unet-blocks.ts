import type { GraphBuilder } from '../../model-formats/onnx/builder'
import { countTransformerBlocks } from './unet-config'
import type { Consts, LayerOptions } from './unet-layers'
import { attention, conv, gemm, groupNorm, layerNorm, linear, silu, weightAs } from './unet-layers'
import type { WeightProvider } from './weights'

/** What every block builder needs: the graph, weights, shared constants and the layer choices. */
export interface BlockContext {
  g: GraphBuilder
  w: WeightProvider
  c: Consts
  opts: LayerOptions
  heads: number
  /** SiLU(time embedding), [T, timeEmbedDim] with T = 1 or B. */
  tembAct: string
  /** encoder_hidden_states, [B, L, ctx]. */
  context: string
}

const RESNET_EPS = 1e-5
const TRANSFORMER_GN_EPS = 1e-6

function channelsOf(w: WeightProvider, name: string, axis = 0): number {
  return w.shape(name)[axis] as number
}

/** diffusers ResnetBlock2D (default "default" time norm, output scale 1). */
export function resnet(ctx: BlockContext, prefix: string, x: string): string {
  const { g, w, c, opts } = ctx
  const cin = channelsOf(w, `${prefix}.conv1.weight`, 1)
  const cout = channelsOf(w, `${prefix}.conv1.weight`)
  let h = groupNorm(g, w, c, `${prefix}.norm1`, x, cin, RESNET_EPS, opts.groupNorm)
  h = conv(g, w, `${prefix}.conv1`, silu(g, h))
  const t = gemm(g, w, `${prefix}.time_emb_proj`, ctx.tembAct)
  h = g.op('Add', [h, g.op('Unsqueeze', [t, c.int64([2, 3])])])
  h = groupNorm(g, w, c, `${prefix}.norm2`, h, cout, RESNET_EPS, opts.groupNorm)
  h = conv(g, w, `${prefix}.conv2`, silu(g, h))
  const skip = w.has(`${prefix}.conv_shortcut.weight`) ? conv(g, w, `${prefix}.conv_shortcut`, x) : x
  return g.op('Add', [skip, h])
}

function attn(ctx: BlockContext, prefix: string, x: string, kv: string, channels: number): string {
  const { g, c, w } = ctx
  const q = linear(g, w, `${prefix}.to_q`, x)
  const k = linear(g, w, `${prefix}.to_k`, kv)
  const v = linear(g, w, `${prefix}.to_v`, kv)
  const o = attention(g, c, q, k, v, ctx.heads, channels, ctx.opts.attention)
  return linear(g, w, `${prefix}.to_out.0`, o)
}

/**
 * GEGLU feed-forward: hidden * gelu(gate) with [hidden, gate] = chunk(x W0^T + b0, 2), projected back. The two
 * halves run as two MatMuls on slices of the (constant) weight instead of one MatMul and a Split: it saves
 * copying the [B, S, 8C] product (bench/unet-parts.ts: 0.51 s vs 0.83 s at S=4096, C=320).
 */
function feedForward(ctx: BlockContext, prefix: string, x: string): string {
  const { g, w, c } = ctx
  if (ctx.opts.geglu === 'split') {
    const proj = linear(g, w, `${prefix}.net.0.proj`, x)
    const [hidden, gate] = g.opMulti('Split', [proj], { axis: -1, num_outputs: 2 }, { outputs: 2 })
    return linear(g, w, `${prefix}.net.2`, g.op('Mul', [hidden as string, g.op('Gelu', [gate as string])]))
  }
  const inner = (w.shape(`${prefix}.net.0.proj.weight`)[0] as number) / 2
  const wT = w.getLinearT(g, `${prefix}.net.0.proj.weight`)
  const b = w.get(g, `${prefix}.net.0.proj.bias`)
  const half = (i: number): string => {
    const start = c.int64([i * inner])
    const end = c.int64([(i + 1) * inner])
    const wi = g.op('Slice', [wT, start, end, c.int64([1])])
    const bi = g.op('Slice', [b, start, end, c.int64([0])])
    return g.op('Add', [g.op('MatMul', [x, wi]), bi])
  }
  const hidden = half(0)
  const gate = half(1)
  return linear(g, w, `${prefix}.net.2`, g.op('Mul', [hidden, g.op('Gelu', [gate])]))
}

/** diffusers BasicTransformerBlock: self-attn, cross-attn, GEGLU FF, each pre-LayerNorm with residual. */
function transformerBlock(ctx: BlockContext, prefix: string, x: string, channels: number): string {
  const { g, w } = ctx
  const n1 = layerNorm(g, w, `${prefix}.norm1`, x)
  let h = g.op('Add', [attn(ctx, `${prefix}.attn1`, n1, n1, channels), x])
  const n2 = layerNorm(g, w, `${prefix}.norm2`, h)
  h = g.op('Add', [attn(ctx, `${prefix}.attn2`, n2, ctx.context, channels), h])
  const n3 = layerNorm(g, w, `${prefix}.norm3`, h)
  return g.op('Add', [feedForward(ctx, `${prefix}.ff`, n3), h])
}

/**
 * diffusers Transformer2DModel (SD1: 1x1 conv proj_in/proj_out; SD2-style Linear projections also work).
 * The 1x1 convs run as W @ x on [B, C, HW], so neither weight needs a transposed copy.
 */
export function spatialTransformer(ctx: BlockContext, prefix: string, x: string): string {
  const { g, w, c, opts } = ctx
  const channels = channelsOf(w, `${prefix}.norm.weight`)
  const depth = countTransformerBlocks(w, prefix)
  const h0 = groupNorm(g, w, c, `${prefix}.norm`, x, channels, TRANSFORMER_GN_EPS, opts.groupNorm)
  const flat = g.op('Reshape', [h0, c.int64([0, channels, -1])])
  const projIn = g.op('Add', [
    g.op('MatMul', [weightAs(g, w, c, `${prefix}.proj_in.weight`, [channels, channels]), flat]),
    weightAs(g, w, c, `${prefix}.proj_in.bias`, [channels, 1]),
  ])
  let tokens = g.op('Transpose', [projIn], { perm: [0, 2, 1] })
  for (let k = 0; k < depth; k++)
    tokens = transformerBlock(ctx, `${prefix}.transformer_blocks.${k}`, tokens, channels)
  const back = g.op('Transpose', [tokens], { perm: [0, 2, 1] })
  const projOut = g.op('Add', [
    g.op('MatMul', [weightAs(g, w, c, `${prefix}.proj_out.weight`, [channels, channels]), back]),
    weightAs(g, w, c, `${prefix}.proj_out.bias`, [channels, 1]),
  ])
  return g.op('Add', [g.op('Reshape', [projOut, g.op('Shape', [x])]), x])
}

/** Downsample2D: 3x3 conv, stride 2, pad 1 (odd sizes round up: 15 -> 8). */
export function downsample(ctx: BlockContext, prefix: string, x: string): string {
  return conv(ctx.g, ctx.w, `${prefix}.conv`, x, { stride: 2, pad: 1 })
}

/**
 * Upsample2D: nearest-neighbour resize to the skip connection's H, W (x2 for even sizes; diffusers'
 * upsample_size for odd ones), then a 3x3 conv.
 */
export function upsample(ctx: BlockContext, prefix: string, x: string, sizeLike: string): string {
  const { g } = ctx
  const sizes = g.op(
    'Concat',
    [g.op('Shape', [x], { start: 0, end: 2 }), g.op('Shape', [sizeLike], { start: 2 })],
    {
      axis: 0,
    },
  )
  const up = g.op('Resize', [x, '', '', sizes], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  })
  return conv(g, ctx.w, `${prefix}.conv`, up)
}
