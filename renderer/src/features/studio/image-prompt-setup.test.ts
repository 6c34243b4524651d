import { describe, expect, it } from 'vitest'
import { missingForImagePrompts, missingText, setupFiles } from './image-prompt-setup'

describe('image prompts: what the library lacks and what to install', () => {
  it('needs an adapter that fits the checkpoint (unknown family fits) and any image encoder', () => {
    expect(missingForImagePrompts('sd-1', [], [])).toEqual({ adapter: true, encoder: true })
    expect(missingForImagePrompts('sd-1', [{ family: 'sdxl' }], [{}])).toEqual({
      adapter: true,
      encoder: false,
    })
    expect(missingForImagePrompts('sd-1', [{ family: null }], [{}])).toEqual({
      adapter: false,
      encoder: false,
    })
    expect(missingForImagePrompts('sdxl', [{ family: 'sdxl' }], [])).toEqual({
      adapter: false,
      encoder: true,
    })
    expect(missingForImagePrompts(undefined, [{ family: 'sdxl' }], [{}]).adapter).toBe(false)
  })

  it('offers h94/IP-Adapter files for SD 1.x and SDXL, only what is missing', () => {
    expect(setupFiles('sd-1', { adapter: true, encoder: true })?.map((f) => `${f.repo} ${f.path}`)).toEqual([
      'h94/IP-Adapter models/ip-adapter_sd15.safetensors',
      'h94/IP-Adapter models/image_encoder/model.safetensors',
    ])
    expect(setupFiles('sdxl', { adapter: true, encoder: false })?.map((f) => f.path)).toEqual([
      'sdxl_models/ip-adapter_sdxl_vit-h.safetensors',
    ])
    // no checkpoint chosen yet: SD 1.5's
    expect(setupFiles(null, { adapter: false, encoder: true })?.map((f) => f.path)).toEqual([
      'models/image_encoder/model.safetensors',
    ])
    expect(setupFiles('flux-1', { adapter: true, encoder: true })).toBeUndefined()
  })

  it('says what is missing in one sentence', () => {
    expect(missingText('Blend', 'SD 1.x', { adapter: true, encoder: true })).toBe(
      'Blend needs an IP-Adapter for SD 1.x and a CLIP image encoder; neither is installed.',
    )
    expect(missingText('Blend', 'SDXL', { adapter: false, encoder: true })).toBe(
      'Blend needs a CLIP image encoder; none is installed.',
    )
  })
})
