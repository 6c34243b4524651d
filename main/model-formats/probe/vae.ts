import type { KeyView } from './keys'
import path from 'node:path'
import type { Base, VaeArch } from './types'
import { ProbeError } from './types'

export const DEFAULT_SCALING = { 'sd-1': 0.18215, 'sd-2': 0.18215, sdxl: 0.13025 } as const

/** Whether `v` holds an AutoencoderKL in LDM (`encoder.down.N.block.M`) or diffusers (`down_blocks`) naming. */
export function looksLikeVae(v: KeyView): boolean {
  return v.has('encoder.conv_in.weight') && v.has('decoder.conv_in.weight')
}

/** VAE architecture from either naming; `v` is under the VAE's own prefix (e.g. `first_stage_model.`). */
export function vaeArch(v: KeyView, scalingFactor: number): VaeArch {
  if (!looksLikeVae(v)) throw new ProbeError('no VAE encoder/decoder weights found', 'missing-tensor')
  const ldm = v.hasAny('encoder.down.')
  const [downRe, block] = ldm
    ? [/^encoder\.down\.(\d+)\./, 'block']
    : [/^encoder\.down_blocks\.(\d+)\./, 'resnets']
  const down = ldm ? 'encoder.down' : 'encoder.down_blocks'
  const levels = v.indices(downRe)
  const channels: number[] = []
  let layersPerBlock = 0
  for (const i of levels) {
    const resnets = v.indices(new RegExp(`^${down.replace('.', '\\.')}\\.${i}\\.${block}\\.(\\d+)\\.`))
    const last = resnets[resnets.length - 1]
    if (last === undefined)
      throw new ProbeError(`VAE encoder block ${i} has no resnets`, 'unsupported-architecture')
    if (i === levels[0]) layersPerBlock = resnets.length
    channels.push(v.dim(`${down}.${i}.${block}.${last}.conv2.weight`, 0))
  }
  return {
    inChannels: v.dim('encoder.conv_in.weight', 1),
    outChannels: v.dim('decoder.conv_out.weight', 0),
    blockOutChannels: channels,
    layersPerBlock,
    latentChannels: v.dim('decoder.conv_in.weight', 1),
    hasQuantConv: v.has('quant_conv.weight'),
    scalingFactor,
  }
}

/**
 * SD 1.x or SDXL for a standalone VAE. Their weights have the same shapes (and SD 1's VAEs are often used on
 * SD 2), so only what surrounds them tells: Civitai's base model (a sidecar), `modelspec.architecture` in the
 * metadata, a diffusers config's scaling factor (SDXL's 0.13025), then the name (`sdxl_vae`, `…-xl-…`; the
 * SD 1 VAEs vae-ft-mse / vae-ft-ema / kl-f8-anime / orangemix by their names). SD 2.x uses SD 1's VAE, so
 * it is filed as SD 1.x. null when nothing says; a VAE whose latents are not 4 channels (SD3, Flux) is
 * never SD 1 or SDXL.
 */
export function vaeBase(o: {
  file: string
  latentChannels: number
  meta?: Record<string, string>
  civitaiBaseModel?: string
  scalingFactor?: number
}): Base | null {
  if (o.latentChannels !== 4) return null
  const civitai = o.civitaiBaseModel?.trim().toLowerCase() ?? ''
  // SD 2.x uses SD 1's VAE (kl-f8): such a VAE is filed as SD 1.x, the family Atelier runs.
  if (/^sd ?[12]\b/.test(civitai)) return 'sd-1'
  if (/^(sdxl|pony(?! v7)|illustrious|noobai)\b/.test(civitai)) return 'sdxl'
  const arch = o.meta?.['modelspec.architecture']?.toLowerCase() ?? ''
  if (arch.startsWith('stable-diffusion-xl')) return 'sdxl'
  if (arch.startsWith('stable-diffusion-v1') || arch.startsWith('stable-diffusion-v2')) return 'sd-1'
  if (o.scalingFactor !== undefined && Math.abs(o.scalingFactor - DEFAULT_SCALING.sdxl) < 1e-6) return 'sdxl'
  const name = path.basename(o.file).toLowerCase()
  if (/sdxl|(^|[^a-z])xl([^a-z]|$)/.test(name)) return 'sdxl'
  if (/vae-ft-(mse|ema)|kl-f8-anime|orangemix|(^|[^a-z0-9])sd-?1[-_.]?[45]/.test(name)) return 'sd-1'
  return null
}
