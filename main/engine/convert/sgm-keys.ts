import path from 'node:path'
import type { KeyMapping, StoredTensor, WeightSource } from '../graphs/weights'
import { sourcesFromFile } from '../graphs/weights'
import { textEncoderKey } from './keys'

/**
 * SDXL (Stability "SGM" layout) single-file keys -> canonical names.
 *
 * - `conditioner.embedders.0.transformer.text_model.*`: text encoder 1 (CLIP ViT-L), already Hugging Face
 *   naming -> `text_model.*`.
 * - `conditioner.embedders.1.model.*`: text encoder 2 (OpenCLIP ViT-bigG naming) -> Hugging Face
 *   CLIPTextModelWithProjection naming, so both encoders (and LoRAs, which use HF module paths for both)
 *   share one graph builder. OpenCLIP's fused attention `in_proj_weight` [3C, C] / `in_proj_bias` [3C] are
 *   split into q/k/v by byte ranges of the stored tensor (rows are contiguous): nothing is copied.
 * - `text_projection` [width, proj] is applied as `x @ P` and keeps its own canonical name; the nn.Linear
 *   form `text_projection.weight` [proj, width] (diffusers folders, diffusers v0.21.4's converter) keeps
 *   that name. The graph builder accepts either.
 * - `model.diffusion_model.label_emb.0.{0,2}` (the added-conditioning MLP) -> `add_embedding.linear_{1,2}`.
 */

export const SGM_TE1_PREFIX = 'conditioner.embedders.0.transformer.'
export const SGM_TE2_PREFIX = 'conditioner.embedders.1.model.'
/** The SDXL refiner keeps its only (OpenCLIP) text encoder at embedders.0. */
export const SGM_REFINER_TE_PREFIX = 'conditioner.embedders.0.model.'

/** `text_model.*` under the SGM first-encoder prefix. */
export function sgmTextEncoder1Key(key: string): KeyMapping {
  return key.startsWith(SGM_TE1_PREFIX) ? textEncoderKey(key.slice(SGM_TE1_PREFIX.length)) : undefined
}

const OPEN_CLIP_LAYER: [RegExp, string][] = [
  [/^transformer\.resblocks\.(\d+)\.ln_1\.(weight|bias)$/, 'layer_norm1'],
  [/^transformer\.resblocks\.(\d+)\.ln_2\.(weight|bias)$/, 'layer_norm2'],
  [/^transformer\.resblocks\.(\d+)\.attn\.out_proj\.(weight|bias)$/, 'self_attn.out_proj'],
  [/^transformer\.resblocks\.(\d+)\.mlp\.c_fc\.(weight|bias)$/, 'mlp.fc1'],
  [/^transformer\.resblocks\.(\d+)\.mlp\.c_proj\.(weight|bias)$/, 'mlp.fc2'],
]

/** One OpenCLIP text-tower key (prefix stripped) -> canonical, for everything but the fused in_proj. */
export function openClipKey(key: string): KeyMapping {
  if (key === 'token_embedding.weight') return 'text_model.embeddings.token_embedding.weight'
  if (key === 'positional_embedding') return 'text_model.embeddings.position_embedding.weight'
  if (key === 'ln_final.weight' || key === 'ln_final.bias')
    return `text_model.final_layer_norm.${key.slice('ln_final.'.length)}`
  if (key === 'text_projection' || key === 'text_projection.weight') return key
  for (const [re, part] of OPEN_CLIP_LAYER) {
    const m = re.exec(key)
    if (m) return `text_model.encoder.layers.${m[1]}.${part}.${m[2]}`
  }
  return undefined
}

const IN_PROJ = /^transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$/
const QKV = ['q_proj', 'k_proj', 'v_proj'] as const
const ELEM: Record<string, number> = { F16: 2, BF16: 2, F32: 4 }

/**
 * Canonical sources of an OpenCLIP text tower whose keys start with `prefix` (e.g. SGM_TE2_PREFIX); the
 * fused q/k/v projections become three sources pointing at thirds of the stored tensor.
 */
export function openClipSources(
  file: string,
  tensors: Iterable<[string, StoredTensor]>,
  prefix: string,
): Map<string, WeightSource> {
  const entries = [...tensors].filter(([k]) => k.startsWith(prefix))
  const out = sourcesFromFile(file, entries, (k) => openClipKey(k.slice(prefix.length)))
  for (const [key, t] of entries) {
    const m = IN_PROJ.exec(key.slice(prefix.length))
    if (!m) continue
    const [, layer, kind] = m
    const size = ELEM[t.dtype]
    const rows = t.shape[0] ?? 0
    if (!size || rows % 3 !== 0 || (kind === 'weight' && t.shape.length !== 2))
      throw new Error(
        `${path.basename(file)}: "${key}" [${t.shape}] ${t.dtype} is not a fused q/k/v projection`,
      )
    const third = (t.end - t.begin) / 3
    const shape = kind === 'weight' ? [rows / 3, t.shape[1] ?? 0] : [rows / 3]
    QKV.forEach((proj, i) => {
      out.set(`text_model.encoder.layers.${layer}.self_attn.${proj}.${kind}`, {
        kind: 'file',
        shape,
        dtype: t.dtype as 'F16' | 'BF16' | 'F32',
        file,
        begin: t.begin + i * third,
        end: t.begin + (i + 1) * third,
      })
    })
  }
  return out
}

/** Hugging Face CLIPTextModelWithProjection keys (a diffusers `text_encoder_2/`) -> canonical. */
export function textEncoder2Key(key: string): KeyMapping {
  if (key === 'text_projection.weight') return key
  return textEncoderKey(key)
}

/** SGM `label_emb.0.0` / `label_emb.0.2` (UNet keys without `model.diffusion_model.`) -> diffusers. */
export function sgmLabelEmbKey(key: string): string | undefined {
  const m = /^label_emb\.0\.([02])\.(weight|bias)$/.exec(key)
  if (!m) return undefined
  return `add_embedding.linear_${m[1] === '0' ? 1 : 2}.${m[2]}`
}
