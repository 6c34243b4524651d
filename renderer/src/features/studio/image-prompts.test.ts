import { describe, expect, it } from 'vitest'
import { generateRequestSchema } from '../../../../preload/contract'
import {
  addImagePrompt,
  blendRequest,
  blendSize,
  clearImagePrompts,
  imagePrompts,
  iwOf,
  MAX_IMAGE_PROMPTS,
  removeImagePrompt,
  setImagePromptWeight,
  takesImagePrompts,
  withImagePrompts,
} from './image-prompts'
import { buildRequest, DEFAULT_PARAMS } from './params'

const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47])

describe('image prompt slots', () => {
  it('add, weigh (clamped 0..2), remove; at most five', () => {
    clearImagePrompts()
    expect(addImagePrompt({ name: 'a.png', bytes: png })).toBe(true)
    const id = imagePrompts.get().slots[0]?.id as number
    setImagePromptWeight(id, 3)
    expect(imagePrompts.get().slots[0]?.weight).toBe(2)
    setImagePromptWeight(id, -1)
    expect(imagePrompts.get().slots[0]?.weight).toBe(0)
    for (let i = 1; i < MAX_IMAGE_PROMPTS; i++) addImagePrompt({ name: `${i}`, galleryId: `0000${i}-1` })
    expect(addImagePrompt({ name: 'too many', bytes: png })).toBe(false)
    removeImagePrompt(id)
    expect(imagePrompts.get().slots).toHaveLength(MAX_IMAGE_PROMPTS - 1)
    clearImagePrompts()
  })

  it('join txt2img and img2img requests (bytes or gallery ids, chosen models); other modes untouched', () => {
    const state = {
      slots: [
        { id: 1, name: 'a', bytes: png, weight: 0.8 },
        { id: 2, name: 'b', galleryId: '00012-5', weight: 0.4 },
      ],
      adapter: 'ip-adapter_sd15',
      encoder: '',
    }
    const base = buildRequest('img2img', { ...DEFAULT_PARAMS, model: 'm', prompt: 'a cat' }, { image: png })
    const r = withImagePrompts('img2img', base, state)
    expect(r.imagePrompts).toEqual([
      { image: png, weight: 0.8 },
      { galleryId: '00012-5', weight: 0.4 },
    ])
    expect(r.ipAdapter).toBe('ip-adapter_sd15')
    expect(r.imageEncoder).toBeUndefined()
    expect(generateRequestSchema.safeParse(r).success).toBe(true)
    expect(withImagePrompts('inpaint', { ...base, mode: 'inpaint' }, state).imagePrompts).toBeUndefined()
    expect(takesImagePrompts('txt2img')).toBe(true)
    expect(takesImagePrompts('outpaint')).toBe(false)
  })

  it('shows Midjourney --iw for a weight (0.5 <-> 1, 1 <-> 3)', () => {
    expect([0, 0.25, 0.5, 0.75, 1].map(iwOf)).toEqual([0, 0.5, 1, 2, 3])
  })
})

describe('Gallery blend', () => {
  it('2-5 gallery images, no text, equal weights, the /blend shapes at the family base size', () => {
    const base = buildRequest('img2img', { ...DEFAULT_PARAMS, model: 'm', prompt: 'a cat' }, { image: png })
    const r = blendRequest(base, ['00001-1', '00002-2'], blendSize('portrait', 512), {
      adapter: '',
      encoder: '',
    })
    expect(r).toMatchObject({ mode: 'txt2img', prompt: '', width: 448, height: 640 })
    expect(r.image).toBeUndefined()
    expect(r.strength).toBeUndefined()
    expect(r.imagePrompts).toEqual([
      { galleryId: '00001-1', weight: 1 },
      { galleryId: '00002-2', weight: 1 },
    ])
    expect(generateRequestSchema.safeParse(r).success).toBe(true)
    expect(blendSize('landscape', 1024)).toEqual({ width: 1280, height: 832 })
    expect(blendSize('square', 512)).toEqual({ width: 512, height: 512 })
    expect(() => blendRequest(base, ['x'], blendSize('square', 512))).toThrow(/2 to 5/)
    expect(() => blendRequest(base, ['1', '2', '3', '4', '5', '6'], blendSize('square', 512))).toThrow(
      /2 to 5/,
    )
  })
})
