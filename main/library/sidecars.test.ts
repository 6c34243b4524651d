import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { autoV3, sha256File } from '../model-formats/hash'
import { civitaiFacts, civitaiJsonFromRemote, pickCivitaiFile } from './civitai-info'
import { sanitizeName } from './fsutil'
import { hashFile } from './hashing'
import { buildRecord } from './record'
import {
  mergeA1111,
  readA1111,
  readAtelierSidecar,
  readCivitaiInfo,
  sidecarFromRecord,
  writeAtelierSidecar,
  writeCivitaiInfo,
} from './sidecars'
import { tempDir, tinyLora } from './test-support'
import type { ModelRecord } from './types'

let dir: string
beforeEach(async () => {
  dir = await tempDir('atelier-sidecar-')
})
afterEach(async () => {
  await fs.promises.rm(dir, { recursive: true, force: true })
})

describe('hashFile', () => {
  it('gives the SHA-256 and AutoV3 of model-formats/hash in one pass', async () => {
    const f = await tinyLora(path.join(dir, 'l.safetensors'), 'sdxl', { seed: 3 })
    const start = 8 + Number(fs.readFileSync(f).readBigUInt64LE(0))
    const h = await hashFile(f, { dataStart: start })
    expect(h.sha256).toBe(await sha256File(f))
    expect(h.autoV3).toBe(await autoV3(f))
    expect((await hashFile(f)).autoV3).toBeNull()
  })

  it('spans chunk boundaries (8 MiB + 3 bytes) and reports progress', async () => {
    const f = path.join(dir, 'big.bin')
    const data = crypto.randomBytes(8 * 1024 * 1024 + 3)
    fs.writeFileSync(f, data)
    const seen: number[] = []
    const h = await hashFile(f, { dataStart: 5 * 1024 * 1024 + 1, onProgress: (b) => seen.push(b) })
    expect(h.sha256).toBe(crypto.createHash('sha256').update(data).digest('hex'))
    expect(h.autoV3).toBe(
      crypto
        .createHash('sha256')
        .update(data.subarray(5 * 1024 * 1024 + 1))
        .digest('hex')
        .slice(0, 12)
        .toUpperCase(),
    )
    expect(seen[seen.length - 1]).toBe(data.length)
  })

  it('stops when aborted', async () => {
    const f = path.join(dir, 'x.bin')
    fs.writeFileSync(f, Buffer.alloc(10))
    await expect(hashFile(f, { signal: AbortSignal.abort() })).rejects.toThrow()
  })
})

function sampleRecord(p: string): ModelRecord {
  const built = buildRecord({
    path: p,
    root: dir,
    isDir: false,
    size: 10,
    mtimeMs: 1234.5,
    typeHint: 'lora',
    probe: {
      format: 'ldm-single-file',
      type: 'lora',
      family: 'sdxl',
      variant: 'normal',
      architecture: 'x',
      note: null,
    },
    problem: null,
    sha256: 'a'.repeat(64),
    autoV3: 'B'.repeat(12),
    sidecar: null,
    prev: null,
    prevProbeFamily: null,
    civitai: null,
    a1111: null,
    preview: null,
    install: {
      source: 'huggingface',
      huggingface: { repo: 'o/r', revision: 'main', path: 'x.safetensors' },
      expectedSha256: 'a'.repeat(64),
    },
  })
  return built!.record
}

describe('sidecars', () => {
  it('round-trips the Atelier sidecar', async () => {
    const p = path.join(dir, 'x.safetensors')
    const r = sampleRecord(p)
    expect(r).toMatchObject({
      source: 'huggingface',
      verified: 'verified',
      autoV2: 'AAAAAAAAAA',
      family: 'sdxl',
    })
    const sc = sidecarFromRecord(r, 'sdxl')
    await writeAtelierSidecar(path.join(dir, 'x'), sc)
    expect(await readAtelierSidecar(path.join(dir, 'x'))).toEqual(sc)
    // A record rebuilt from the sidecar alone (no index) equals the original.
    const again = buildRecord({
      path: p,
      root: dir,
      isDir: false,
      size: 10,
      mtimeMs: 1234.5,
      typeHint: 'lora',
      probe: {
        format: sc.format,
        type: sc.type,
        family: sc.probeFamily,
        variant: sc.variant,
        architecture: sc.architecture,
        note: sc.note,
      },
      problem: null,
      sha256: sc.sha256,
      autoV3: sc.autoV3,
      sidecar: sc,
      prev: null,
      prevProbeFamily: null,
      civitai: null,
      a1111: null,
      preview: null,
    })
    expect(again!.record).toEqual(r)
  })

  it('ignores a damaged sidecar instead of failing', async () => {
    fs.writeFileSync(path.join(dir, 'x.atelier.json'), '{not json')
    expect(await readAtelierSidecar(path.join(dir, 'x'))).toBeNull()
    fs.writeFileSync(path.join(dir, 'x.atelier.json'), '{"atelier":1,"id":"x"}')
    expect(await readAtelierSidecar(path.join(dir, 'x'))).toBeNull()
  })

  it('reads A1111 json (with a BOM) and fills only empty fields when writing', async () => {
    const stem = path.join(dir, 'lora')
    fs.writeFileSync(
      `${stem}.json`,
      '\ufeff' +
        JSON.stringify({ description: 'mine', 'activation text': '', 'preferred weight': 0, custom: 1 }),
    )
    expect(await readA1111(stem)).toEqual({
      description: 'mine',
      activationText: null,
      preferredWeight: null,
      sdVersion: null,
      notes: null,
    })
    expect(await mergeA1111(stem, { activationText: 'a, b', sdVersion: 'SDXL' })).toBe(true)
    const json = JSON.parse(fs.readFileSync(`${stem}.json`, 'utf8')) as Record<string, unknown>
    expect(json).toEqual({
      description: 'mine',
      'activation text': 'a, b',
      'preferred weight': 0,
      custom: 1,
      'sd version': 'SDXL',
      notes: '',
    })
    // The user's text is never overwritten; nothing to change → no write.
    expect(await mergeA1111(stem, { activationText: 'other', sdVersion: 'SD1' })).toBe(false)
    // Not an A1111 file (an array) or invalid JSON: left alone.
    fs.writeFileSync(`${stem}.json`, '[1]')
    expect(await mergeA1111(stem, { activationText: 'x' })).toBe(false)
    fs.writeFileSync(`${stem}.json`, '{broken')
    expect(await mergeA1111(stem, { activationText: 'x' })).toBe(false)
    expect(fs.readFileSync(`${stem}.json`, 'utf8')).toBe('{broken')
  })

  it('writes .civitai.info as Civitai Helper does and treats {} as not found', async () => {
    const stem = path.join(dir, 'm')
    await writeCivitaiInfo(stem, { id: 1, modelId: 2, name: 'v' })
    expect(fs.readFileSync(`${stem}.civitai.info`, 'utf8')).toBe(
      '{\n    "id": 1,\n    "modelId": 2,\n    "name": "v"\n}\n',
    )
    expect(await readCivitaiInfo(stem)).toEqual({ id: 1, modelId: 2, name: 'v' })
    fs.writeFileSync(`${stem}.civitai.info`, '{}')
    expect(await readCivitaiInfo(stem)).toBeNull()
  })
})

describe('civitai info', () => {
  const info = {
    id: 10,
    modelId: 20,
    baseModel: 'SDXL 1.0',
    model: { name: 'M', type: 'Checkpoint', nsfw: false },
    files: [
      { name: 'vae.safetensors', type: 'VAE', hashes: { SHA256: 'C'.repeat(64) } },
      { name: 'm-pruned.safetensors', type: 'Model', primary: true, hashes: { SHA256: 'A'.repeat(64) } },
      { name: 'm-full.safetensors', type: 'Model', hashes: { SHA256: 'B'.repeat(64) } },
    ],
  }

  it('picks the file by hash, then by name, then the primary', () => {
    expect(pickCivitaiFile(info, 'whatever', 'b'.repeat(64))?.name).toBe('m-full.safetensors')
    expect(pickCivitaiFile(info, 'M-FULL.safetensors', null)?.name).toBe('m-full.safetensors')
    expect(pickCivitaiFile(info, 'renamed.safetensors', 'd'.repeat(64))?.name).toBe('m-pruned.safetensors')
    expect(civitaiFacts(info, 'renamed.safetensors', null)).toMatchObject({
      expectedSha256: 'a'.repeat(64),
      type: 'checkpoint',
      civitai: { modelId: 20, versionId: 10, modelName: 'M', versionName: null, modelType: 'Checkpoint' },
    })
  })

  it('maps the shared remote DTO back to Civitai JSON', () => {
    const json = civitaiJsonFromRemote(
      {
        source: 'civitai',
        id: '1050496',
        modelId: '706978',
        name: 'V.3',
        description: null,
        baseModel: 'Flux.1 D',
        baseModelType: null,
        trainedWords: ['w'],
        publishedAt: null,
        earlyAccess: false,
        earlyAccessEndsAt: null,
        files: [
          {
            id: '956231',
            name: 'a.safetensors',
            path: 'a.safetensors',
            sizeBytes: 2048,
            sizeExact: false,
            fileType: 'Model',
            format: 'safetensors',
            precision: 'fp16',
            sizeVariant: 'pruned',
            primary: true,
            sha256: 'ab'.repeat(32),
            hashes: { AutoV2: '21437ec266' },
            downloadUrl: 'https://civitai.com/api/download/models/1050496',
            pickleScan: 'success',
            virusScan: 'success',
            scanMessage: null,
          },
        ],
        images: [],
        downloadUrl: null,
        stats: { downloads: 1, likes: 2 },
        air: null,
      },
      { name: 'Poses', kind: 'lora', rawType: 'LORA', nsfw: false },
    )
    expect(json).toMatchObject({
      id: 1050496,
      modelId: 706978,
      model: { name: 'Poses', type: 'LORA' },
      files: [
        {
          id: 956231,
          sizeKB: 2,
          metadata: { format: 'SafeTensor', fp: 'fp16', size: 'pruned' },
          hashes: { AutoV2: '21437EC266', SHA256: 'AB'.repeat(32) },
        },
      ],
    })
    expect(civitaiFacts(json, 'a.safetensors', null).expectedSha256).toBe('ab'.repeat(32))
  })
})

describe('sanitizeName', () => {
  it.each([
    ['plain', 'plain'],
    ['a/b\\c:d*e?f"g<h>i|j', 'a_b_c_d_e_f_g_h_i_j'],
    ['  trailing dots... ', 'trailing dots'],
    ['..', ''],
    ['.hidden', 'hidden'],
    ['CON', 'CON_'],
    ['tab\there', 'tabhere'],
    ['ünïcödé 名前', 'ünïcödé 名前'],
  ])('%j → %j', (input, out) => {
    expect(sanitizeName(input)).toBe(out)
  })

  it('caps the length at 180 bytes', () => {
    expect(Buffer.byteLength(sanitizeName('é'.repeat(200)))).toBeLessThanOrEqual(180)
  })
})
