import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { CivitaiFixtureServer } from '../../../e2e/fixtures/remote/civitai-server'
import { makeFixtureModels, type FixtureModels } from '../../../e2e/fixtures/remote/fixture-models'
import { RemoteError } from '../errors'
import { USER_AGENT } from '../http'
import { CivitaiClient } from './client'

let dir: string
let models: FixtureModels
let civitai: CivitaiFixtureServer
const sleeps: number[] = []
const retry = { sleep: async (ms: number) => void sleeps.push(ms), random: () => 0.5, retries: 3 }

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'atelier-civitai-'))
  models = await makeFixtureModels(dir)
  civitai = new CivitaiFixtureServer({ models })
  await civitai.start()
})

afterAll(async () => {
  await civitai.close()
  await fs.rm(dir, { recursive: true, force: true })
})

beforeEach(() => {
  civitai.resetFaults()
  civitai.log.length = 0
  sleeps.length = 0
})

function client(token?: string): CivitaiClient {
  return new CivitaiClient({ baseUrl: civitai.url, token, retry })
}

async function catchError(p: Promise<unknown>): Promise<RemoteError> {
  try {
    await p
  } catch (err) {
    if (err instanceof RemoteError) return err
    throw err
  }
  throw new Error('expected a RemoteError')
}

describe('CivitaiClient search', () => {
  it('pages through every SFW model with cursors, no duplicates', async () => {
    const c = client('civitai-test-key')
    const ids: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page = await c.search({ limit: 5, cursor })
      ids.push(...page.items.map((m) => m.id))
      cursor = page.nextCursor
      pages++
    } while (cursor)
    // 5 named SFW models (the archived one is not listed) + 7 SFW fillers.
    expect(ids).toHaveLength(12)
    expect(new Set(ids).size).toBe(12)
    expect(pages).toBe(3)
    const first = civitai.log[0]
    expect(first?.headers['user-agent']).toBe(USER_AGENT)
    expect(USER_AGENT).toMatch(/^Atelier\/\d+\.\d+\.\d+/)
    expect(first?.headers.authorization).toBe('Bearer civitai-test-key')
    const all = await c.search({ limit: 100, nsfw: true })
    expect(all.items).toHaveLength(13)
    expect(all.nextCursor).toBeNull()
  })

  it('sends repeated types / baseModels and maps models to the shared DTO', async () => {
    const page = await client().search({
      types: ['LORA', 'Checkpoint'],
      baseModels: ['SDXL 1.0'],
      sort: 'Most Downloaded',
      period: 'Month',
    })
    const url = new URL(civitai.log[0]?.url ?? '', civitai.url)
    expect(url.searchParams.getAll('types')).toEqual(['LORA', 'Checkpoint'])
    expect(url.searchParams.getAll('baseModels')).toEqual(['SDXL 1.0'])
    expect(url.searchParams.get('sort')).toBe('Most Downloaded')
    const xl = page.items.find((m) => m.id === '1003')
    expect(xl).toBeDefined()
    expect(xl?.kind).toBe('lora')
    expect(xl?.creator).toBeNull() // creator omitted by the API
    expect(xl?.versions.every((v) => v.baseModel === 'SDXL 1.0')).toBe(true)
    expect(page.items.every((m) => m.versions.every((v) => v.baseModel === 'SDXL 1.0'))).toBe(true)
  })

  it('full-text query pages by cursor', async () => {
    const page = await client().search({ query: 'filler', limit: 4 })
    expect(page.items.map((m) => m.name).every((n) => n.startsWith('Filler'))).toBe(true)
    expect(page.nextCursor).not.toBeNull()
    const next = await client().search({ query: 'filler', limit: 4, cursor: page.nextCursor })
    expect(next.items.length).toBe(3)
    expect(next.nextCursor).toBeNull()
  })

  it('maps a 400 ZodError body to a readable bad-request', async () => {
    const err = await catchError(client().search({ types: ['Lycoris'] }))
    expect(err.code).toBe('bad-request')
    expect(err.message).toMatch(/types: Invalid option/)
  })
})

describe('CivitaiClient details', () => {
  it('reads a model with nullable stats, array allowCommercialUse and versions', async () => {
    const m = await client().getModel(1002)
    expect(m.name).toBe('Tiny Style LoRA')
    expect(m.kind).toBe('lora')
    expect(m.stats.downloads).toBeNull()
    expect(m.commercialUse).toEqual(['RentCivit', 'Rent'])
    const v = m.versions[0]
    expect(v?.trainedWords).toEqual(['tinystyle'])
    expect(v?.files[0]?.sha256).toBe(models.lora.sha256)
    const ckpt = await client().getModel('1001')
    expect(ckpt.commercialUse).toEqual(['Image', 'RentCivit'])
    // removeEmpty(): v0.9 has no images key at all → [].
    expect(ckpt.versions[1]?.images).toEqual([])
    expect(ckpt.versions[1]?.baseModelType).toBeNull()
    expect(ckpt.pageUrl).toBe(`${civitai.url}/models/1001`)
  })

  it('reads a version with files, hashes, scans and image generation meta', async () => {
    const v = await client().getVersion(2003)
    expect(v.modelId).toBe('1002')
    expect(v.baseModel).toBe('SD 1.5')
    expect(v.air).toBe('urn:air:sd1:lora:civitai:1002@2003')
    const f = v.files[0]
    expect(f).toMatchObject({
      name: 'tinyStyleLora_v1.safetensors',
      format: 'safetensors',
      precision: 'fp16',
      primary: true,
      pickleScan: 'success',
      virusScan: 'success',
      sha256: models.lora.sha256,
      sizeExact: false,
    })
    expect(f?.sizeBytes).toBe(models.lora.size)
    expect(f?.hashes.AutoV2).toBe(models.lora.sha256.slice(0, 10).toUpperCase())
    expect(new URL(f?.downloadUrl ?? '').searchParams.get('fileId')).toBe(f?.id)
    const [img, video] = v.images
    expect(img?.meta).toMatchObject({
      prompt: expect.stringContaining('tinystyle'),
      seed: 1234567,
      steps: 20,
      cfgScale: 7,
      clipSkip: 2,
      sampler: 'DPM++ 2M',
      size: '512x768',
    })
    expect(img?.meta?.raw.civitaiResources).toEqual([{ type: 'lora', weight: 0.8, modelVersionId: 2003 }])
    expect(video?.type).toBe('video')
    expect(video?.meta).toBeNull()
    const withVae = await client().getVersion(2001)
    expect(withVae.files.map((x) => [x.fileType, x.primary])).toEqual([
      ['Model', true],
      ['VAE', false],
    ])
  })

  it('marks Early Access versions', async () => {
    const v = await client().getVersion(2005)
    expect(v.earlyAccess).toBe(true)
    expect(v.earlyAccessEndsAt).toBe('2099-01-01T00:00:00.000Z')
    expect((await client().getVersion(2003)).earlyAccess).toBe(false)
  })

  it('finds versions by SHA256 / AutoV2 (any case) and returns null for unknown hashes', async () => {
    const bySha = await client().getVersionByHash(models.checkpoint.sha256)
    expect(bySha?.id).toBe('2001')
    const byAutoV2 = await client().getVersionByHash(models.lora.sha256.slice(0, 10).toLowerCase())
    expect(byAutoV2?.id).toBe('2003')
    expect(await client().getVersionByHash('0'.repeat(64))).toBeNull()
    const bulk = await client().getVersionsByHashes([
      models.sdxlLora.sha256,
      'f'.repeat(64),
      models.checkpoint.sha256,
    ])
    expect(bulk.map((v) => v.id)).toEqual(['2004', '2001'])
  })

  it('fetches enums and images with meta', async () => {
    const enums = await client().getEnums()
    expect(enums.modelTypes).toContain('LORA')
    expect(enums.baseModels).toContain('SD 1.5')
    const images = await client().getImages({ modelVersionId: '2003' })
    expect(images[0]?.meta?.prompt).toContain('lighthouse')
    expect(new URL(civitai.log.at(-1)?.url ?? '', civitai.url).searchParams.get('withMeta')).toBe('true')
  })

  it('builds exact download URLs', () => {
    expect(client().downloadUrl(2001, 3002)).toBe(`${civitai.url}/api/download/models/2001?fileId=3002`)
  })
})

describe('CivitaiClient errors', () => {
  it('404 → not-found with the server message', async () => {
    const err = await catchError(client().getModel(999999))
    expect(err.code).toBe('not-found')
    expect(err.message).toContain('No model with id 999999')
    expect(err.status).toBe(404)
  })

  it('retries 429 and 503 honouring Retry-After, then succeeds', async () => {
    civitai.faults.failNext.push({ status: 429, on: 'api' }, { status: 503, on: 'api', retryAfter: '2' })
    const m = await client().getModel(1001)
    expect(m.id).toBe('1001')
    expect(sleeps).toHaveLength(2)
    expect(sleeps[0]).toBe(750) // base 1000, attempt 1, jitter 0.5 → 500 + 250
    expect(sleeps[1]).toBe(2000) // Retry-After: 2 beats the 1500 ms backoff
  })

  it('gives up after the retry budget with a rate-limited error', async () => {
    for (let i = 0; i < 4; i++) civitai.faults.failNext.push({ status: 429, on: 'api', retryAfter: '7' })
    const err = await catchError(client().getModel(1001))
    expect(err.code).toBe('rate-limited')
    expect(err.retryAfterMs).toBe(7000)
    expect(err.retryable).toBe(true)
    expect(sleeps).toHaveLength(3)
  })

  it('does not retry client errors', async () => {
    const err = await catchError(client().getModel(0))
    expect(err.code).toBe('bad-request')
    expect(err.retryable).toBe(false)
    expect(sleeps).toHaveLength(0)
    expect(civitai.log).toHaveLength(1)
  })

  it('network failures are typed', async () => {
    const c = new CivitaiClient({ baseUrl: 'http://127.0.0.1:9', retry: { ...retry, retries: 0 } })
    const err = await catchError(c.getModel(1))
    expect(err.code).toBe('network')
    expect(err.message).toMatch(/Could not reach Civitai \(connection refused\)/)
  })
})
