import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Library } from '../../library/library'
import { PickleBuilder, torchSaveZip, zipStored } from '../../model-formats/pickle/torch-writer'
import { hfKind } from '../../remote/huggingface/map'
import { civitaiModelType } from '../../library/civitai-info'

/** The library lists upscalers: Atelier's upscalers/ folder, A1111's models/ESRGAN, .pth read safely. */

let home = ''
beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-upscale-lib-'))
})
afterEach(() => {
  fs.rmSync(home, { recursive: true, force: true })
})

/** A tiny SRVGGNetCompact x2 (.pth, {'params': state dict}, as the Real-ESRGAN compact releases). */
function tinyCompactPth(seed: number): Uint8Array {
  const t: [string, { dtype: 'F32'; shape: number[]; bytes: Uint8Array }][] = []
  const add = (name: string, shape: number[]): void => {
    const n = shape.reduce((a, b) => a * b, 1)
    const f = Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i) * 0.1)
    t.push([name, { dtype: 'F32', shape, bytes: new Uint8Array(f.buffer) }])
  }
  add('body.0.weight', [4, 3, 3, 3])
  add('body.0.bias', [4])
  add('body.1.weight', [4])
  add('body.2.weight', [12, 4, 3, 3])
  add('body.2.bias', [12])
  return torchSaveZip(t, { wrapper: 'params' })
}

describe('upscalers in the library', () => {
  it('lists .pth upscalers from upscalers/ and an A1111 models/ESRGAN folder; refuses a hostile pickle by name', async () => {
    const lib = path.join(home, 'models')
    fs.mkdirSync(path.join(lib, 'upscalers'), { recursive: true })
    fs.writeFileSync(path.join(lib, 'upscalers', '2x-compact.pth'), tinyCompactPth(1))
    const a1111 = path.join(home, 'webui')
    fs.mkdirSync(path.join(a1111, 'models', 'ESRGAN'), { recursive: true })
    fs.mkdirSync(path.join(a1111, 'models', 'Stable-diffusion'), { recursive: true })
    fs.writeFileSync(path.join(a1111, 'models', 'ESRGAN', 'other-2x.pth'), tinyCompactPth(2))
    const evil = new PickleBuilder()
      .proto(2)
      .global('os', 'system')
      .mark()
      .str('true')
      .tuple()
      .reduce()
      .stop()
    fs.writeFileSync(
      path.join(a1111, 'models', 'ESRGAN', 'evil.pth'),
      zipStored([['a/data.pkl', evil.bytes()]]),
    )

    const library = await Library.open(home, { libraryDir: lib })
    try {
      await library.addRoot(a1111)
      await library.scan()
      // The hostile file is listed (its folder says upscaler) but unusable, with the reason.
      const ups = library.list({ type: 'upscaler' }).filter((r) => r.note === null)
      expect(ups.map((r) => r.name).sort()).toEqual(['2x-compact', 'other-2x'])
      expect(ups[0]).toMatchObject({
        type: 'upscaler',
        format: 'pth',
        architecture: 'SRVGGNetCompact x2 (4 features, 0 convs, prelu)',
        note: null,
      })
      const bad = library.list().find((r) => r.name === 'evil')
      expect(bad?.note).toMatch(/evil\.pth was refused: its pickle calls the forbidden global "os\.system"/)
    } finally {
      await library.dispose()
    }
  })

  it('Civitai "Upscaler" models and tagged Hugging Face repos install as upscalers', () => {
    expect(civitaiModelType('Upscaler')).toBe('upscaler')
    expect(hfKind(['image-to-image', 'super-resolution', 'pytorch'], null, 'image-to-image')).toBe('upscaler')
    expect(hfKind(['esrgan'], null, null)).toBe('upscaler')
    expect(hfKind(['text-to-image'], 'diffusers', 'text-to-image')).toBe('checkpoint')
  })
})
