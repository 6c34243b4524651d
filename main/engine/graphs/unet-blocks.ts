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
  /** Heads of a transformer `channels` wide (SD 2.x / SDXL: channels / 64); `heads` when absent. */
  headsFor?: (channels: number) => number
  /** SiLU(time embedding), [T, timeEmbedDim] with T = 1 or B. */
  tembAct: string
  /** encoder_hidden_states, [B, L, ctx], and the same as [B*L, ctx]. */
  context: string
  context2d: string
  /** Extra cross-attention K/V (IP-Adapter image tokens), see CrossAttentionHook. */
  crossAttention?: CrossAttentionHook
}

/**
 * Optional hook for extra cross-attention (IP-Adapter's decoupled image attention). `textContext` picks the
 * tokens the ordinary cross-attention sees out of encoder_hidden_states (called once); `extra` is called for
 * every attention layer with its prefix and queries [B, S, C] and may return a [B, S, C] value added to the
 * attention output before to_out (`h + scale * h_ip`).
 */
export interface CrossAttentionHook {
  textContext?(g: GraphBuilder, c: Consts, context: string): string
  extra(ctx: BlockContext, prefix: string, q: string, channels: number, heads: number): string | undefined
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

/**
 * How the transformer's tokens flow: `matmul` keeps them [B, S, C] and multiplies by transposed weights
 * (MatMul + Add); `gemm` keeps them [B*S, C] so every Linear is one Gemm (transB, bias inside) on the weight
 * as stored, and only the attention sees [B, S, C] (Reshapes are free). `gemm` needs no transposed weight
 * copies, which ORT would otherwise build at session creation.
 */
interface Tokens {
  lin(prefix: string, x: string): string
  /** A token value as [B, S, C] for attention, and back. */
  to3d(x: string, shape3: string): string
  from3d(x: string, channels: number): string
}

function tokenForm(ctx: BlockContext): Tokens {
  const { g, w, c } = ctx
  if (ctx.opts.linear === 'matmul')
    return { lin: (p, x) => linear(g, w, p, x), to3d: (x) => x, from3d: (x) => x }
  return {
    lin: (p, x) => gemm(g, w, p, x),
    to3d: (x, shape3) => g.op('Reshape', [x, shape3]),
    from3d: (x, channels) => g.op('Reshape', [x, c.int64([-1, channels])]),
  }
}

function attn(
  ctx: BlockContext,
  t: Tokens,
  prefix: string,
  x: string,
  kv: string,
  shapes: { q: string; kv: string },
  channels: number,
): string {
  const { g, c } = ctx
  const q = t.to3d(t.lin(`${prefix}.to_q`, x), shapes.q)
  const k = t.to3d(t.lin(`${prefix}.to_k`, kv), shapes.kv)
  const v = t.to3d(t.lin(`${prefix}.to_v`, kv), shapes.kv)
  const heads = ctx.headsFor?.(channels) ?? ctx.heads
  const a = attention(g, c, q, k, v, heads, channels, ctx.opts.attention)
  const extra = ctx.crossAttention?.extra(ctx, prefix, q, channels, heads)
  const o = extra ? g.op('Add', [a, extra]) : a
  return t.lin(`${prefix}.to_out.0`, t.from3d(o, channels))
}

/**
 * GEGLU feed-forward: hidden * gelu(gate) with [hidden, gate] = chunk(x W0^T + b0, 2), projected back. By
 * default the two halves are two products with slices of the (constant) weight rather than one product and
 * a Split: same CPU time (bench/unet-parts.ts, 1 thread: 0.258 vs 0.264 CPU s at S=4096, C=320) without
 * copying the [B, S, 8C] result.
 */
function feedForward(ctx: BlockContext, t: Tokens, prefix: string, x: string, shape3: string): string {
  const { g, w, c } = ctx
  const p0 = `${prefix}.net.0.proj`
  if (ctx.opts.geglu === 'conv') return feedForwardConv(ctx, t, prefix, x, shape3)
  let hidden: string
  let gate: string
  if (ctx.opts.geglu === 'split') {
    const [h, gt] = g.opMulti('Split', [t.lin(p0, x)], { axis: -1, num_outputs: 2 }, { outputs: 2 })
    hidden = h as string
    gate = gt as string
  } else {
    const inner = (w.shape(`${p0}.weight`)[0] as number) / 2
    const gemmForm = ctx.opts.linear === 'gemm'
    const weight = gemmForm ? w.get(g, `${p0}.weight`) : w.getLinearT(g, `${p0}.weight`)
    const bias = w.get(g, `${p0}.bias`)
    const half = (i: number): string => {
      const start = c.int64([i * inner])
      const end = c.int64([(i + 1) * inner])
      const wi = g.op('Slice', [weight, start, end, c.int64([gemmForm ? 0 : 1])])
      const bi = g.op('Slice', [bias, start, end, c.int64([0])])
      return gemmForm ? g.op('Gemm', [x, wi, bi], { transB: 1 }) : g.op('Add', [g.op('MatMul', [x, wi]), bi])
    }
    hidden = half(0)
    gate = half(1)
  }
  return t.lin(`${prefix}.net.2`, g.op('Mul', [hidden, g.op('Gelu', [gate])]))
}

/**
 * The GEGLU feed-forward as three 1x1 convolutions on [B, C, S, 1]: ORT runs those with its blocked (NCHWc)
 * conv kernels, which reach a higher share of the FMA peak than its GEMM at these shapes
 * (bench/unet-parts.ts), at the price of one transpose in and one out (of C-wide tensors only).
 */
function feedForwardConv(ctx: BlockContext, t: Tokens, prefix: string, x: string, shape3: string): string {
  const { g, w, c } = ctx
  const p0 = `${prefix}.net.0.proj`
  const p2 = `${prefix}.net.2`
  const [rows = 0, cin = 0] = w.shape(`${p0}.weight`)
  const inner = rows / 2
  const image = g.op('Unsqueeze', [g.op('Transpose', [t.to3d(x, shape3)], { perm: [0, 2, 1] }), c.int64([3])])
  const w0 = g.op('Reshape', [w.get(g, `${p0}.weight`), c.int64([rows, cin, 1, 1])])
  const b0 = w.get(g, `${p0}.bias`)
  const half = (i: number): string => {
    const start = c.int64([i * inner])
    const end = c.int64([(i + 1) * inner])
    const wi = g.op('Slice', [w0, start, end, c.int64([0])])
    const bi = g.op('Slice', [b0, start, end, c.int64([0])])
    return g.op('Conv', [image, wi, bi], { kernel_shape: [1, 1] })
  }
  const prod = g.op('Mul', [half(0), g.op('Gelu', [half(1)])])
  const w2 = g.op('Reshape', [w.get(g, `${p2}.weight`), c.int64([cin, inner, 1, 1])])
  const y = g.op('Conv', [prod, w2, w.get(g, `${p2}.bias`)], { kernel_shape: [1, 1] })
  const tokens = g.op('Transpose', [g.op('Squeeze', [y, c.int64([3])])], { perm: [0, 2, 1] })
  return t.from3d(tokens, cin)
}

/** diffusers BasicTransformerBlock: self-attn, cross-attn, GEGLU FF, each pre-LayerNorm with residual. */
function transformerBlock(
  ctx: BlockContext,
  t: Tokens,
  prefix: string,
  x: string,
  shapes: { self: string; cross: string; context: string },
  channels: number,
): string {
  const { g, w } = ctx
  const n1 = layerNorm(g, w, `${prefix}.norm1`, x)
  const selfShapes = { q: shapes.self, kv: shapes.self }
  let h = g.op('Add', [attn(ctx, t, `${prefix}.attn1`, n1, n1, selfShapes, channels), x])
  const n2 = layerNorm(g, w, `${prefix}.norm2`, h)
  const crossShapes = { q: shapes.self, kv: shapes.cross }
  h = g.op('Add', [attn(ctx, t, `${prefix}.attn2`, n2, shapes.context, crossShapes, channels), h])
  const n3 = layerNorm(g, w, `${prefix}.norm3`, h)
  return g.op('Add', [feedForward(ctx, t, `${prefix}.ff`, n3, shapes.self), h])
}

/** [B, -1, channels] for the batch size of `like` (a Reshape target). */
function shape3(ctx: BlockContext, like: string, channels: number): string {
  const { g, c } = ctx
  return g.op('Concat', [g.op('Shape', [like], { start: 0, end: 1 }), c.int64([-1, channels])], { axis: 0 })
}

/**
 * diffusers Transformer2DModel (SD1: 1x1 conv proj_in/proj_out; SD2-style Linear projections also work).
 * The 1x1 convs run as W @ x on [B, C, HW], so neither weight needs a transposed copy.
 */
export function spatialTransformer(ctx: BlockContext, prefix: string, x: string): string {
  const { g, w, c, opts } = ctx
  const t = tokenForm(ctx)
  const channels = channelsOf(w, `${prefix}.norm.weight`)
  const depth = countTransformerBlocks(w, prefix)
  const h0 = groupNorm(g, w, c, `${prefix}.norm`, x, channels, TRANSFORMER_GN_EPS, opts.groupNorm)
  const flat = g.op('Reshape', [h0, c.int64([0, channels, -1])])
  const projIn = g.op('Add', [
    g.op('MatMul', [weightAs(g, w, c, `${prefix}.proj_in.weight`, [channels, channels]), flat]),
    weightAs(g, w, c, `${prefix}.proj_in.bias`, [channels, 1]),
  ])
  const shapes = {
    self: shape3(ctx, x, channels),
    cross: shape3(ctx, ctx.context, channels),
    context: opts.linear === 'gemm' ? ctx.context2d : ctx.context,
  }
  let tokens = t.from3d(g.op('Transpose', [projIn], { perm: [0, 2, 1] }), channels)
  for (let k = 0; k < depth; k++)
    tokens = transformerBlock(ctx, t, `${prefix}.transformer_blocks.${k}`, tokens, shapes, channels)
  const back = g.op('Transpose', [t.to3d(tokens, shapes.self)], { perm: [0, 2, 1] })
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
