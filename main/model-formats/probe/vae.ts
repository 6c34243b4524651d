import type { KeyView } from './keys'
import type { VaeArch } from './types'
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
