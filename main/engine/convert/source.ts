import fs from 'node:fs'
import path from 'node:path'
import type { WeightSource } from '../graphs/weights'
import { sourcesFromFile } from '../graphs/weights'
import { readPickleHeader, refusePickle } from '../../model-formats/pickle'
import { readHeader } from '../../model-formats/safetensors'
import type { TensorInfo } from '../../model-formats/safetensors'
import { LDM_TEXT_PREFIX, LDM_VAE_PREFIX, ldmVaeUpBlocks, textEncoderKey, vaeKey } from './keys'
import { LDM_UNET_PREFIX, mapLdmUnetKeys } from './ldm-unet-keys'
import {
  SGM_REFINER_TE_PREFIX,
  SGM_TE1_PREFIX,
  SGM_TE2_PREFIX,
  openClipSources,
  sgmLabelEmbKey,
  sgmTextEncoder1Key,
  textEncoder2Key,
} from './sgm-keys'

/**
 * A checkpoint as per-component weight sources in canonical (diffusers) naming, read from headers only:
 * a single-file LDM checkpoint (A1111/Civitai) or a diffusers folder.
 */

export type SourceKind = 'ldm-single-file' | 'diffusers'
export type WeightComponent = 'text_encoder' | 'text_encoder_2' | 'unet' | 'vae'
/** Model families the converter builds graphs for. */
export type SourceFamily = 'sd-1' | 'sdxl'

export interface CheckpointSource {
  kind: SourceKind
  /** SD 1.x, or SDXL (two text encoders, added conditioning). */
  family: SourceFamily
  /** The path the user named (file or folder). */
  path: string
  /** Weight files read (absolute), the cache key is computed over these. */
  files: string[]
  components: Partial<Record<WeightComponent, Map<string, WeightSource>>>
  /** Tensors that mapped to nothing (EMA copies, position_ids, ...), counted for diagnostics. */
  ignored: number
  /** Architecture facts the weights' shapes alone do not settle, for the graph builders. */
  arch: SourceArch
}

export type HiddenAct = 'quick_gelu' | 'gelu'

export interface SourceArch {
  /** Per text encoder: OpenAI CLIP's quick_gelu or OpenCLIP's exact GELU. */
  hiddenAct: Partial<Record<'text_encoder' | 'text_encoder_2', HiddenAct>>
  /** UNet attention heads: a fixed head width (SD 2.x / SDXL: 64) or counts per level (diffusers config). */
  unetHeads?: { headDim: number } | { perLevel: number[] }
  /** SDXL: sinusoidal width of each of the six time ids (diffusers addition_time_embed_dim). */
  additionTimeEmbedDim?: number
}

/** Projection width of the second text encoder: `text_projection` [width, proj] or nn.Linear [proj, width]. */
function projectionDim(te2: Map<string, WeightSource> | undefined): number | undefined {
  const p = te2?.get('text_projection')?.shape[1] ?? te2?.get('text_projection.weight')?.shape[0]
  return p
}

/** (label_emb input - pooled width) / 6 time ids, when it divides. */
function timeEmbedDim(unet: Map<string, WeightSource>, pooled: number | undefined): number | undefined {
  const inDim = unet.get('add_embedding.linear_1.weight')?.shape[1]
  if (inDim === undefined || pooled === undefined) return undefined
  const rest = inDim - pooled
  return rest > 0 && rest % 6 === 0 ? rest / 6 : undefined
}

function readJsonObject(file: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

export class SourceError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
    this.name = 'SourceError'
  }
}

const RUNS = 'Atelier runs SD 1.x and SDXL checkpoints'

function unsupportedFamily(keys: string[], sdxl: boolean): string | undefined {
  if (keys.some((k) => k.startsWith(SGM_REFINER_TE_PREFIX)))
    return `it is an SDXL refiner checkpoint, which is not supported yet (${RUNS})`
  if (keys.some((k) => k.startsWith('cond_stage_model.model.')))
    return `it is an SD 2.x checkpoint (OpenCLIP text encoder), which is not supported yet (${RUNS})`
  if (!keys.some((k) => k.startsWith(LDM_UNET_PREFIX)))
    return `it has no UNet (no "${LDM_UNET_PREFIX}*" tensors): not a Stable Diffusion checkpoint (a LoRA, VAE or embedding?)`
  if (sdxl) {
    if (!keys.some((k) => k.startsWith(SGM_TE1_PREFIX)))
      return `it is an SDXL checkpoint without its first text encoder ("${SGM_TE1_PREFIX}text_model.*")`
    if (!keys.some((k) => k.startsWith(SGM_TE2_PREFIX)))
      return `it is an SDXL checkpoint without its second text encoder ("${SGM_TE2_PREFIX}*")`
  } else if (!keys.some((k) => k.startsWith(LDM_TEXT_PREFIX)))
    return `it has no CLIP text encoder ("${LDM_TEXT_PREFIX}text_model.*")`
  if (!keys.some((k) => k.startsWith(LDM_VAE_PREFIX))) return `it has no VAE ("${LDM_VAE_PREFIX}*")`
  return undefined
}

async function ldmSource(file: string): Promise<CheckpointSource> {
  // A pickled .ckpt is read safely (forbidden globals refused by name); its tensors are byte ranges of the file.
  const header = (await readPickleHeader(file, { requireRanges: true })) ?? (await readHeader(file))
  const keys = [...header.tensors.keys()]
  // SGM layout (SDXL base): conditioner.embedders.N.*, detected by prefix, never by a layer count.
  const sdxl = keys.some((k) => k.startsWith('conditioner.embedders.'))
  const why = unsupportedFamily(keys, sdxl)
  if (why) throw new SourceError(`${path.basename(file)}: ${why} (${file})`, 'unsupported-checkpoint')
  const entries = [...header.tensors.entries()] as [string, TensorInfo][]
  const text = sourcesFromFile(file, entries, sdxl ? sgmTextEncoder1Key : textEncoderKey)
  const text2 = sdxl ? openClipSources(file, entries, SGM_TE2_PREFIX) : undefined
  const vaeKeys = keys.filter((k) => k.startsWith(LDM_VAE_PREFIX)).map((k) => k.slice(LDM_VAE_PREFIX.length))
  const up = ldmVaeUpBlocks(vaeKeys)
  const vae = sourcesFromFile(file, entries, (k) =>
    k.startsWith(LDM_VAE_PREFIX)
      ? vaeKey(k.slice(LDM_VAE_PREFIX.length), header.tensors.get(k)?.shape ?? [], up)
      : undefined,
  )
  const { map } = mapLdmUnetKeys(keys)
  const inverse = new Map<string, string>()
  for (const [canonical, ldm] of map) inverse.set(ldm, canonical)
  const unet = sourcesFromFile(
    file,
    entries,
    (k) =>
      inverse.get(k) ??
      (k.startsWith(LDM_UNET_PREFIX) ? sgmLabelEmbKey(k.slice(LDM_UNET_PREFIX.length)) : undefined),
  )
  return {
    kind: 'ldm-single-file',
    family: sdxl ? 'sdxl' : 'sd-1',
    path: file,
    files: [file],
    components: { text_encoder: text, ...(text2 ? { text_encoder_2: text2 } : {}), unet, vae },
    ignored: keys.length - text.size - (text2?.size ?? 0) - vae.size - unet.size,
    arch: sdxl
      ? {
          hiddenAct: { text_encoder: 'quick_gelu', text_encoder_2: 'gelu' },
          unetHeads: { headDim: 64 },
          additionTimeEmbedDim: timeEmbedDim(unet, projectionDim(text2)),
        }
      : { hiddenAct: { text_encoder: 'quick_gelu' } },
  }
}

const DIFFUSERS_FILES: Record<WeightComponent, string[]> = {
  unet: ['unet/diffusion_pytorch_model.safetensors', 'unet/model.safetensors'],
  vae: ['vae/diffusion_pytorch_model.safetensors', 'vae/model.safetensors'],
  text_encoder: ['text_encoder/model.safetensors', 'text_encoder/diffusion_pytorch_model.safetensors'],
  text_encoder_2: ['text_encoder_2/model.safetensors', 'text_encoder_2/diffusion_pytorch_model.safetensors'],
}

async function diffusersSource(dir: string): Promise<CheckpointSource> {
  const components: CheckpointSource['components'] = {}
  const files: string[] = []
  let ignored = 0
  // A `text_encoder_2/` folder (and the UNet's add_embedding, checked below) marks an SDXL pipeline.
  const sdxl = fs.existsSync(path.join(dir, 'text_encoder_2'))
  if (sdxl && !fs.existsSync(path.join(dir, 'text_encoder')))
    throw new SourceError(
      `${dir}: it has text_encoder_2/ but no text_encoder/: an SDXL refiner, which is not supported yet (${RUNS})`,
      'unsupported-checkpoint',
    )
  const parts: WeightComponent[] = [
    'text_encoder',
    ...(sdxl ? ['text_encoder_2' as const] : []),
    'unet',
    'vae',
  ]
  for (const c of parts) {
    const candidates = DIFFUSERS_FILES[c].map((f) => path.join(dir, f))
    const file = candidates.find((f) => fs.existsSync(f))
    if (!file) {
      const bin = path.join(
        dir,
        c,
        c.startsWith('text_encoder') ? 'pytorch_model.bin' : 'diffusion_pytorch_model.bin',
      )
      if (fs.existsSync(bin)) await refusePickle(bin)
      throw new SourceError(
        `${dir}: the diffusers folder has no ${c} weights in safetensors format (looked for ${DIFFUSERS_FILES[c].join(', ')})`,
        'missing-component',
      )
    }
    const header = await readHeader(file)
    const entries = [...header.tensors.entries()] as [string, TensorInfo][]
    const map =
      c === 'text_encoder'
        ? sourcesFromFile(file, entries, textEncoderKey)
        : c === 'text_encoder_2'
          ? sourcesFromFile(file, entries, textEncoder2Key)
          : c === 'vae'
            ? sourcesFromFile(file, entries, (k) => vaeKey(k, header.tensors.get(k)?.shape ?? [], 0))
            : sourcesFromFile(file, entries, (k) => k)
    if (c === 'unet' && !sdxl && entries.some(([k]) => k.startsWith('add_embedding.')))
      throw new SourceError(
        `${dir}: the UNet takes SDXL added conditioning (add_embedding) but there is no text_encoder_2/`,
        'unsupported-checkpoint',
      )
    if (c.startsWith('text_encoder') && !map.has('text_model.embeddings.token_embedding.weight'))
      throw new SourceError(
        `${file}: not a CLIP text encoder (no text_model.embeddings.*)`,
        'unsupported-checkpoint',
      )
    ignored += entries.length - map.size
    components[c] = map
    files.push(file)
  }
  const arch: SourceArch = { hiddenAct: {} }
  for (const c of ['text_encoder', 'text_encoder_2'] as const) {
    const act = readJsonObject(path.join(dir, c, 'config.json'))?.hidden_act
    const fallback = c === 'text_encoder_2' ? 'gelu' : 'quick_gelu'
    if (components[c]) arch.hiddenAct[c] = act === 'gelu' || act === 'quick_gelu' ? act : fallback
  }
  if (sdxl) {
    const cfg = readJsonObject(path.join(dir, 'unet', 'config.json'))
    const heads = cfg?.num_attention_heads ?? cfg?.attention_head_dim
    arch.unetHeads =
      Array.isArray(heads) && heads.every((h) => typeof h === 'number')
        ? { perLevel: heads as number[] }
        : { headDim: 64 }
    const t = cfg?.addition_time_embed_dim
    arch.additionTimeEmbedDim =
      typeof t === 'number'
        ? t
        : timeEmbedDim(components.unet ?? new Map(), projectionDim(components.text_encoder_2))
  }
  return { kind: 'diffusers', family: sdxl ? 'sdxl' : 'sd-1', path: dir, files, components, ignored, arch }
}

/** True for a folder holding ready ONNX graphs (`unet/model.onnx`), which need no conversion. */
export function isOnnxPipeline(p: string): boolean {
  return fs.existsSync(path.join(p, 'unet', 'model.onnx'))
}

export async function openCheckpointSource(p: string): Promise<CheckpointSource> {
  let abs = path.resolve(p)
  let st: fs.Stats
  try {
    st = fs.statSync(abs)
    // Links are resolved: the cache hard-links the real file (a link to a symlink would point ORT outside).
    abs = fs.realpathSync(abs)
  } catch {
    throw new SourceError(`${abs}: no such file or folder`, 'not-found')
  }
  if (st.isDirectory()) {
    if (!fs.existsSync(path.join(abs, 'model_index.json')) && !fs.existsSync(path.join(abs, 'unet')))
      throw new SourceError(`${abs}: not a diffusers folder (no model_index.json, no unet/)`, 'not-a-model')
    return diffusersSource(abs)
  }
  return ldmSource(abs)
}
