/**
 * The conversion cache is keyed by content, so a checkpoint that moved or was renamed (the library's rename
 * does that) finds its cached entry; every graph variant built from it must then read weights from the
 * entry's own links or copies, or from the path of the current request, never from the path remembered at
 * the first conversion. One case per variant (IP-Adapter, LoRA, upscaler, image encoder), for a file moved
 * by hand and for a library entry renamed through the Library.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import type { TinyModels } from '../../../bench/fixtures/tiny-models'
import { convertCheckpoint } from '../../engine/convert/convert'
import { ImageEncoder } from '../../engine/ipadapter/image-encoder'
import { ipUnetVariant } from '../../engine/ipadapter/unet-variant'
import { applyLoras } from '../../engine/lora/variant'
import { UpscalerModel } from '../../engine/upscale/model'
import { Library } from '../../library/library'

let tiny: TinyModels
let tmp = ''
beforeAll(async () => {
  tiny = await ensureTinyModels()
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-moved-'))
})
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** Copies a fixture into `dir` (the tests move and rename their own copies). */
function copy(file: string, dir: string, name = path.basename(file)): string {
  fs.mkdirSync(dir, { recursive: true })
  const to = path.join(dir, name)
  fs.cpSync(file, to, { recursive: true })
  return to
}

async function loads(model: string): Promise<void> {
  const s = await ort.InferenceSession.create(model)
  expect(s.inputNames.length).toBeGreaterThan(0)
  await s.release()
}

/** Converts at `before`, runs `move`, then builds every variant from the path `move` returns. */
async function variantsAfterMove(
  name: string,
  move: (checkpoint: string, lora: string) => Promise<{ checkpoint: string; lora: string }>,
): Promise<void> {
  const home = path.join(tmp, name)
  const cacheRoot = path.join(home, 'cache')
  const first = copy(tiny.sd15, path.join(home, 'models', 'checkpoints'))
  const lora0 = copy(tiny.lora, path.join(home, 'models', 'loras'))
  const converted = await convertCheckpoint(first, { cacheRoot })
  expect(converted.cached).toBe(false)
  // Variants built before the move are cached too: they must not pin the old path either.
  await ipUnetVariant(converted, tiny.ipAdapter, { cacheRoot, loras: [{ path: lora0, multiplier: 0.5 }] })

  const moved = await move(first, lora0)
  expect(fs.existsSync(first)).toBe(false)
  const again = await convertCheckpoint(moved.checkpoint, { cacheRoot })
  expect(again.cached).toBe(true)
  expect(again.dir).toBe(converted.dir)
  expect(again.manifest.source.path).toBe(moved.checkpoint)
  expect(again.manifest.source.files.map((f) => f.path)).toEqual([moved.checkpoint])

  // IP-Adapter: a new adapter key forces a rebuild, which reads the UNet layout of the source.
  const adapter = copy(
    tiny.ipAdapter,
    path.join(home, 'models', 'ip-adapter'),
    'ip-adapter-renamed.safetensors',
  )
  const ip = await ipUnetVariant(again, adapter, {
    cacheRoot,
    loras: [{ path: moved.lora, multiplier: 0.8 }],
  })
  await loads(ip.path)

  // LoRA variant on the moved base, from the moved LoRA.
  const lora = await applyLoras(again, [{ path: moved.lora, multiplier: 0.7 }], { cacheRoot })
  await loads(lora.paths.unet)
  await loads(lora.paths.text_encoder)

  // Upscaler and image encoder moved too.
  const up0 = copy(tiny.upscaler, path.join(home, 'models', 'upscalers'))
  const upModel = await UpscalerModel.load(up0)
  expect(upModel.scale).toBe(2)
  const up1 = path.join(home, 'models', 'upscalers', 'renamed-x2.safetensors')
  fs.renameSync(up0, up1)
  expect((await UpscalerModel.load(up1)).scale).toBe(2)

  const enc0 = copy(tiny.imageEncoder, path.join(home, 'models', 'image_encoder'))
  const e0 = await ImageEncoder.open(enc0, { cacheRoot })
  const pixels = new Float32Array(3 * 28 * 28).fill(0.25)
  const before = await e0.embedPixels(pixels, 1)
  await e0.release()
  const enc1 = path.join(home, 'elsewhere', 'encoder')
  fs.mkdirSync(path.dirname(enc1), { recursive: true })
  fs.renameSync(enc0, enc1)
  const e1 = await ImageEncoder.open(enc1, { cacheRoot })
  expect(Array.from(await e1.embedPixels(pixels, 1))).toEqual(Array.from(before))
  await e1.release()
}

describe('cached conversions after a move or a rename', () => {
  it('builds the IP-Adapter, LoRA, upscaler and image-encoder variants from a file moved by hand', async () => {
    await variantsAfterMove('moved', async (checkpoint, lora) => {
      const to = path.join(path.dirname(checkpoint), '..', 'archive')
      fs.mkdirSync(to, { recursive: true })
      const c = path.join(to, 'moved-model.safetensors')
      const l = path.join(to, 'moved-lora.safetensors')
      fs.renameSync(checkpoint, c)
      fs.renameSync(lora, l)
      return { checkpoint: c, lora: l }
    })
  }, 300_000)

  it('builds them from a library entry renamed through the Library', async () => {
    await variantsAfterMove('renamed', async (checkpoint, lora) => {
      const home = path.resolve(path.dirname(checkpoint), '..', '..')
      const lib = await Library.open(home, { libraryDir: path.join(home, 'models') })
      try {
        await lib.scan()
        const c = await lib.rename(path.basename(checkpoint, '.safetensors'), 'renamed-model')
        const l = await lib.rename(path.basename(lora, '.safetensors'), 'renamed-lora')
        expect(path.basename(c.path)).toBe('renamed-model.safetensors')
        return { checkpoint: c.path, lora: l.path }
      } finally {
        await lib.dispose()
      }
    })
  }, 300_000)
})
