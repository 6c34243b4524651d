import { GraphBuilder } from '../../model-formats/onnx/builder'
import { gelu, layerNorm, linear, quickGelu } from './nn'
import type { WeightProvider } from './weights'

/**
 * CLIP image tower (Hugging Face CLIPVisionModelWithProjection naming, `vision_model.*` +
 * `visual_projection.weight`): patch embedding (a strided conv without bias), class token, position
 * embeddings, pre-LayerNorm (`pre_layrnorm`), pre-LN transformer layers without a mask, the post-LayerNorm of
 * the class token and the projection. The IP-Adapter image encoders (OpenCLIP ViT-H/14 for SD 1.5, ViT-bigG/14
 * for SDXL) and OpenAI CLIP ViT-L/14 all have this layout; every size comes from the weights, head count and
 * activation from the config (config.json beside the weights) when the weights cannot tell.
 */

const P = 'vision_model'

export interface ClipVisionConfig {
  width: number
  layers: number
  heads: number
  mlp: number
  patch: number
  /** Side of the square input image (patch * sqrt(positions - 1)). */
  imageSize: number
  /** Output width of visual_projection (0 when the weights have none). */
  projectionDim: number
  act: 'quick_gelu' | 'gelu'
  eps: number
}

/** A transformers CLIPVisionConfig (config.json); only the fields read here. */
export interface HfClipVisionConfig {
  hidden_size?: number
  num_attention_heads?: number
  num_hidden_layers?: number
  intermediate_size?: number
  patch_size?: number
  image_size?: number
  projection_dim?: number
  hidden_act?: string
  layer_norm_eps?: number
  /** A full CLIPConfig nests the tower's settings here. */
  vision_config?: HfClipVisionConfig
}

export class ClipVisionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ClipVisionError'
  }
}

/**
 * Head counts of the published towers by width (OpenAI ViT-B 768/12, ViT-L 1024/16, OpenCLIP ViT-H 1280/16,
 * ViT-bigG 1664/16); other widths fall back to 64-wide heads.
 */
function defaultHeads(width: number): number {
  const known: Record<number, number> = { 768: 12, 1024: 16, 1280: 16, 1664: 16 }
  return known[width] ?? Math.max(1, Math.round(width / 64))
}

/** Reads the architecture from the weight shapes, completed by a transformers config when given. */
export function clipVisionConfig(w: WeightProvider, hf: HfClipVisionConfig = {}): ClipVisionConfig {
  const cfg = hf.vision_config ?? hf
  const patchW = `${P}.embeddings.patch_embedding.weight`
  if (!w.has(patchW)) throw new ClipVisionError(`not a CLIP image encoder: "${patchW}" is missing`)
  const [width = 0, channels = 0, patch = 0] = w.shape(patchW)
  if (channels !== 3) throw new ClipVisionError(`CLIP image encoder takes ${channels} channels, expected 3`)
  const [positions = 0] = w.shape(`${P}.embeddings.position_embedding.weight`)
  const side = Math.round(Math.sqrt(positions - 1))
  if (side * side !== positions - 1)
    throw new ClipVisionError(
      `CLIP image encoder has ${positions} positions: not a square grid + class token`,
    )
  let layers = 0
  while (w.has(`${P}.encoder.layers.${layers}.self_attn.q_proj.weight`)) layers++
  if (layers === 0) throw new ClipVisionError('CLIP image encoder has no transformer layers')
  const [mlp = 0] = w.shape(`${P}.encoder.layers.0.mlp.fc1.weight`)
  const heads = cfg.num_attention_heads ?? defaultHeads(width)
  if (width % heads !== 0)
    throw new ClipVisionError(`CLIP image encoder width ${width} is not divisible by ${heads} heads`)
  const act = cfg.hidden_act ?? (width >= 1280 ? 'gelu' : 'quick_gelu')
  if (act !== 'gelu' && act !== 'quick_gelu')
    throw new ClipVisionError(`CLIP image encoder activation "${act}" is not supported (gelu, quick_gelu)`)
  const proj = w.has('visual_projection.weight') ? (w.shape('visual_projection.weight')[0] ?? 0) : 0
  return {
    width,
    layers,
    heads,
    mlp,
    patch,
    imageSize: side * patch,
    projectionDim: proj,
    act,
    eps: cfg.layer_norm_eps ?? 1e-5,
  }
}

export interface ClipVisionBuildOptions {
  config?: HfClipVisionConfig
  /**
   * Also output `debug_embeddings_ln_pre` (after pre_layrnorm), `debug_hidden_state_k` (output of layer k,
   * k = 1..L) and `debug_pooled_ln_post` (post_layernorm of the class token).
   */
  debug?: boolean
}

/**
 * Inputs: `pixel_values` float32 [N, 3, S, S] (CLIPImageProcessor output, S = the tower's image size).
 * Outputs: `image_embeds` [N, proj] (visual_projection of the post-LayerNorm class token, no L2 norm: what
 * IP-Adapter feeds its projection), `penultimate_hidden_state` [N, T, width] (output of layer L-1, what
 * IP-Adapter Plus uses) and `last_hidden_state` [N, T, width].
 */
export function buildClipVision(
  w: WeightProvider,
  opts: ClipVisionBuildOptions = {},
): { graph: GraphBuilder; config: ClipVisionConfig } {
  const cfg = clipVisionConfig(w, opts.config)
  const g = new GraphBuilder('clip_vision')
  const S = cfg.imageSize
  const tokens = (S / cfg.patch) ** 2 + 1
  const x = g.input('pixel_values', 'float32', ['batch', 3, S, S])

  // Patches: Conv(stride = kernel = patch, no bias) -> [N, width, g, g] -> [N, g*g, width].
  const convW = w.get(g, `${P}.embeddings.patch_embedding.weight`)
  const patches = g.op('Conv', [x, convW], {
    kernel_shape: [cfg.patch, cfg.patch],
    strides: [cfg.patch, cfg.patch],
    pads: [0, 0, 0, 0],
  })
  const flat = g.op('Transpose', [g.op('Reshape', [patches, g.constInt64([0, cfg.width, -1])])], {
    perm: [0, 2, 1],
  })
  // Class token broadcast to the batch: [1, 1, width] expanded to [N, 1, width].
  const cls = g.op('Reshape', [w.get(g, `${P}.embeddings.class_embedding`), g.constInt64([1, 1, cfg.width])])
  const batch = g.op('Shape', [x], { start: 0, end: 1 })
  const clsN = g.op('Expand', [cls, g.op('Concat', [batch, g.constInt64([1, cfg.width])], { axis: 0 })])
  const emb = g.op('Concat', [clsN, flat], { axis: 1 })
  let h = g.op('Add', [emb, w.get(g, `${P}.embeddings.position_embedding.weight`)])
  h = layerNorm(g, w, `${P}.pre_layrnorm`, h, cfg.eps)
  const dims = ['batch', tokens, cfg.width]
  if (opts.debug) g.output(h, 'float32', dims, 'debug_embeddings_ln_pre')

  const hidden: string[] = [h]
  for (let l = 0; l < cfg.layers; l++) {
    const L = `${P}.encoder.layers.${l}`
    const a0 = layerNorm(g, w, `${L}.layer_norm1`, h, cfg.eps)
    const q = linear(g, w, `${L}.self_attn.q_proj`, a0)
    const k = linear(g, w, `${L}.self_attn.k_proj`, a0)
    const v = linear(g, w, `${L}.self_attn.v_proj`, a0)
    const a = g.op('MultiHeadAttention', [q, k, v], { num_heads: cfg.heads }, { domain: 'com.microsoft' })
    h = g.op('Add', [h, linear(g, w, `${L}.self_attn.out_proj`, a)])
    const m0 = layerNorm(g, w, `${L}.layer_norm2`, h, cfg.eps)
    const f = linear(g, w, `${L}.mlp.fc1`, m0)
    h = g.op('Add', [h, linear(g, w, `${L}.mlp.fc2`, cfg.act === 'gelu' ? gelu(g, f) : quickGelu(g, f))])
    hidden.push(h)
    if (opts.debug) g.output(h, 'float32', dims, `debug_hidden_state_${l + 1}`)
  }
  g.output(g.op('Identity', [h]), 'float32', dims, 'last_hidden_state')
  g.output(g.op('Identity', [hidden[cfg.layers - 1] as string]), 'float32', dims, 'penultimate_hidden_state')

  // Class token of the last layer: [N, width].
  const first = g.op('Gather', [h, g.constInt64([0], [])], { axis: 1 })
  const pooled = layerNorm(g, w, `${P}.post_layernorm`, first, cfg.eps)
  if (opts.debug) g.output(pooled, 'float32', ['batch', cfg.width], 'debug_pooled_ln_post')
  if (cfg.projectionDim > 0)
    g.output(
      linear(g, w, 'visual_projection', pooled),
      'float32',
      ['batch', cfg.projectionDim],
      'image_embeds',
    )
  else g.output(g.op('Identity', [pooled]), 'float32', ['batch', cfg.width], 'image_embeds')
  return { graph: g, config: cfg }
}
