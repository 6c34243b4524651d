import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { writeSafetensors } from '../../model-formats/safetensors'
import { cli } from '../testing'

// The seeded tiny checkpoints and the diffusers folder of the SD 1.5 one, which the tests write themselves.
const tiny = await ensureTinyModels()
const sd15 = tiny.sd15
const sdxl = tiny.sdxl
const diffusersFolder = tiny.sd15Diffusers

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

describe('atelier probe', () => {
  let dir = ''
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-cli-probe-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('prints the probe, SHA-256 and AutoV2 for an SD 1.x checkpoint', async () => {
    const r = await cli('probe', sd15)
    expect(r.code).toBe(0)
    const json = JSON.parse(r.out) as Record<string, unknown>
    expect(json).toMatchObject({ type: 'checkpoint', base: 'sd-1', family: 'sd-1', runnable: true })
    expect(json.sha256).toBe(sha(sd15))
    expect(json.autoV2).toBe(sha(sd15).slice(0, 10).toUpperCase())
    expect(json.unet).toMatchObject({
      blockOutChannels: [32, 64, 64, 64],
      heads: [8, 8, 8, 0],
      contextDim: 64,
    })
  })

  it('hashes every weight file of a diffusers folder; --no-hash skips hashing', async () => {
    const folder = diffusersFolder
    const r = await cli('probe', folder)
    expect(r.code).toBe(0)
    const json = JSON.parse(r.out) as Record<string, unknown> & { hashes: Record<string, { sha256: string }> }
    expect(json).toMatchObject({ type: 'checkpoint', base: 'sd-1', format: 'diffusers', runnable: true })
    expect(Object.keys(json.hashes).sort()).toEqual(['text_encoder', 'unet', 'vae'])
    for (const [c, rel] of [
      ['text_encoder', 'text_encoder/model.safetensors'],
      ['unet', 'unet/diffusion_pytorch_model.safetensors'],
      ['vae', 'vae/diffusion_pytorch_model.safetensors'],
    ] as const)
      expect(json.hashes[c]!.sha256, c).toBe(sha(path.join(folder, rel)))
    const quick = JSON.parse((await cli('probe', '--no-hash', sd15)).out) as Record<string, unknown>
    expect(quick.sha256).toBeUndefined()
  })

  it('SDXL: prints the record, runnable', async () => {
    const r = await cli('probe', '--no-hash', sdxl)
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out)).toMatchObject({ base: 'sdxl', runnable: true })
  })

  it('truncated file, lying header, unknown dtype, pickle: specific errors, nonzero exit', async () => {
    const good = path.join(dir, 'good.safetensors')
    await writeSafetensors(good, { a: { dtype: 'F32', shape: [4], data: new Float32Array(4) } })
    const bytes = await readFile(good)

    const cut = path.join(dir, 'cut.safetensors')
    await writeFile(cut, bytes)
    await truncate(cut, bytes.byteLength - 5)
    const lying = path.join(dir, 'lying.safetensors')
    await writeFile(lying, Buffer.from(bytes.toString('latin1').replace('[0,16]', '[8,24]'), 'latin1'))
    const dtype = path.join(dir, 'dtype.safetensors')
    await writeFile(dtype, Buffer.from(bytes.toString('latin1').replace('"F32"', '"F99"'), 'latin1'))
    const pickle = path.join(dir, 'model.ckpt')
    await writeFile(pickle, Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e]))

    const cases: [string, RegExp][] = [
      [cut, /cut\.safetensors: the file is incomplete/],
      [lying, /lying\.safetensors: tensor "a" lies at data bytes 8\.\.24 but the data section has 16 bytes/],
      [dtype, /dtype\.safetensors: tensor "a" has dtype F99, which is unknown/],
      [pickle, /model\.ckpt is a Python pickle.*refuses/],
      [path.join(dir, 'missing.safetensors'), /missing\.safetensors: no such file or folder/],
    ]
    for (const [file, msg] of cases) {
      const r = await cli('probe', file)
      expect(r.code, file).not.toBe(0)
      expect(r.out).toBe('')
      expect(r.err).toMatch(msg)
    }
  })
})
