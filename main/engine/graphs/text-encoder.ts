import { GraphBuilder } from '../../model-formats/onnx/builder'
import { dim, gelu, layerNorm, linear, quickGelu } from './nn'
import type { WeightProvider } from './weights'

/**
 * CLIP text encoder (Hugging Face CLIPTextModel naming, `text_model.*`): token + position embeddings, a
 * causal pre-LayerNorm transformer and the final LayerNorm. Every number comes from the weights.
 */

export interface TextEncoderConfig {
  width: number
  layers: number
  heads: number
  mlp: number
  maxPositions: number
  vocab: number
  act: 'quick_gelu' | 'gelu'
  eps: number
}

const P = 'text_model'

/** Optional inputs of the text encoder (see TextEncoderBuildOptions.embedsOverride). */
export const EMBEDS_OVERRIDE = 'embeds_override'
export const EMBEDS_MASK = 'embeds_mask'
/** Every hidden state through the final LayerNorm, stacked (A1111 Clip skip; see buildTextEncoder). */
export const CLIP_SKIP_OUTPUT = 'hidden_states_ln'

/** Reads the architecture from the weight shapes (heads = width / 64, the OpenAI CLIP rule). */
export function textEncoderConfig(
  w: WeightProvider,
  overrides: Partial<TextEncoderConfig> = {},
): TextEncoderConfig {
  const tok = `${P}.embeddings.token_embedding.weight`
  if (!w.has(tok)) throw new Error(`not a CLIP text encoder: "${tok}" is missing`)
  const [vocab = 0, width = 0] = w.shape(tok)
  const [maxPositions = 0] = w.shape(`${P}.embeddings.position_embedding.weight`)
  let layers = 0
  while (w.has(`${P}.encoder.layers.${layers}.self_attn.q_proj.weight`)) layers++
  if (layers === 0) throw new Error('CLIP text encoder has no transformer layers')
  const [mlp = 0] = w.shape(`${P}.encoder.layers.0.mlp.fc1.weight`)
  if (width % 64 !== 0) throw new Error(`CLIP text encoder width ${width} is not a multiple of 64`)
  return {
    width,
    layers,
    heads: width / 64,
    mlp,
    maxPositions,
    vocab,
    // OpenAI CLIP (SD 1.x) uses quick_gelu; OpenCLIP ViT-H/bigG (SD 2.x, SDXL's second encoder) use gelu.
    act: width >= 1024 ? 'gelu' : 'quick_gelu',
    eps: 1e-5,
    ...overrides,
  }
}

export interface TextEncoderBuildOptions {
  /** Also output `hidden_state_N` (N=0: embeddings; N=k: output of layer k, before the final LN). */
  debug?: boolean
  config?: Partial<TextEncoderConfig>
  /**
   * Also take `embeds_override` float32 [batch, seq, width] and `embeds_mask` bool [batch, seq, 1]: where the mask
   * is true, the row of `embeds_override` replaces the token embedding (before the position embedding is added).
   * This is how textual-inversion vectors enter (A1111's EmbeddingsWithFixes); callers without embeddings pass an
   * all-false mask.
   */
  embedsOverride?: boolean
}

/**
 * Inputs: `input_ids` int64 [batch, seq] (seq <= max positions, normally 77); with `embedsOverride`, also
 * `embeds_override` and `embeds_mask` (token-embedding rows to replace).
 * Outputs: `last_hidden_state` [batch, seq, width], `penultimate_hidden_state_ln` (output of layer L-1
 * through the final LayerNorm: "CLIP skip 2") and `penultimate_hidden_state` (output of layer L-1 without
 * it: what SDXL feeds its UNet from both encoders), and `hidden_states_ln` [layers + 1, batch, seq, width] (every
 * hidden state through the final LayerNorm: A1111's Clip skip N is index layers + 1 - N). When the weights hold a text projection (SDXL's second
 * encoder: `text_projection` [width, proj] applied as x @ P, or nn.Linear `text_projection.weight`), also
 * `text_embeds` [batch, proj]: the final-LayerNorm output at the position of the largest input id (the
 * first EOS when padding is 0, as OpenCLIP and CLIPTextModelWithProjection take it), projected.
 */
export function buildTextEncoder(w: WeightProvider, opts: TextEncoderBuildOptions = {}): GraphBuilder {
  const cfg = textEncoderConfig(w, opts.config)
  const g = new GraphBuilder('text_encoder')
  const ids = g.input('input_ids', 'int64', ['batch', 'seq'])
  const seq = dim(g, ids, 1)

  let tok = g.op('Gather', [w.get(g, `${P}.embeddings.token_embedding.weight`), ids], { axis: 0 })
  if (opts.embedsOverride) {
    const override = g.input(EMBEDS_OVERRIDE, 'float32', ['batch', 'seq', cfg.width])
    const mask = g.input(EMBEDS_MASK, 'bool', ['batch', 'seq', 1])
    tok = g.op('Where', [mask, override, tok])
  }
  const zero = g.constInt64([0])
  const pos = g.op('Slice', [w.get(g, `${P}.embeddings.position_embedding.weight`), zero, seq, zero])
  let h = g.op('Add', [tok, pos])

  // Additive causal mask [1, 1, seq, seq]: 0 on and below the diagonal, a large negative above it.
  const maxP = cfg.maxPositions
  const mask = new Float32Array(maxP * maxP)
  for (let i = 0; i < maxP; i++) for (let j = i + 1; j < maxP; j++) mask[i * maxP + j] = -1e9
  const full = g.constFloat(mask, [1, 1, maxP, maxP], 'causal_mask')
  const axes = g.constInt64([2, 3])
  const causal = g.op('Slice', [full, g.constInt64([0, 0]), g.op('Concat', [seq, seq], { axis: 0 }), axes])

  const hidden: string[] = [h]
  for (let l = 0; l < cfg.layers; l++) {
    const L = `${P}.encoder.layers.${l}`
    const x = layerNorm(g, w, `${L}.layer_norm1`, h, cfg.eps)
    const q = linear(g, w, `${L}.self_attn.q_proj`, x)
    const k = linear(g, w, `${L}.self_attn.k_proj`, x)
    const v = linear(g, w, `${L}.self_attn.v_proj`, x)
    const a = g.op(
      'MultiHeadAttention',
      [q, k, v, '', '', causal],
      { num_heads: cfg.heads },
      { domain: 'com.microsoft' },
    )
    h = g.op('Add', [h, linear(g, w, `${L}.self_attn.out_proj`, a)])
    const y = layerNorm(g, w, `${L}.layer_norm2`, h, cfg.eps)
    const f = linear(g, w, `${L}.mlp.fc1`, y)
    const act = cfg.act === 'gelu' ? gelu(g, f) : quickGelu(g, f)
    h = g.op('Add', [h, linear(g, w, `${L}.mlp.fc2`, act)])
    hidden.push(h)
  }

  const dims = ['batch', 'seq', cfg.width]
  const lastLn = layerNorm(g, w, `${P}.final_layer_norm`, h, cfg.eps)
  g.output(lastLn, 'float32', dims, 'last_hidden_state')
  const pen = hidden[cfg.layers - 1] as string
  g.output(
    layerNorm(g, w, `${P}.final_layer_norm`, pen, cfg.eps),
    'float32',
    dims,
    'penultimate_hidden_state_ln',
  )
  g.output(g.op('Identity', [pen]), 'float32', dims, 'penultimate_hidden_state')
  // A1111's Clip skip N (1 … layers + 1 in principle, 1 … 12 in its UI): hidden_states[-N] through the final
  // LayerNorm. Every hidden state (the embeddings and each layer's output) is stacked and normalised once:
  // [layers + 1, batch, seq, width], Clip skip N at index layers + 1 - N.
  const axis0 = g.constInt64([0])
  const stacked = g.op(
    'Concat',
    hidden.map((x) => g.op('Unsqueeze', [x, axis0])),
    { axis: 0 },
  )
  g.output(
    layerNorm(g, w, `${P}.final_layer_norm`, stacked, cfg.eps),
    'float32',
    [cfg.layers + 1, 'batch', 'seq', cfg.width],
    CLIP_SKIP_OUTPUT,
  )
  const proj = ['text_projection', 'text_projection.weight'].find((n) => w.has(n))
  if (proj) {
    // ids < 2^24 are exact in float32; ArgMax returns the first maximum.
    const pos = g.op('ArgMax', [g.op('Cast', [ids], { to: 1 })], { axis: 1, keepdims: 1 })
    const pooled = g.op('GatherND', [lastLn, pos], { batch_dims: 1 })
    const p = proj === 'text_projection' ? w.get(g, proj) : w.getLinearT(g, proj)
    const pdim = proj === 'text_projection' ? w.shape(proj)[1] : w.shape(proj)[0]
    g.output(g.op('MatMul', [pooled, p]), 'float32', ['batch', pdim ?? 0], 'text_embeds')
  }
  if (opts.debug) hidden.forEach((v, i) => g.output(v, 'float32', dims, `hidden_state_${i}`))
  return g
}
