import { describeArch } from '../engine/upscale/arch'
import { imagePromptModelInfo } from '../engine/ipadapter/probe'
import { probeUpscaler } from '../engine/upscale/weights'
import { PickleRefusedError } from '../model-formats/pickle'
import { ProbeError, probeModel as probe } from '../model-formats/probe'
import { probeTaesd } from '../model-formats/probe/taesd'
import type { ProbeResult } from '../model-formats/probe'
import type { ProbeInfo } from './types'

function architecture(r: ProbeResult): string {
  if (r.type === 'lora' && r.lora) return `${r.family} LoRA (${r.lora.naming}, rank ${r.lora.rank})`
  if (r.type === 'embedding' && r.embedding) return `${r.family} embedding (${r.embedding.vectors} vectors)`
  return r.family
}

/**
 * The library's view of model-formats/probe. Only damage throws (bad or truncated safetensors, unreadable
 * file): a pickle or a file the probe does not recognise is still listed, with the reason in `note`.
 */
export async function probeModel(file: string): Promise<ProbeInfo> {
  const taesd = await probeTaesd(file)
  if (taesd)
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
  const upscaler = await upscalerInfo(file)
  if (upscaler) return upscaler
  const imagePrompt = await imagePromptModelInfo(file)
  if (imagePrompt) return imagePrompt
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
