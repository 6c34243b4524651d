/**
 * Hires fix and SD upscale settings of the studio (kept beside the panel's own parameters) and how they
 * join a request. Pure: unit-tested.
 */
import type { GenerateMode, GenerateRequest } from '../../../../preload/contract-types'
import { createStore } from '../studio/store'

export interface HiresSettings {
  enabled: boolean
  scale: number
  upscaler: string
  strength: number
  /** 0 = the base pass's steps. */
  steps: number
}

export interface SdUpscaleSettings {
  enabled: boolean
  scale: number
  upscaler: string
  tileOverlap: number
}

export interface UpscaleSettings {
  hires: HiresSettings
  sdUpscale: SdUpscaleSettings
}

/** A1111 defaults (Hires. fix: x2, Latent, 0.7, same steps; SD upscale: x2, overlap 64). */
export const DEFAULT_UPSCALE_SETTINGS: UpscaleSettings = {
  hires: { enabled: false, scale: 2, upscaler: 'Latent', strength: 0.7, steps: 0 },
  sdUpscale: { enabled: false, scale: 2, upscaler: 'Lanczos', tileOverlap: 64 },
}

export const LATENT_UPSCALERS = [
  'Latent',
  'Latent (nearest)',
  'Latent (nearest-exact)',
  'Latent (bicubic)',
] as const

export const upscaleSettings = createStore<UpscaleSettings>(DEFAULT_UPSCALE_SETTINGS)

export function setHires(patch: Partial<HiresSettings>): void {
  upscaleSettings.set((s) => ({ hires: { ...s.hires, ...patch } }))
}

export function setSdUpscale(patch: Partial<SdUpscaleSettings>): void {
  upscaleSettings.set((s) => ({ sdUpscale: { ...s.sdUpscale, ...patch } }))
}

/** The request with the enabled upscaling step of its mode (txt2img: hires fix; img2img: SD upscale). */
export function withUpscaleOptions(
  mode: GenerateMode,
  req: GenerateRequest,
  s: UpscaleSettings = upscaleSettings.get(),
): GenerateRequest {
  if (mode === 'txt2img' && s.hires.enabled)
    return {
      ...req,
      hires: {
        scale: s.hires.scale,
        upscaler: s.hires.upscaler,
        strength: s.hires.strength,
        ...(s.hires.steps > 0 ? { steps: s.hires.steps } : {}),
      },
    }
  if (mode === 'img2img' && s.sdUpscale.enabled)
    return {
      ...req,
      sdUpscale: {
        scale: s.sdUpscale.scale,
        upscaler: s.sdUpscale.upscaler,
        tileOverlap: s.sdUpscale.tileOverlap,
      },
    }
  return req
}
