import { describe, expect, it } from 'vitest'
import {
  generationResize,
  MAX_GENERATION_PIXELS,
  MAX_GENERATION_SIDE,
} from '../../../../preload/image-limits'
import { tooLargeError, tooLargeText } from './input-size'
import { buildRequest, DEFAULT_PARAMS } from './params'

describe('an input image past the generation limits', () => {
  it('is offered the largest size that fits: aspect kept, multiples of 64, at most 4096 a side', () => {
    expect(generationResize(8000, 8000)).toEqual({ width: 4096, height: 4096 })
    expect(generationResize(4096, 4096)).toBeUndefined()
    expect(generationResize(1024, 768)).toBeUndefined()
    // a long side past 4096 alone (12.0 MP, under the pixel limit) still gets an offer
    expect(generationResize(6000, 2000)).toEqual({ width: 4096, height: 1344 })
    // 6000x4000: the side limit binds before the pixel limit
    expect(generationResize(6000, 4000)).toEqual({ width: 4096, height: 2688 })
    for (const [w, h] of [
      [8000, 8000],
      [9999, 7001],
      [4097, 100],
      [20000, 3000],
      [5000, 5000],
    ] as const) {
      const fit = generationResize(w, h)
      expect(fit, `${w}x${h}`).toBeDefined()
      if (!fit) continue
      expect(fit.width % 64).toBe(0)
      expect(fit.height % 64).toBe(0)
      expect(fit.width).toBeLessThanOrEqual(MAX_GENERATION_SIDE)
      expect(fit.height).toBeLessThanOrEqual(MAX_GENERATION_SIDE)
      expect(fit.width * fit.height).toBeLessThanOrEqual(MAX_GENERATION_PIXELS)
      // the aspect ratio moves by less than one 64-pixel step on the short side
      expect(Math.abs(fit.width / fit.height - w / h)).toBeLessThan(
        (w / h) * (64 / Math.min(fit.width, fit.height)),
      )
      // and it is the largest: each side is less than one 64-pixel step under the ideal scale
      const ideal = Math.min(
        Math.sqrt(MAX_GENERATION_PIXELS / (w * h)),
        MAX_GENERATION_SIDE / w,
        MAX_GENERATION_SIDE / h,
      )
      expect(fit.width).toBeGreaterThan(w * ideal - 64)
      expect(fit.height).toBeGreaterThan(h * ideal - 64)
    }
  })

  it('says so in people words, and Generate refuses with the same words instead of a schema error', () => {
    expect(tooLargeText(8000, 8000)).toBe(
      'This image is 8000×8000 (64.0 MP); one generation pass takes at most 4096 pixels a side and 16.8 MP. ' +
        'The largest size that fits at this aspect ratio is 4096×4096.',
    )
    expect(tooLargeText(512, 512)).toBeUndefined()
    expect(tooLargeError(8000, 8000)).toMatch(/Use “Resize to 4096×4096” above the image first\.$/)
    const p = { ...DEFAULT_PARAMS, model: 'abc', prompt: 'a cat' }
    const png = new Uint8Array([0x89, 0x50])
    expect(() => buildRequest('img2img', p, { image: png, imageWidth: 8000, imageHeight: 8000 })).toThrow(
      /^This image is 8000×8000 .*“Resize to 4096×4096”/,
    )
    expect(buildRequest('img2img', p, { image: png, imageWidth: 4096, imageHeight: 4096 })).toMatchObject({
      width: 4096,
      height: 4096,
    })
  })
})
