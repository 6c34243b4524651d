import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { convertCheckpoint } from '../main/engine/convert/convert'
import { convertVae } from '../main/engine/convert/vae'
import { ModelSet } from '../main/engine/runtime/model-set'
import { ensureFullSd15, FULL_SD15 } from './fixtures/full-sd15'
import { writeTinyVae } from './fixtures/tiny-vae'
import { loadAverage } from './unet-common'

/**
 * A separate VAE on the random full-size SD 1.5 (bench/fixtures/full-sd15.ts) with a random full-size VAE
 * file (83 M parameters, fp16): the first conversion (hash + two graphs; weights hard-linked), a cached one,
 * and the time from switching VAEs on a loaded model to the first decoded image, beside the first decode
 * with the checkpoint's own VAE. The UNet and text encoder sessions must stay (unetReloaded: false).
 * CPU, fp16 weights (the default storage), latents `--latent` square (default 32 -> 256 px). Prints JSON.
 *
 *   npx tsx bench/vae.ts [--latent 32]
 */

const log = (m: string): void => void process.stderr.write(`${m}\n`)
const latent = Number(process.argv[process.argv.indexOf('--latent') + 1] ?? 32) || 32

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  const r = await fn()
  return [r, (performance.now() - t0) / 1000]
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-bench-vae-'))
  const cacheRoot = path.join(tmp, 'cache')
  try {
    const checkpoint = ensureFullSd15(log)
    const vaeFile = writeTinyVae(path.join(tmp, 'full-vae.safetensors'), { seed: 51, vae: FULL_SD15.vae })
    log('converting the checkpoint (once)')
    const base = await convertCheckpoint(checkpoint, { cacheRoot })
    const [vae, convertCold] = await timed(() => convertVae(vaeFile, { cacheRoot }))
    const [, convertCached] = await timed(() => convertVae(vaeFile, { cacheRoot }))
    const set = new ModelSet('full', base.paths, { preference: 'cpu' })
    try {
      await set.load(['unet', 'text_encoder'])
      const unet = set.graphs.unet
      const z = new ort.Tensor(
        'float32',
        Float32Array.from({ length: 4 * latent * latent }, (_, i) => Math.sin(i * 0.37)),
        [1, 4, latent, latent],
      )
      const [, ownFirst] = await timed(() => set.decode(z))
      const [, ownWarm] = await timed(() => set.decode(z))
      const [, switchToFirst] = await timed(async () => {
        await set.useVae({ vae_encoder: vae.paths.vae_encoder, vae_decoder: vae.paths.vae_decoder })
        return set.decode(z)
      })
      const [, overrideWarm] = await timed(() => set.decode(z))
      const [, switchBack] = await timed(async () => {
        await set.useVae()
        return set.decode(z)
      })
      const out = {
        bench: 'vae',
        provider: 'cpu',
        latent: [latent, latent],
        image: [latent * 8, latent * 8],
        vaeBytes: fs.statSync(vaeFile).size,
        convertColdS: +convertCold.toFixed(2),
        convertCachedS: +convertCached.toFixed(3),
        vaeEntryLinked: Object.values(vae.manifest.graphs).every((g) => g?.linked),
        ownVaeFirstDecodeS: +ownFirst.toFixed(2),
        ownVaeWarmDecodeS: +ownWarm.toFixed(2),
        switchToFirstDecodeS: +switchToFirst.toFixed(2),
        overrideWarmDecodeS: +overrideWarm.toFixed(2),
        switchBackToFirstDecodeS: +switchBack.toFixed(2),
        unetReloaded: set.graphs.unet !== unet || !unet?.loaded,
        loadAverage: loadAverage(),
      }
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
    } finally {
      await set.release()
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

void main().catch((err: unknown) => {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err))
  process.exit(1)
})
