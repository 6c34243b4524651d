import sharp from 'sharp'
import { withDefaults } from '../main/engine/pipelines/generate'
import { log, machine, prepareFullModel, timedRun } from './pipeline-timing'

/**
 * img2img 512x512, 30 steps, strength 0.6 (18 UNet steps), Euler a, CFG 7 (batch 2 per UNet call), on
 * the full-size random-weight SD 1.5, CPU: total wall time and its split (text encoding, VAE encode, each
 * UNet step, VAE decode, everything else). Target: everything outside the ONNX sessions < 5 % of the total.
 * Prints one JSON object.
 *
 *   npx tsx bench/img2img.ts
 */

async function inputImage(size: number): Promise<Uint8Array> {
  const rgb = Buffer.alloc(size * size * 3)
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3
      rgb[i] = (x * 255) / size
      rgb[i + 1] = (y * 255) / size
      rgb[i + 2] = (x ^ y) & 32 ? 220 : 30
    }
  return new Uint8Array(
    await sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
      .png()
      .toBuffer(),
  )
}

async function main(): Promise<void> {
  const p = await prepareFullModel()
  const req = withDefaults({
    mode: 'img2img',
    model: 'bench',
    prompt: 'a cat, cartoon style',
    image: await inputImage(512),
    width: 512,
    height: 512,
    steps: 30,
    strength: 0.6,
    sampler: 'Euler a',
    cfgScale: 7,
  })
  log('running img2img ...')
  const run = await timedRun(p, req)
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'img2img',
        machine: machine(),
        params: {
          size: '512x512',
          steps: 30,
          strength: 0.6,
          stepsRun: 18,
          sampler: 'Euler a',
          cfg: 7,
          batch: 1,
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
