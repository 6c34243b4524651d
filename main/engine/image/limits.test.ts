import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { hugePng } from '../metadata/hostile-fixtures'
import { checkSize } from '../pipelines/generate'
import { hiresTarget, sdUpscaleTarget } from '../upscale/hires'
import { UpscaleService } from '../upscale/service'
import { decodeImage, encodePng, resizeLanczos } from './codec'
import {
  checkPixels,
  ImageSizeError,
  largestWithin,
  MAX_GENERATION_PIXELS,
  MAX_OUTPUT_PIXELS,
} from './limits'
import { createImage } from './types'

describe('pixel limits (attack 5)', () => {
  it('names the limit and offers the largest size at the same aspect ratio', () => {
    expect(() => checkPixels(65536, 65536, 'upscale')).toThrow(
      'upscale: 65536x65536 (4295 MP) is larger than the limit of 67.1 MP (8192x8192 pixels); ' +
        'the largest allowed at this aspect ratio is 8192x8192',
    )
    expect(largestWithin(3000, 1000, 1_000_000, 8)).toEqual({ width: 1728, height: 576 })
    expect(largestWithin(16000, 16000, MAX_GENERATION_PIXELS, 8)).toEqual({ width: 4096, height: 4096 })
    const b = largestWithin(1000, 999, 500_000, 1)
    expect(b.width * b.height).toBeLessThanOrEqual(500_000)
    expect(() => checkPixels(8192, 8192, 'ok')).not.toThrow()
  })

  it('a 16000x16000 PNG of a few hundred KB is refused from its header', async () => {
    const png = hugePng(16000, 16000)
    expect(png.length).toBeLessThan(1_000_000)
    const before = process.memoryUsage().rss
    const t0 = performance.now()
    await expect(decodeImage(png, { name: 'bomb.png' })).rejects.toThrow(
      /bomb\.png: 16000x16000 \(256 MP\) is larger than the limit of 36 MP .* largest allowed at this aspect ratio is 6000x6000/,
    )
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024)
    // a small one of the same construction decodes
    const ok = await decodeImage(hugePng(64, 32))
    expect([ok.width, ok.height]).toEqual([64, 32])
  })

  it('Lanczos x16 of 4096x4096 is refused before any pixel is made', async () => {
    const img = createImage(4096, 4096, 3)
    const t0 = performance.now()
    await expect(
      new UpscaleService().upscale(img, { upscaler: { kind: 'lanczos' }, scale: 16 }),
    ).rejects.toThrow(/upscale: 65536x65536 .* largest allowed at this aspect ratio is 8192x8192/)
    await expect(resizeLanczos(createImage(8, 8, 3), 100_000, 100_000)).rejects.toThrow(ImageSizeError)
    expect(performance.now() - t0).toBeLessThan(2000)
  })

  it('an upscaler model with tile 0 on a large picture is refused before it runs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-limits-'))
    const file = path.join(dir, 'RRDB_x4.pth')
    fs.writeFileSync(file, 'not loaded')
    await expect(
      new UpscaleService().upscale(createImage(2048, 2048, 3), {
        upscaler: { kind: 'model', file },
        scale: 16,
        tile: 0,
      }),
    ).rejects.toThrow(/upscale: 32768x32768 .* largest allowed at this aspect ratio is 8192x8192/)
    await expect(
      new UpscaleService().upscale(createImage(1500, 1024, 3), {
        upscaler: { kind: 'model', file },
        scale: 2,
        tile: 0,
      }),
    ).rejects.toThrow(/tile 0 .* 1500x1024/)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('hires fix, SD upscale and encodes stay within the output limits', async () => {
    expect(() => hiresTarget(4096, 4096, { scale: 2 })).toThrow(/hires fix: 8192x8192 .* 4096x4096/)
    expect(hiresTarget(1024, 1024, { scale: 2 })).toEqual({ width: 2048, height: 2048 })
    expect(() => sdUpscaleTarget(4096, 2048, 8)).toThrow(/SD upscale: 32768x16384 .* 11584x5792/)
    expect(MAX_OUTPUT_PIXELS).toBe(8192 * 8192)
    expect(() => checkSize(4096, 8192)).toThrow(/size: 4096x8192 .* 2896x5792/)
    expect(() => checkSize(4096, 4096)).not.toThrow()
    expect((await encodePng(createImage(8, 8, 3))).length).toBeGreaterThan(0)
  })
})
