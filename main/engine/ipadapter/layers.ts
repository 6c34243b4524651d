/**
 * The UNet's attention layers in diffusers' `unet.attn_processors` order, which is how IP-Adapter numbers
 * its weights: `ip_adapter.N.*` is processor N of torch.nn.ModuleList(unet.attn_processors.values()). The
 * order is a depth-first walk in module registration order: down_blocks, up_blocks, then mid_block (the
 * UNet registers both ModuleLists before building the mid block); inside a block attentions.j ->
 * transformer_blocks.k -> attn1, attn2. attn1 (self-attention) processors carry no weights, so cross-attention
 * layers get the odd numbers.
 */

export interface CrossAttentionLayer {
  /** Processor index N (odd). */
  n: number
  /** Canonical prefix of the attention module, e.g. `down_blocks.0.attentions.0.transformer_blocks.0.attn2`. */
  prefix: string
  /** Inner width of the layer (rows of to_k / to_q). */
  hidden: number
}

interface ShapeSource {
  has(name: string): boolean
  shape(name: string): number[]
}

function count(w: ShapeSource, name: (i: number) => string): number {
  let n = 0
  while (w.has(name(n))) n++
  return n
}

/** Every transformer block's attn2 in processor order, from canonical (diffusers) UNet weight names. */
export function crossAttentionLayers(w: ShapeSource): CrossAttentionLayer[] {
  const blocks: string[] = []
  const attentionsOf = (block: string): void => {
    const nAttn = count(w, (j) => `${block}.attentions.${j}.proj_in.weight`)
    for (let j = 0; j < nAttn; j++) {
      const depth = count(w, (k) => `${block}.attentions.${j}.transformer_blocks.${k}.attn1.to_q.weight`)
      for (let k = 0; k < depth; k++) blocks.push(`${block}.attentions.${j}.transformer_blocks.${k}`)
    }
  }
  const levels = count(w, (i) => `down_blocks.${i}.resnets.0.conv1.weight`)
  for (let i = 0; i < levels; i++) attentionsOf(`down_blocks.${i}`)
  const up = count(w, (i) => `up_blocks.${i}.resnets.0.conv1.weight`)
  for (let i = 0; i < up; i++) attentionsOf(`up_blocks.${i}`)
  attentionsOf('mid_block')
  return blocks
    .map((b, i) => ({ n: 2 * i + 1, prefix: `${b}.attn2`, toK: `${b}.attn2.to_k.weight` }))
    .filter((l) => w.has(l.toK))
    .map((l) => ({ n: l.n, prefix: l.prefix, hidden: w.shape(l.toK)[0] as number }))
}
