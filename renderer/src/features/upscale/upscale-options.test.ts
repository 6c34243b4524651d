import { describe, expect, it } from 'vitest'
import type { GenerateRequest } from '../../../../preload/contract-types'
import { DEFAULT_UPSCALE_SETTINGS, withUpscaleOptions } from './upscale-options'

const base: GenerateRequest = { mode: 'txt2img', model: 'm', prompt: 'p' }

describe('withUpscaleOptions', () => {
  it('adds nothing while disabled', () => {
    expect(withUpscaleOptions('txt2img', base, DEFAULT_UPSCALE_SETTINGS)).toEqual(base)
  })
  it('hires fix for txt2img only, steps 0 = the base steps', () => {
    const s = { ...DEFAULT_UPSCALE_SETTINGS, hires: { ...DEFAULT_UPSCALE_SETTINGS.hires, enabled: true } }
    expect(withUpscaleOptions('txt2img', base, s).hires).toEqual({
      scale: 2,
      upscaler: 'Latent',
      strength: 0.7,
    })
    expect(withUpscaleOptions('img2img', { ...base, mode: 'img2img' }, s).hires).toBeUndefined()
    const steps = { ...s, hires: { ...s.hires, steps: 12, upscaler: '4x-UltraSharp' } }
    expect(withUpscaleOptions('txt2img', base, steps).hires).toMatchObject({
      steps: 12,
      upscaler: '4x-UltraSharp',
    })
  })
  it('SD upscale for img2img', () => {
    const s = {
      ...DEFAULT_UPSCALE_SETTINGS,
      sdUpscale: { ...DEFAULT_UPSCALE_SETTINGS.sdUpscale, enabled: true },
    }
    expect(withUpscaleOptions('img2img', { ...base, mode: 'img2img' }, s).sdUpscale).toEqual({
      scale: 2,
      upscaler: 'Lanczos',
      tileOverlap: 64,
    })
    expect(withUpscaleOptions('inpaint', { ...base, mode: 'inpaint' }, s).sdUpscale).toBeUndefined()
  })
})
