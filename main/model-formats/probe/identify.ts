import { PickleRefusedError } from '../pickle'
import { imagePromptModelInfo } from './image-prompt'
import { probeModel as probe } from './index'
import { probeTaesd } from './taesd'
import type { Base, ProbeResult, Variant } from './types'
import { ProbeError } from './types'
import { describeArch, probeUpscaler } from './upscaler'

/** Every kind of model the library can hold. */
export type ModelKind =
  'checkpoint' | 'lora' | 'vae' | 'embedding' | 'upscaler' | 'ip-adapter' | 'image-encoder' | 'taesd'
export const MODEL_KINDS: readonly ModelKind[] = [
  'checkpoint',
  'lora',
  'vae',
  'embedding',
  'upscaler',
  'ip-adapter',
  'image-encoder',
  'taesd',
]

/** What the library records about a model file: the probes' answer in one shape for every kind. */
export interface ProbeInfo {
  /** 'safetensors' | 'ckpt' | 'diffusers' | ... (open string: shown, not interpreted). */
  format: string
  type: ModelKind | null
  family: Base | null
  variant: Variant | null
  architecture: string | null
  /** Why the model is listed but cannot be used (pickle refused, base not runnable yet); null when fine. */
  note: string | null
}

function architecture(r: ProbeResult): string {
  if (r.type === 'lora' && r.lora) {
    const kinds = r.lora.lycoris?.length ? `, LyCORIS ${r.lora.lycoris.join('+')}` : ''
    return `${r.family} LoRA (${r.lora.naming}, rank ${r.lora.rank}${kinds})`
  }
  if (r.type === 'embedding' && r.embedding) return `${r.family} embedding (${r.embedding.vectors} vectors)`
  return r.family
}

/**
 * Models that are not diffusion components, recognised by their tensor layout: upscalers, IP-Adapters and
 * CLIP image encoders. null for anything else (probeModel takes over).
 */
export async function identifyAuxiliary(file: string): Promise<ProbeInfo | null> {
  return (await taesdInfo(file)) ?? (await upscalerInfo(file)) ?? (await imagePromptModelInfo(file))
}

/** TAESD / TAESDXL tiny autoencoders (previews and draft decodes); null otherwise. */
async function taesdInfo(file: string): Promise<ProbeInfo | null> {
  const taesd = await probeTaesd(file)
  if (!taesd) return null
  return {
    format: 'safetensors',
    type: 'taesd',
    family: taesd.family,
    variant: null,
    architecture: `${taesd.family === 'sdxl' ? 'TAESDXL' : 'TAESD'} tiny autoencoder (${[
      taesd.decoder ? 'decoder' : '',
      taesd.encoder ? 'encoder' : '',
    ]
      .filter(Boolean)
      .join(' + ')})`,
    note: taesd.decoder ? null : 'TAESD encoder only: previews and draft decodes need the decoder',
  }
}

/**
 * The one probe for everything the library can hold: upscalers, IP-Adapters and image encoders by their
 * tensor layout, then checkpoints, LoRAs, VAEs and embeddings through probeModel. Only damage throws (bad
 * or truncated safetensors, unreadable file): a pickle or a file the probe does not recognise is still
 * listed, with the reason in `note`.
 */
export async function identifyModel(file: string): Promise<ProbeInfo> {
  const auxiliary = await identifyAuxiliary(file)
  if (auxiliary) return auxiliary
  try {
    const r = await probe(file)
    return {
      format: r.format,
      type: r.type,
      family: r.base,
      variant: r.variant,
      architecture: architecture(r),
      note: r.runnable ? null : (r.reason ?? null),
    }
  } catch (err) {
    if (err instanceof PickleRefusedError) {
      return {
        format: 'pickle',
        type: null,
        family: null,
        variant: null,
        architecture: null,
        note: err.message,
      }
    }
    if (err instanceof ProbeError && err.code !== 'not-found') {
      return {
        format: 'unknown',
        type: null,
        family: null,
        variant: null,
        architecture: null,
        note: err.message,
      }
    }
    throw err
  }
}

/** Upscaler models (ESRGAN / Real-ESRGAN / compact, .safetensors or a safely read .pth); null otherwise. */
async function upscalerInfo(file: string): Promise<ProbeInfo | null> {
  if (!/\.(safetensors|sft|pth|pt|ckpt|bin)$/i.test(file)) return null
  const arch = await probeUpscaler(file).catch(() => null)
  if (!arch) return null
  return {
    format: /\.(safetensors|sft)$/i.test(file) ? 'safetensors' : 'pth',
    type: 'upscaler',
    family: null,
    variant: null,
    architecture: describeArch(arch),
    note: null,
  }
}
