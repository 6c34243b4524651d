import sharp from 'sharp'
import { withDefaults } from '../main/engine/pipelines/generate'
import { log, machine, prepareFullModel, timedRun } from './pipeline-timing'

/**
 * Inpaint "only masked" (padding 32, processed at 512x512) on a 1024x1024 image with a 256x256 mask, full-size
 * random-weight SD 1.5, 20 steps at strength 0.75, Euler a, CPU: wall time, its split, and peak RSS.
 * Prints one JSON object.
 *
 *   npx tsx bench/inpaint.ts
 */

async function inputs(size: number, hole: number): Promise<{ image: Uint8Array; mask: Uint8Array }> {
  const rgb = Buffer.alloc(size * size * 3)
  const m = Buffer.alloc(size * size)
  const a = (size - hole) / 2
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3
      rgb[i] = (x * 255) / size
      rgb[i + 1] = (y * 255) / size
      rgb[i + 2] = (x ^ y) & 64 ? 220 : 30
      if (x >= a && x < a + hole && y >= a && y < a + hole) m[y * size + x] = 255
    }
  const image = await sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toBuffer()
  const mask = await sharp(m, { raw: { width: size, height: size, channels: 1 } })
    .png()
    .toBuffer()
  return { image: new Uint8Array(image), mask: new Uint8Array(mask) }
}

async function main(): Promise<void> {
  const p = await prepareFullModel()
  const { image, mask } = await inputs(1024, 256)
  const req = withDefaults({
    mode: 'inpaint',
    model: 'bench',
    prompt: 'a cat, cartoon style',
    image,
    mask,
    inpaintArea: 'only-masked',
    onlyMaskedPadding: 32,
    width: 512,
    height: 512,
    steps: 20,
    strength: 0.75,
    sampler: 'Euler a',
  })
  log('running inpaint (only masked) ...')
  const run = await timedRun(p, req)
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'inpaint-only-masked',
        machine: machine(),
        params: {
          image: '1024x1024',
          mask: '256x256 (centre)',
          padding: 32,
          processing: '512x512',
          steps: 20,
          strength: 0.75,
          stepsRun: 15,
          sampler: 'Euler a',
        },
        convertMs: Math.round(p.convertMs),
        sessionLoadMs: Math.round(p.loadMs),
        ...run,
      },
      null,
      1,
    )}\n`,
  )
  await p.set.release()
}

await main()
