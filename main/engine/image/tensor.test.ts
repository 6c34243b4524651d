import { existsSync } from 'node:fs'
import path from 'node:path'
import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { binariseMask, maskedImageTensor, toLatentMask } from './latent-mask'
import { denormalize, imageToTensor, latentPreview, latentPreviewPng, tensorToImage } from './tensor'
import type { Mask, RawImage } from './types'

const oracleDir = path.resolve(__dirname, '../../../../shared/oracle')
const haveOracle = existsSync(path.join(oracleDir, 'inpaint_9ch_ddim.safetensors'))
if (!haveOracle) console.warn(`skipping oracle image tests: ${oracleDir} not found`)

async function readCase(file: string, names: string[]): Promise<Record<string, Float32Array | Uint8Array>> {
  const f = await SafetensorsFile.open(path.join(oracleDir, file))
  try {
    const out: Record<string, Float32Array | Uint8Array> = {}
    for (const n of names) {
      out[n] = f.info(n).dtype === 'U8' ? await f.readRaw(n) : await f.readFloat32(n)
    }
    return out
  } finally {
    await f.close()
  }
}

describe('imageToTensor / tensorToImage', () => {
  it('x/255·2−1 in NCHW and back', () => {
    const img: RawImage = {
      data: Uint8Array.from([0, 128, 255, 64, 32, 16]),
      width: 2,
      height: 1,
      channels: 3,
    }
    const t = imageToTensor(img)
    expect(t.length).toBe(6)
    expect(t[0]).toBe(-1) // R of pixel 0
    expect(t[1]).toBe(Math.fround(2 * Math.fround(64 / 255) - 1)) // R of pixel 1
    expect(t[2]).toBe(Math.fround(2 * Math.fround(128 / 255) - 1)) // G of pixel 0
    expect(t[4]).toBe(1)
    expect([...tensorToImage(t, 2, 1).data]).toEqual([...img.data])
  })

  it('round trip is exact for every byte value', () => {
    const data = Uint8Array.from({ length: 256 * 3 }, (_, i) => i % 256)
    const img: RawImage = { data, width: 256, height: 1, channels: 3 }
    expect(tensorToImage(imageToTensor(img), 256, 1).data).toEqual(data)
  })

  it('clamps and rounds half to even', () => {
    const t = new Float32Array([-3, 3, 0, 0, 0, 0])
    const out = tensorToImage(t, 2, 1)
    expect([out.data[0], out.data[3]]).toEqual([0, 255])
    expect(out.data[1]).toBe(128) // 0 → 0.5 → 127.5 → 128 (even)
  })
})

describe('latent preview', () => {
  it('gives an h×w RGB image and a scaled PNG', async () => {
    const lw = 12
    const lh = 8
    const lat = Float32Array.from({ length: 4 * lw * lh }, (_, i) => Math.sin(i))
    const img = latentPreview(lat, lw, lh)
    expect([img.width, img.height, img.channels, img.data.length]).toEqual([12, 8, 3, 12 * 8 * 3])
    const png = await latentPreviewPng(lat, lw, lh)
    const meta = await sharp(png).metadata()
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 48, 32])
  })

  it('uses the A1111 SD1 factors', () => {
    const lat = new Float32Array([1, 0, 0, 0]) // one pixel, only channel 0 = 1
    const img = latentPreview(lat, 1, 1, 'sd1')
    expect([...img.data]).toEqual([0.298, 0.207, 0.208].map((v) => Math.round(((v + 1) / 2) * 255)))
  })
})

describe('latent masks', () => {
  it('PIL nearest samples pixel centres, torch nearest the block corner', () => {
    // 16×16 mask with one white 4×4 block at (4..7, 4..7): PIL picks source (4, 12), torch (0, 8)
    const data = new Uint8Array(256)
    for (let y = 4; y < 8; y++) for (let x = 4; x < 8; x++) data[y * 16 + x] = 255
    const m: Mask = { data, width: 16, height: 16, channels: 1 }
    const pil = toLatentMask(m, 'pil-nearest')
    const torch = toLatentMask(m, 'torch-nearest')
    expect([pil.width, pil.height]).toEqual([2, 2])
    expect([...pil.data]).toEqual([1, 0, 0, 0])
    expect([...torch.data]).toEqual([0, 0, 0, 0])
    // shifted block (0..3): torch sees it, PIL does not
    const d2 = new Uint8Array(256)
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) d2[y * 16 + x] = 255
    const m2: Mask = { data: d2, width: 16, height: 16, channels: 1 }
    expect([...toLatentMask(m2, 'pil-nearest').data]).toEqual([0, 0, 0, 0])
    expect([...toLatentMask(m2, 'torch-nearest').data]).toEqual([1, 0, 0, 0])
  })

  it('PIL nearest keeps greys (/255), torch binarises at 128', () => {
    const m: Mask = { data: new Uint8Array(64).fill(127), width: 8, height: 8, channels: 1 }
    expect(toLatentMask(m, 'pil-nearest').data[0]).toBe(Math.fround(127 / 255))
    expect(toLatentMask(m, 'torch-nearest').data[0]).toBe(0)
    m.data.fill(128)
    expect(toLatentMask(m, 'torch-nearest').data[0]).toBe(1)
  })

  it('A1111: bicubic to latent size, rounded', () => {
    const data = new Uint8Array(32 * 32)
    for (let y = 0; y < 32; y++) for (let x = 0; x < 16; x++) data[y * 32 + x] = 255
    const lm = toLatentMask({ data, width: 32, height: 32, channels: 1 }, 'a1111')
    expect([lm.width, lm.height]).toEqual([4, 4])
    expect([...lm.data.subarray(0, 4)]).toEqual([1, 1, 0, 0])
  })

  it.skipIf(!haveOracle)(
    'matches diffusers 0.21.4 9-channel inpaint (mask_processed, UNet mask channel, masked_image)',
    async () => {
      const c = await readCase('inpaint_9ch_ddim.safetensors', [
        'image_uint8_hwc',
        'mask_uint8_hw',
        'mask_processed',
        'unet_inputs',
        'masked_image',
      ])
      const mask: Mask = { data: c.mask_uint8_hw as Uint8Array, width: 64, height: 64, channels: 1 }
      expect(binariseMask(mask)).toEqual(c.mask_processed)
      const lm = toLatentMask(mask, 'torch-nearest')
      const unet = c.unet_inputs as Float32Array
      // unet_inputs [10, 2, 9, 8, 8]: channel 4 of step 0, batch 0
      expect(lm.data).toEqual(unet.subarray(4 * 64, 5 * 64))
      const img: RawImage = { data: c.image_uint8_hwc as Uint8Array, width: 64, height: 64, channels: 3 }
      expect(maskedImageTensor(imageToTensor(img), mask)).toEqual(c.masked_image)
    },
  )

  it.skipIf(!haveOracle)('output_image → postprocessed exactly as diffusers', async () => {
    const c = await readCase('img2img_euler.safetensors', ['output_image', 'output_image_postprocessed'])
    expect(denormalize(c.output_image as Float32Array)).toEqual(c.output_image_postprocessed)
  })
})
