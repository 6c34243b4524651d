import * as ort from 'onnxruntime-node'
import path from 'node:path'
import type { RawImage } from '../image/types'
import type { Conditioning } from '../pipelines/conditioning'
import type { IpAdapterWeights } from './adapter'
import { IpAdapterError } from './adapter'
import type { ImageEncoder } from './image-encoder'
import { combineEmbeds, projectImageEmbeds, unconditionalTokens } from './projection'

/**
 * Image prompts end to end: reference images -> CLIP image embeddings -> one combined embedding -> image
 * tokens (and the unconditional tokens) -> appended to every row of the text conditioning, uncond rows
 * getting the unconditional tokens, as upstream's IPAdapter.generate concatenates them.
 *
 * Several images and their weights (the rule, documented in README.md):
 * - the CLIP embeddings are averaged with weights w_i / sum(w) before the projection (equal weights give
 *   torch.mean, the oracle's /blend rule, ComfyUI_IPAdapter_plus combine_embeds='average');
 * - the adapter scale (the `ip_scale` graph input) is max(w_i): one image at weight w runs at scale w;
 * - images at weight 0 are left out; when every weight is 0 there is no image prompt.
 */

export interface ImagePrompt {
  image: RawImage
  /** Adapter scale of this image (A1111 / ComfyUI "weight"); 0 leaves it out. */
  weight: number
  /** Shown in errors and metadata. */
  label?: string
}

export interface ImageTokens {
  /** Image tokens [1, T, D] of the combined embedding. */
  cond: Float32Array
  /** ImageProjModel(zeros) [1, T, D]. */
  uncond: Float32Array
  tokens: number
  width: number
  /** The `ip_scale` to feed. */
  scale: number
  /** Per-image CLIP embeddings [n, E] and the combined one [1, E] (metadata, tests). */
  embeds: Float32Array
  combined: Float32Array
}

/** Largest weight and the mixing weights of the images that take part (weight > 0). */
export function imagePromptRule(weights: number[]): { scale: number; active: number[] } {
  for (const w of weights)
    if (!(Number.isFinite(w) && w >= 0)) throw new RangeError(`image prompt weight ${w} must be 0 or more`)
  const active = weights.flatMap((w, i) => (w > 0 ? [i] : []))
  return { scale: active.length ? Math.max(...weights) : 0, active }
}

export class ImagePromptEncoder {
  constructor(
    readonly encoder: ImageEncoder,
    readonly adapter: IpAdapterWeights,
  ) {
    if (encoder.embedDim !== adapter.clipEmbeddingsDim)
      throw new IpAdapterError(
        `${path.basename(adapter.file)} takes ${adapter.clipEmbeddingsDim}-wide CLIP image embeddings but the image ` +
          `encoder ${path.basename(encoder.files.path)} gives ${encoder.embedDim}-wide ones; use the encoder the adapter ` +
          `was trained with (${adapter.clipEmbeddingsDim === 1024 ? 'OpenCLIP ViT-H/14' : adapter.clipEmbeddingsDim === 1280 ? 'OpenCLIP ViT-bigG/14' : `projection width ${adapter.clipEmbeddingsDim}`})`,
        'mismatch',
      )
  }

  /** Tokens from precomputed CLIP embeddings [n, E] with the combine rule. */
  tokensFromEmbeds(embeds: Float32Array, weights: number[]): ImageTokens {
    const { scale, active } = imagePromptRule(weights)
    if (!active.length) throw new RangeError('every image prompt has weight 0')
    const E = this.adapter.clipEmbeddingsDim
    const picked = new Float32Array(active.length * E)
    active.forEach((i, k) => picked.set(embeds.subarray(i * E, (i + 1) * E), k * E))
    const combined =
      active.length === 1
        ? picked
        : combineEmbeds(
            picked,
            active.length,
            active.map((i) => weights[i] as number),
          )
    return {
      cond: projectImageEmbeds(this.adapter, combined, 1),
      uncond: unconditionalTokens(this.adapter),
      tokens: this.adapter.tokens,
      width: this.adapter.crossAttentionDim,
      scale,
      embeds,
      combined,
    }
  }

  async imageTokens(prompts: ImagePrompt[]): Promise<ImageTokens> {
    if (!prompts.length) throw new RangeError('no image prompts')
    const embeds = await this.encoder.embedImages(prompts.map((p) => p.image))
    return this.tokensFromEmbeds(
      embeds,
      prompts.map((p) => p.weight),
    )
  }

  async release(): Promise<void> {
    await this.encoder.release()
  }
}

/**
 * Appends the image tokens to every row of a context [rows, L, D]: rows of the first `batch` block get the
 * unconditional tokens when `withUncond`, every other row the image tokens. Result [rows, L + T, D].
 */
export function appendImageTokens(
  context: ort.Tensor,
  t: Pick<ImageTokens, 'cond' | 'uncond' | 'tokens' | 'width'>,
  layout: { batch: number; withUncond: boolean },
): ort.Tensor {
  const [rows = 0, L = 0, D = 0] = context.dims
  if (D !== t.width)
    throw new IpAdapterError(
      `the image tokens are ${t.width} wide but the text conditioning is ${D} wide: the adapter does not fit this model`,
      'mismatch',
    )
  const src = context.data as Float32Array
  const out = new Float32Array(rows * (L + t.tokens) * D)
  for (let r = 0; r < rows; r++) {
    out.set(src.subarray(r * L * D, (r + 1) * L * D), r * (L + t.tokens) * D)
    const uncond = layout.withUncond && r < layout.batch
    out.set(uncond ? t.uncond : t.cond, (r * (L + t.tokens) + L) * D)
  }
  return new ort.Tensor('float32', out, [rows, L + t.tokens, D])
}

/**
 * The conditioning of a generation with the image tokens appended (see appendImageTokens); the batch is
 * the context's rows over its blocks (uncond + one per AND sub-prompt).
 */
export function withImageTokens(cond: Conditioning, t: ImageTokens): Conditioning {
  const blocks = (cond.withUncond ? 1 : 0) + cond.condWeights.length
  const batch = (cond.context.dims[0] ?? blocks) / blocks
  const layout = { batch, withUncond: cond.withUncond }
  const at = cond.contextAt
  // The same step's context always gets the same appended tensor (the denoise loop asks once per call).
  const appended = new Map<ort.Tensor, ort.Tensor>()
  return {
    ...cond,
    context: appendImageTokens(cond.context, t, layout),
    ...(at
      ? {
          contextAt: (call: number) => {
            const c = at(call)
            if (!c) return undefined
            let a = appended.get(c)
            if (!a) {
              a = appendImageTokens(c, t, layout)
              appended.set(c, a)
            }
            return a
          },
        }
      : {}),
  }
}
