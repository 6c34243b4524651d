/**
 * IP-Adapter's ImageProjModel and the rule for combining several reference images.
 *
 * tokens = LayerNorm(reshape(proj(image_embeds), [-1, T, D])) (eps 1e-5). The unconditional tokens are the
 * same model applied to zeros (LayerNorm of the reshaped bias): upstream's get_image_embeds computes them as
 * `image_proj_model(torch.zeros_like(clip_image_embeds))`, not as zero tokens.
 */

export interface ProjectionWeights {
  tokens: number
  crossAttentionDim: number
  clipEmbeddingsDim: number
  proj: { weight: Float32Array; bias: Float32Array }
  norm: { weight: Float32Array; bias: Float32Array }
}

const LN_EPS = 1e-5

/** proj(x).reshape(-1, T, D) before the LayerNorm, for `count` embeddings [count, E] (trace output). */
export function projectRaw(w: ProjectionWeights, embeds: Float32Array, count: number): Float32Array {
  const E = w.clipEmbeddingsDim
  const rows = w.tokens * w.crossAttentionDim
  if (embeds.length !== count * E)
    throw new Error(`image embeddings have ${embeds.length} values; expected ${count} x ${E}`)
  const out = new Float32Array(count * rows)
  for (let b = 0; b < count; b++) {
    const x = embeds.subarray(b * E, (b + 1) * E)
    for (let r = 0; r < rows; r++) {
      let acc = 0
      const off = r * E
      for (let i = 0; i < E; i++) acc += (x[i] as number) * (w.proj.weight[off + i] as number)
      out[b * rows + r] = Math.fround(acc + (w.proj.bias[r] as number))
    }
  }
  return out
}

/** LayerNorm over the last axis (width D) of [..., D], float32 result. */
export function layerNormRows(
  x: Float32Array,
  D: number,
  weight: Float32Array,
  bias: Float32Array,
): Float32Array {
  const out = new Float32Array(x.length)
  for (let o = 0; o < x.length; o += D) {
    let mean = 0
    for (let i = 0; i < D; i++) mean += x[o + i] as number
    mean /= D
    let v = 0
    for (let i = 0; i < D; i++) v += ((x[o + i] as number) - mean) ** 2
    const inv = 1 / Math.sqrt(v / D + LN_EPS)
    for (let i = 0; i < D; i++)
      out[o + i] = Math.fround(
        ((x[o + i] as number) - mean) * inv * (weight[i] as number) + (bias[i] as number),
      )
  }
  return out
}

/** Image tokens [count, T, D] for `count` CLIP image embeddings [count, E]. */
export function projectImageEmbeds(w: ProjectionWeights, embeds: Float32Array, count: number): Float32Array {
  return layerNormRows(projectRaw(w, embeds, count), w.crossAttentionDim, w.norm.weight, w.norm.bias)
}

/** The unconditional image tokens [1, T, D]: the projection of a zero embedding. */
export function unconditionalTokens(w: ProjectionWeights): Float32Array {
  return projectImageEmbeds(w, new Float32Array(w.clipEmbeddingsDim), 1)
}

/**
 * Several image embeddings [count, E] -> one [1, E]: the weighted mean sum(w_i e_i) / sum(w_i). With equal
 * weights this is torch.mean(embeds, dim=0) (ComfyUI_IPAdapter_plus `combine_embeds='average'`, the
 * oracle's blend rule), applied before the projection. Weights must be >= 0 with a positive sum.
 */
export function combineEmbeds(embeds: Float32Array, count: number, weights?: number[]): Float32Array {
  if (count < 1) throw new Error('combineEmbeds: no image embeddings')
  const E = embeds.length / count
  const ws = weights ?? new Array<number>(count).fill(1)
  if (ws.length !== count) throw new Error(`combineEmbeds: ${ws.length} weights for ${count} images`)
  if (ws.some((x) => !(x >= 0))) throw new Error('combineEmbeds: image weights must be 0 or more')
  const total = ws.reduce((a, b) => a + b, 0)
  if (!(total > 0)) throw new Error('combineEmbeds: the image weights add up to 0')
  const out = new Float32Array(E)
  for (let i = 0; i < E; i++) {
    let acc = 0
    for (let b = 0; b < count; b++) acc += (ws[b] as number) * (embeds[b * E + i] as number)
    out[i] = Math.fround(acc / total)
  }
  return out
}
