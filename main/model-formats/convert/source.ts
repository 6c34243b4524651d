import fs from 'node:fs'
import path from 'node:path'
import type { WeightSource } from '../../engine/graphs/weights'
import { sourcesFromFile } from '../../engine/graphs/weights'
import { refusePickle } from '../pickle'
import { readHeader } from '../safetensors'
import type { TensorInfo } from '../safetensors'
import { LDM_TEXT_PREFIX, LDM_VAE_PREFIX, ldmVaeUpBlocks, textEncoderKey, vaeKey } from './keys'
import { LDM_UNET_PREFIX, mapLdmUnetKeys } from './ldm-unet-keys'

/**
 * A checkpoint as per-component weight sources in canonical (diffusers) naming, read from headers only:
 * a single-file LDM checkpoint (A1111/Civitai) or a diffusers folder.
 */

export type SourceKind = 'ldm-single-file' | 'diffusers'
export type WeightComponent = 'text_encoder' | 'unet' | 'vae'

export interface CheckpointSource {
  kind: SourceKind
  /** The path the user named (file or folder). */
  path: string
  /** Weight files read (absolute), the cache key is computed over these. */
  files: string[]
  components: Partial<Record<WeightComponent, Map<string, WeightSource>>>
  /** Tensors that mapped to nothing (EMA copies, position_ids, ...), counted for diagnostics. */
  ignored: number
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

function unsupportedFamily(file: string, keys: string[]): string | undefined {
  if (keys.some((k) => k.startsWith('conditioner.embedders.')))
    return 'it is an SDXL checkpoint; only SD 1.x checkpoints can run so far'
  if (keys.some((k) => k.startsWith('cond_stage_model.model.')))
    return 'it is an SD 2.x checkpoint (OpenCLIP text encoder); only SD 1.x checkpoints can run so far'
  if (!keys.some((k) => k.startsWith(LDM_UNET_PREFIX)))
    return `it has no UNet (no "${LDM_UNET_PREFIX}*" tensors): not a Stable Diffusion checkpoint (a LoRA, VAE or embedding?)`
  if (!keys.some((k) => k.startsWith(LDM_TEXT_PREFIX)))
    return `it has no CLIP text encoder ("${LDM_TEXT_PREFIX}text_model.*")`
  if (!keys.some((k) => k.startsWith(LDM_VAE_PREFIX))) return `it has no VAE ("${LDM_VAE_PREFIX}*")`
  void file
  return undefined
}

async function ldmSource(file: string): Promise<CheckpointSource> {
  await refusePickle(file)
  const header = await readHeader(file)
  const keys = [...header.tensors.keys()]
  const why = unsupportedFamily(file, keys)
  if (why) throw new SourceError(`${path.basename(file)}: ${why} (${file})`, 'unsupported-checkpoint')
  const entries = [...header.tensors.entries()] as [string, TensorInfo][]
  const text = sourcesFromFile(file, entries, textEncoderKey)
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
  const unet = sourcesFromFile(file, entries, (k) => inverse.get(k))
  return {
    kind: 'ldm-single-file',
    path: file,
    files: [file],
    components: { text_encoder: text, unet, vae },
    ignored: keys.length - text.size - vae.size - unet.size,
  }
}

const DIFFUSERS_FILES: Record<WeightComponent, string[]> = {
  unet: ['unet/diffusion_pytorch_model.safetensors', 'unet/model.safetensors'],
  vae: ['vae/diffusion_pytorch_model.safetensors', 'vae/model.safetensors'],
  text_encoder: ['text_encoder/model.safetensors', 'text_encoder/diffusion_pytorch_model.safetensors'],
}

async function diffusersSource(dir: string): Promise<CheckpointSource> {
  const components: CheckpointSource['components'] = {}
  const files: string[] = []
  let ignored = 0
  for (const c of ['text_encoder', 'unet', 'vae'] as const) {
    const candidates = DIFFUSERS_FILES[c].map((f) => path.join(dir, f))
    const file = candidates.find((f) => fs.existsSync(f))
    if (!file) {
      const bin = path.join(
        dir,
        c,
        c === 'text_encoder' ? 'pytorch_model.bin' : 'diffusion_pytorch_model.bin',
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
        : c === 'vae'
          ? sourcesFromFile(file, entries, (k) => vaeKey(k, header.tensors.get(k)?.shape ?? [], 0))
          : sourcesFromFile(file, entries, (k) => k)
    if (c === 'unet' && entries.some(([k]) => k.startsWith('add_embedding.')))
      throw new SourceError(
        `${dir}: it is an SDXL pipeline; only SD 1.x can run so far`,
        'unsupported-checkpoint',
      )
    if (c === 'text_encoder' && !map.has('text_model.embeddings.token_embedding.weight'))
      throw new SourceError(
        `${file}: not a CLIP text encoder (no text_model.embeddings.*)`,
        'unsupported-checkpoint',
      )
    ignored += entries.length - map.size
    components[c] = map
    files.push(file)
  }
  return { kind: 'diffusers', path: dir, files, components, ignored }
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
