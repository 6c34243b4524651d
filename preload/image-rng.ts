import type { ImageParameters } from './contract-types'

/**
 * The noise generator an image was made with, as a restore should pick it. ComfyUI draws its start noise with
 * torch's CPU generator. In an A1111 infotext `RNG: CPU` is the CPU one; `GPU` / `NV` and no `RNG` at all (A1111
 * only writes it when its option differs from the default, GPU) are the NVIDIA-compatible Philox generator.
 * InvokeAI's noise is neither: undefined (keep the current choice).
 */
export function imageRng(p: Pick<ImageParameters, 'source' | 'rng' | 'settings'>): 'cpu' | 'gpu' | undefined {
  if (p.source === 'comfyui') return 'cpu'
  if (p.source === 'invokeai_metadata') return undefined
  return (p.rng ?? p.settings.RNG)?.trim().toLowerCase() === 'cpu' ? 'cpu' : 'gpu'
}
