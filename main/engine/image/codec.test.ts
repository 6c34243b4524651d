import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { decodeImage, decodeImageWithAlpha, encodePng, ImageDecodeError, resizeLanczos } from './codec'
import type { RawImage } from './types'

describe('codec', () => {
  it('decodes 16-bit PNGs to 8-bit RGB', async () => {
    const png16 = await sharp({
      create: { width: 4, height: 2, channels: 3, background: { r: 200, g: 10, b: 30 } },
    })
      .toColourspace('rgb16')
      .png()
      .toBuffer()
    expect((await sharp(png16).metadata()).depth).toBe('ushort')
    const d = await decodeImage(png16)
    expect([d.width, d.height, d.channels, d.data.length]).toEqual([4, 2, 3, 24])
    expect([...d.data.subarray(0, 3)]).toEqual([200, 10, 30])
  })

  it('decodes JPEG and grey PNG to RGB; keeps alpha on request', async () => {
    const jpg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
      .jpeg()
      .toBuffer()
    expect((await decodeImage(jpg)).channels).toBe(3)
    const grey: RawImage = { data: new Uint8Array(16).fill(77), width: 4, height: 4, channels: 1 }
    const g = await decodeImage(await encodePng(grey))
    expect([...g.data.subarray(0, 3)]).toEqual([77, 77, 77])
    const rgba: RawImage = { data: new Uint8Array(4 * 4).fill(128), width: 2, height: 2, channels: 4 }
    const png = await encodePng(rgba)
    expect((await decodeImageWithAlpha(png)).channels).toBe(4)
    expect((await decodeImage(png)).data[0]).toBe(191) // 128 over white at alpha 128
  })

  it('names the file when decoding fails', async () => {
    await expect(decodeImage(new Uint8Array([1, 2, 3, 4]), { name: 'broken.png' })).rejects.toThrow(
      ImageDecodeError,
    )
    await expect(decodeImage(new Uint8Array([1, 2, 3, 4]), { name: 'broken.png' })).rejects.toThrow(
      /broken\.png/,
    )
  })

  it('encodes deterministically and round-trips pixels', async () => {
    const img: RawImage = {
      data: Uint8Array.from({ length: 10 * 6 * 3 }, (_, i) => (i * 29) % 256),
      width: 10,
      height: 6,
      channels: 3,
    }
    const a = await encodePng(img)
    expect(a.equals(await encodePng(img))).toBe(true)
    expect((await decodeImage(a)).data).toEqual(img.data)
  })

  it('resizes 1-, 3- and 4-channel images to the exact size', async () => {
    for (const ch of [1, 3, 4] as const) {
      const data = new Uint8Array(20 * 10 * ch).fill(90)
      // opaque alpha: libvips resizes RGBA premultiplied, so a translucent colour may move by a few levels
      if (ch === 4) for (let i = 3; i < data.length; i += 4) data[i] = 255
      const img: RawImage = { data, width: 20, height: 10, channels: ch }
      const r = await resizeLanczos(img, 7, 13)
      expect([r.width, r.height, r.channels, r.data.length]).toEqual([7, 13, ch, 7 * 13 * ch])
      expect(r.data.every((v, i) => v === (ch === 4 && i % 4 === 3 ? 255 : 90))).toBe(true)
    }
  })
})
