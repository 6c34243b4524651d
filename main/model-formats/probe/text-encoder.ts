import type { KeyView } from './keys'
import type { TextEncoderArch } from './types'

/** Prefix (inside `v`) under which Hugging Face CLIPTextModel weights start, if any. */
export function hfClipPrefix(v: KeyView): string | undefined {
  for (const p of ['text_model.', '']) if (v.has(`${p}embeddings.token_embedding.weight`)) return p
  return undefined
}

/** CLIPTextModel naming: `text_model.embeddings.*`, `text_model.encoder.layers.N.*` (`v` above `text_model.`). */
export function hfClipArch(v: KeyView, hiddenAct: TextEncoderArch['hiddenAct']): TextEncoderArch | undefined {
  const p = hfClipPrefix(v)
  if (p === undefined) return undefined
  const t = v.under(p)
  const [vocabSize, width] = t.shape('embeddings.token_embedding.weight') as [number, number]
  const proj = v.shape('text_projection.weight')
  return {
    naming: 'hf-clip',
    width,
    layers: t.count(/^encoder\.layers\.(\d+)\./),
    heads: Math.max(1, Math.floor(width / 64)),
    mlpDim: t.dim('encoder.layers.0.mlp.fc1.weight', 0),
    vocabSize,
    maxPositions: t.dim('embeddings.position_embedding.weight', 0),
    hiddenAct,
    ...(proj ? { projectionDim: proj[0]! } : {}),
  }
}

/** OpenCLIP naming: `token_embedding`, `positional_embedding`, `transformer.resblocks.N.*`, `text_projection`. */
export function openClipArch(v: KeyView): TextEncoderArch | undefined {
  const tok = v.shape('token_embedding.weight')
  if (!tok) return undefined
  const [vocabSize, width] = tok as [number, number]
  const proj = v.shape('text_projection') ?? v.shape('text_projection.weight')
  const projectionDim = v.has('text_projection') ? proj?.[1] : proj?.[0]
  return {
    naming: 'open-clip',
    width,
    layers: v.count(/^transformer\.resblocks\.(\d+)\./),
    heads: Math.max(1, Math.floor(width / 64)),
    mlpDim: v.dim('transformer.resblocks.0.mlp.c_fc.weight', 0),
    vocabSize,
    maxPositions: v.dim('positional_embedding', 0),
    hiddenAct: 'gelu',
    ...(projectionDim !== undefined ? { projectionDim } : {}),
  }
}
