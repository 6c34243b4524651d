import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { makeFixtureModels, type FixtureModels } from '../../../e2e/fixtures/remote/fixture-models'
import { HfFixtureServer } from '../../../e2e/fixtures/remote/hf-server'
import { RemoteError } from '../errors'
import { HuggingFaceClient } from './client'

let dir: string
let models: FixtureModels
let hf: HfFixtureServer
const sleeps: number[] = []
const retry = { sleep: async (ms: number) => void sleeps.push(ms), random: () => 0.5, retries: 2 }

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'atelier-hf-'))
  models = await makeFixtureModels(dir)
  hf = new HfFixtureServer({ models, treePageSize: 4 })
  await hf.start()
})

afterAll(async () => {
  await hf.close()
  await fs.rm(dir, { recursive: true, force: true })
})

beforeEach(() => {
  hf.resetFaults()
  hf.log.length = 0
  sleeps.length = 0
})

function client(token?: string): HuggingFaceClient {
  return new HuggingFaceClient({ baseUrl: hf.url, token, retry })
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

describe('HuggingFaceClient search', () => {
  it('follows Link paging and sends filters, expand and the token', async () => {
    const c = client('hf_atelier_ok')
    const ids: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page = await c.search({
        filter: ['diffusers'],
        pipelineTag: 'text-to-image',
        sort: 'downloads',
        limit: 3,
        cursor,
      })
      ids.push(...page.items.map((m) => m.id))
      cursor = page.nextCursor
      pages++
    } while (cursor)
    expect(pages).toBe(3)
    // sorted by downloads: the diffusers repo first, fillers last.
    expect(ids[0]).toBe('atelier-test/tiny-sd-diffusers')
    expect(ids).toHaveLength(9)
    expect(new Set(ids).size).toBe(9)
    const q = new URL(hf.log[0]?.url ?? '', hf.url).searchParams
    expect(q.getAll('filter')).toEqual(['diffusers'])
    expect(q.getAll('expand')).toContain('gated')
    expect(hf.log[0]?.headers.authorization).toBe('Bearer hf_atelier_ok')
  })

  it('maps search items to the shared DTO', async () => {
    const page = await client().search({ search: 'tiny' })
    const byId = new Map(page.items.map((m) => [m.id, m]))
    expect(byId.get('atelier-test/tiny-lora')?.kind).toBe('lora')
    expect(byId.get('atelier-test/tiny-lora')?.baseModels).toEqual(['SD 1.5'])
    expect(byId.get('atelier-test/tiny-xl-lora')?.baseModels).toEqual(['SDXL 1.0'])
    expect(byId.get('atelier-test/tiny-checkpoint')).toMatchObject({
      kind: 'checkpoint',
      license: 'creativeml-openrail-m',
      creator: 'atelier-test',
      name: 'tiny-checkpoint',
      pageUrl: `${hf.url}/atelier-test/tiny-checkpoint`,
    })
  })
})

describe('HuggingFaceClient repo details', () => {
  it('model info carries sizes and LFS sha256, downloads pinned to the commit', async () => {
    const m = await client().getModel('atelier-test/tiny-checkpoint')
    const repo = hf.repo('atelier-test/tiny-checkpoint')
    const v = m.versions[0]
    expect(v?.id).toBe(repo?.sha)
    const primary = v?.files.find((f) => f.primary)
    expect(primary).toMatchObject({
      path: 'tinyCheckpoint_v10.safetensors',
      sizeBytes: models.checkpoint.size,
      sizeExact: true,
      sha256: models.checkpoint.sha256,
      fileType: 'lfs',
      format: 'safetensors',
    })
    expect(primary?.downloadUrl).toBe(
      `${hf.url}/atelier-test/tiny-checkpoint/resolve/${repo?.sha}/tinyCheckpoint_v10.safetensors`,
    )
    const readme = v?.files.find((f) => f.path === 'README.md')
    expect(readme?.sha256).toBeNull()
    expect(readme?.hashes.gitSha1).toMatch(/^[0-9a-f]{40}$/)
  })

  it('lists the tree recursively across pages, and one folder', async () => {
    const all = await client().listFiles('atelier-test/tiny-sd-diffusers', 'main', { recursive: true })
    expect(all.map((f) => f.path).sort()).toEqual(
      [
        '.gitattributes',
        'README.md',
        'model_index.json',
        'scheduler/scheduler_config.json',
        'text_encoder/config.json',
        'text_encoder/model.safetensors',
        'tokenizer/merges.txt',
        'tokenizer/vocab.json',
        'unet/config.json',
        'unet/diffusion_pytorch_model.safetensors',
        'vae/config.json',
        'vae/diffusion_pytorch_model.safetensors',
      ].sort(),
    )
    expect(hf.log.filter((r) => r.url.includes('/tree/')).length).toBeGreaterThan(3)
    expect(all.find((f) => f.path === 'unet/diffusion_pytorch_model.safetensors')?.sha256).toBe(
      models.checkpoint.sha256,
    )
    const unet = await client().listFiles('atelier-test/tiny-sd-diffusers', 'main', { path: 'unet' })
    expect(unet.map((f) => f.path)).toEqual(['unet/config.json', 'unet/diffusion_pytorch_model.safetensors'])
    const root = await client().listFiles('atelier-test/tiny-sd-diffusers')
    expect(root.every((f) => !f.path.includes('/'))).toBe(true)
  })

  it('selects the files of a diffusers pipeline', async () => {
    const files = await client().diffusersFiles('atelier-test/tiny-sd-diffusers')
    const paths = files.map((f) => f.path)
    expect(paths[0]).toBe('model_index.json')
    expect(paths).toContain('unet/diffusion_pytorch_model.safetensors')
    expect(paths).toContain('tokenizer/vocab.json')
    expect(paths).not.toContain('README.md')
    expect(paths).toHaveLength(10)
    const sha = hf.repo('atelier-test/tiny-sd-diffusers')?.sha ?? ''
    expect(files.every((f) => f.downloadUrl.includes(`/resolve/${sha}/`))).toBe(true)
    const err = await catchError(client().diffusersFiles('atelier-test/tiny-checkpoint'))
    expect(err.message).toMatch(/not a diffusers pipeline/)
  })

  it('reads file info from the resolve headers (LFS and regular)', async () => {
    const lfs = await client().fileInfo('atelier-test/tiny-lora', 'tinyStyleLora_v1.safetensors')
    expect(lfs).toMatchObject({
      size: models.lora.size,
      sha256: models.lora.sha256,
      commit: hf.repo('atelier-test/tiny-lora')?.sha,
    })
    const small = await client().fileInfo('atelier-test/tiny-lora', 'README.md')
    expect(small.sha256).toBeNull()
    expect(small.gitSha1).toMatch(/^[0-9a-f]{40}$/)
    expect(small.size).toBeGreaterThan(0)
    // The CDN was never touched by HEAD requests on the hub.
    expect(hf.cdnRequests()).toHaveLength(0)
  })
})

describe('HuggingFaceClient errors', () => {
  it('gated repo: metadata is public, content asks to request access', async () => {
    const m = await client().getModel('atelier-test/gated-model')
    expect(m.gated).toBe('manual')
    const anon = await catchError(client().fileInfo('atelier-test/gated-model', 'gated.safetensors'))
    expect(anon.code).toBe('gated')
    expect(anon.status).toBe(401)
    expect(anon.message).toContain(
      `request access on ${hf.url.replace('http://', '')}/atelier-test/gated-model`,
    )
    const pending = await catchError(
      client('hf_atelier_pending').fileInfo('atelier-test/gated-model', 'gated.safetensors'),
    )
    expect(pending.code).toBe('gated')
    expect(pending.status).toBe(403)
    expect(pending.message).toMatch(/no access to atelier-test\/gated-model yet/)
    const ok = await client('hf_atelier_ok').fileInfo('atelier-test/gated-model', 'gated.safetensors')
    expect(ok.sha256).toBe(models.checkpoint.sha256)
  })

  it('private / missing repos, bad tokens and bad revisions', async () => {
    const priv = await catchError(client().getModel('atelier-test/private-model'))
    expect(priv.code).toBe('not-found')
    expect(priv.message).toMatch(/private/)
    const bad = await catchError(client('hf_wrong').getModel('atelier-test/tiny-lora'))
    expect(bad.code).toBe('unauthorized')
    const rev = await catchError(client().getModel('atelier-test/tiny-lora', 'nope'))
    expect(rev.message).toMatch(/revision not found/)
    const missing = await catchError(client().fileInfo('atelier-test/tiny-lora', 'nope.safetensors'))
    expect(missing.message).toMatch(/file or folder not found/)
  })

  it('429 waits for the RateLimit reset, then succeeds', async () => {
    hf.faults.failNext.push({ status: 429, on: 'api', headers: { ratelimit: '"api";r=0;t=12' } })
    const m = await client().getModel('atelier-test/tiny-lora')
    expect(m.id).toBe('atelier-test/tiny-lora')
    expect(sleeps).toEqual([12_000])
  })
})
