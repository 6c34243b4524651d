import type { CrossAttentionHook } from '../graphs/unet-blocks'
import { attention } from '../graphs/unet-layers'
import type { WeightProvider } from '../graphs/weights'
import { kvName } from './adapter'
import type { CrossAttentionLayer } from './layers'

/**
 * IP-Adapter's decoupled cross-attention (upstream IPAttnProcessor) as a UNet builder hook:
 *
 *   encoder_hidden_states = [text tokens (L), image tokens (T)]
 *   attn2: h = softmax(q k^T / sqrt(d)) v          with k, v = to_k / to_v(text tokens)
 *          h_ip = softmax(q k_ip^T / sqrt(d)) v_ip  with k_ip, v_ip = to_k_ip / to_v_ip(image tokens), no bias
 *          out = to_out(h + scale * h_ip)
 *
 * `scale` is the scalar graph input `ip_scale`, so changing the image weight is a different feed, never a
 * new graph or session. Self-attention is untouched. With scale 0 the output equals the plain UNet on the
 * text tokens (h + 0 * h_ip adds exact zeros).
 */

export const IP_SCALE_INPUT = 'ip_scale'

export interface IpHookOptions {
  /** Image tokens at the end of encoder_hidden_states. */
  tokens: number
  /** Holds `ip_adapter.N.to_k_ip.weight` / `to_v_ip.weight` for every layer. */
  weights: WeightProvider
  /** The UNet's cross-attention layers (prefix -> processor number N). */
  layers: CrossAttentionLayer[]
  /** Also output `debug_ip_attention_probs_N<n>` = softmax(q k_ip^T / sqrt(d)) as [B*heads, S, T] for these N. */
  debugProbs?: number[]
}

export function ipAdapterHook(o: IpHookOptions): CrossAttentionHook {
  const byPrefix = new Map(o.layers.map((l) => [l.prefix, l]))
  let image: string | undefined
  let scale: string | undefined
  return {
    textContext(g, c, context) {
      const axis = c.int64([1])
      image = g.op('Slice', [context, c.int64([-o.tokens]), c.int64([Number.MAX_SAFE_INTEGER]), axis])
      scale = g.input(IP_SCALE_INPUT, 'float32', [])
      return g.op('Slice', [context, c.int64([0]), c.int64([-o.tokens]), axis])
    },
    extra(ctx, prefix, q, channels, heads) {
      const layer = byPrefix.get(prefix)
      if (!layer) return undefined
      if (!image || !scale) throw new Error('IP-Adapter hook: textContext was not called')
      const { g, c } = ctx
      const k = g.op('MatMul', [image, o.weights.getLinearT(g, kvName(layer.n, 'k'))])
      const v = g.op('MatMul', [image, o.weights.getLinearT(g, kvName(layer.n, 'v'))])
      if (o.debugProbs?.includes(layer.n)) {
        const d = channels / heads
        const qh = g.op('Transpose', [g.op('Reshape', [q, c.int64([0, 0, heads, d])])], {
          perm: [0, 2, 1, 3],
        })
        const kh = g.op('Transpose', [g.op('Reshape', [k, c.int64([0, 0, heads, d])])], {
          perm: [0, 2, 3, 1],
        })
        const s = g.op('Mul', [
          g.op('MatMul', [qh, kh]),
          g.constFloat([1 / Math.sqrt(d)], [], 'ip_attn_scale'),
        ])
        const target = g.op(
          'Concat',
          [c.int64([-1]), g.op('Shape', [q], { start: 1, end: 2 }), c.int64([o.tokens])],
          { axis: 0 },
        )
        const probs = g.op('Reshape', [g.op('Softmax', [s], { axis: -1 }), target])
        g.output(
          probs,
          'float32',
          ['batch_heads', 'sequence_q', o.tokens],
          `debug_ip_attention_probs_N${layer.n}`,
        )
      }
      const h = attention(g, c, q, k, v, heads, channels, ctx.opts.attention)
      return g.op('Mul', [h, scale])
    },
  }
}
