import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { listen } from '../../e2e/fixtures/remote/fixture-http'
import { CivitaiClient } from '../remote/civitai/client'
import { HuggingFaceClient } from '../remote/huggingface/client'
import { setupDownloadEnv, type DownloadTestEnv } from './test-setup'
import type { DownloadJob } from './types'

let env: DownloadTestEnv

beforeAll(async () => {
  env = await setupDownloadEnv()
})
afterAll(async () => {
  await env.close()
})
beforeEach(() => env.reset())

const sha256 = (file: string): string =>
  crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
const dl = (versionId: number, query = ''): string =>
  `${env.civitai.url}/api/download/models/${versionId}${query}`

function waitFor(
  m: { on: (e: 'progress', fn: (p: { id: string; bytes: number }) => void) => () => void },
  id: string,
  bytes: number,
): Promise<void> {
  return new Promise((resolve) => {
    const off = m.on('progress', (p) => {
      if (p.id === id && p.bytes >= bytes) {
        off()
        resolve()
      }
    })
  })
}

function waitForState(
  m: { on: (e: 'state', fn: (j: DownloadJob) => void) => () => void },
  id: string,
  state: string,
): Promise<void> {
  return new Promise((resolve) => {
    const off = m.on('state', (j) => {
      if (j.id === id && j.state === state) {
        off()
        resolve()
      }
    })
  })
}

describe('installing from Civitai', () => {
  it('downloads a checkpoint chosen through the API, verified, with the key kept off the storage host', async () => {
    const stateDir = await env.tempDir('state')
    const dest = await env.tempDir('lib')
    const m = await env.open(stateDir)
    const version = await new CivitaiClient({
      baseUrl: env.civitai.url,
      token: 'civitai-test-key',
    }).getVersion(2001)
    const file = version.files.find((f) => f.primary)
    if (!file) throw new Error('no primary file')
    const states: string[] = []
    m.on('state', (j) => states.push(j.state))
    let lastProgress = 0
    m.on('progress', (p) => (lastProgress = p.bytes))
    const job = await m.enqueue({
      url: file.downloadUrl,
      destDir: dest,
      fileName: file.name,
      expectedSha256: file.sha256 ?? undefined,
      expectedSize: file.sizeBytes ?? undefined,
      source: 'civitai',
      meta: { modelId: version.modelId, versionId: version.id },
    })
    const done = await m.whenSettled(job.id)
    expect(done.state).toBe('done')
    expect(done.verified).toBe(true)
    expect(done.sha256).toBe(env.models.checkpoint.sha256)
    expect(done.destPath).toBe(path.join(dest, 'tinyCheckpoint_v10.safetensors'))
    expect(sha256(done.destPath ?? '')).toBe(env.models.checkpoint.sha256)
    expect(done.request.meta).toEqual({ modelId: '1001', versionId: '2001' })
    expect(states).toEqual(['queued', 'downloading', 'verifying', 'done'])
    expect(lastProgress).toBe(env.models.checkpoint.size)
    expect(fs.readdirSync(dest)).toEqual(['tinyCheckpoint_v10.safetensors'])
    // Key on the API host, never on the storage host (which would answer 400 if it got one).
    const api = env.civitai.log.find((r) => r.role === 'download')
    expect(api?.headers.authorization).toBe('Bearer civitai-test-key')
    expect(api?.headers['user-agent']).toMatch(/^Atelier\//)
    const storage = env.civitai.storageRequests()
    expect(storage).toHaveLength(1)
    expect(storage[0]?.headers.authorization).toBeUndefined()
    expect(storage[0]?.status).toBe(200)
    // Persisted.
    const state = JSON.parse(fs.readFileSync(path.join(stateDir, 'downloads.json'), 'utf8')) as {
      jobs: DownloadJob[]
    }
    expect(state.jobs[0]?.state).toBe('done')
  })

  it('names a LoRA from Content-Disposition when no name is given', async () => {
    const m = await env.open(await env.tempDir('state'))
    const dest = await env.tempDir('lib')
    const job = await m.enqueue({
      url: dl(2003),
      destDir: dest,
      expectedSha256: env.models.lora.sha256.toUpperCase(),
      source: 'civitai',
    })
    const done = await m.whenSettled(job.id)
    expect(done.state).toBe('done')
    expect(done.fileName).toBe('tinyStyleLora_v1.safetensors')
    expect(sha256(path.join(dest, 'tinyStyleLora_v1.safetensors'))).toBe(env.models.lora.sha256)
  })

  it('never overwrites an existing file', async () => {
    const m = await env.open(await env.tempDir('state'))
    const dest = await env.tempDir('lib')
    fs.writeFileSync(path.join(dest, 'tinyStyleLora_v1.safetensors'), 'mine')
    const done = await m.whenSettled(
      (await m.enqueue({ url: dl(2003), destDir: dest, source: 'civitai' })).id,
    )
    expect(done.fileName).toBe('tinyStyleLora_v1 (1).safetensors')
    expect(done.verified).toBe(false) // no expected hash given
    expect(fs.readFileSync(path.join(dest, 'tinyStyleLora_v1.safetensors'), 'utf8')).toBe('mine')
  })

  it('early access → 403 early-access, not retried; the buyer key works', async () => {
    const m = await env.open(await env.tempDir('state'))
    const dest = await env.tempDir('lib')
    const done = await m.whenSettled(
      (await m.enqueue({ url: dl(2005), destDir: dest, source: 'civitai' })).id,
    )
    expect(done.state).toBe('failed')
    expect(done.error?.code).toBe('early-access')
    expect(done.error?.message).toMatch(/Early Access until 2099-01-01/)
    expect(env.sleeps).toHaveLength(0)
    expect(fs.readdirSync(dest)).toEqual([])
    const buyer = await env.open(await env.tempDir('state'), {
      credentials: () => 'civitai-early-access-key',
    })
    const ok = await buyer.whenSettled(
      (await buyer.enqueue({ url: dl(2005), destDir: dest, source: 'civitai' })).id,
    )
    expect(ok.state).toBe('done')
    expect(ok.fileName).toBe('earlyBird_v1.safetensors')
  })

  it('login-required without a key → unauthorized; archived → gone', async () => {
    const m = await env.open(await env.tempDir('state'), { credentials: () => undefined })
    const dest = await env.tempDir('lib')
    const login = await m.whenSettled(
      (await m.enqueue({ url: dl(2006), destDir: dest, source: 'civitai' })).id,
    )
    expect(login.error?.code).toBe('unauthorized')
    expect(login.error?.message).toMatch(/logged in.*API key/)
    expect(env.civitai.log.find((r) => r.role === 'download')?.headers.authorization).toBeUndefined()
    const archived = await m.whenSettled(
      (await m.enqueue({ url: dl(2007), destDir: dest, source: 'civitai' })).id,
    )
    expect(archived.error?.code).toBe('gone')
    expect(archived.error?.message).toMatch(/archived/)
  })
})

describe('installing from Hugging Face', () => {
  it('downloads an LFS LoRA through the CDN redirect without leaking the token', async () => {
    const m = await env.open(await env.tempDir('state'))
    const dest = await env.tempDir('lib')
    const model = await new HuggingFaceClient({ baseUrl: env.hf.url }).getModel('atelier-test/tiny-xl-lora')
    const file = model.versions[0]?.files.find((f) => f.primary)
    expect(file?.sha256).toBe(env.models.sdxlLora.sha256)
    const job = await m.enqueue({
      url: file?.downloadUrl ?? '',
      destDir: dest,
      expectedSha256: file?.sha256 ?? undefined,
      source: 'huggingface',
    })
    const done = await m.whenSettled(job.id)
    expect(done.state).toBe('done')
    expect(done.fileName).toBe('pytorch_lora_weights.safetensors')
    const hub = env.hf.log.find((r) => r.role === 'download')
    expect(hub?.headers.authorization).toBe('Bearer hf_atelier_ok')
    expect(hub?.status).toBe(302)
    expect(env.hf.cdnRequests()[0]?.headers.authorization).toBeUndefined()
  })

  it('downloads small regular files through the same-host resolve-cache redirect', async () => {
    const m = await env.open(await env.tempDir('state'))
    const dest = await env.tempDir('lib')
    const files = await new HuggingFaceClient({ baseUrl: env.hf.url }).diffusersFiles(
      'atelier-test/tiny-sd-diffusers',
    )
    const cfg = files.find((f) => f.path === 'unet/config.json')
    const done = await m.whenSettled(
      (
        await m.enqueue({
          url: cfg?.downloadUrl ?? '',
          destDir: path.join(dest, 'unet'),
          source: 'huggingface',
        })
      ).id,
    )
    expect(done.state).toBe('done')
    expect(done.destPath).toBe(path.join(dest, 'unet', 'config.json'))
    expect(JSON.parse(fs.readFileSync(done.destPath ?? '', 'utf8'))).toMatchObject({
      _class_name: 'UNet2DConditionModel',
    })
  })

  it('gated repo: anonymous and unapproved tokens fail with a request-access message', async () => {
    const url = `${env.hf.url}/atelier-test/gated-model/resolve/main/gated.safetensors`
    const dest = await env.tempDir('lib')
    const anon = await env.open(await env.tempDir('state'), { credentials: () => undefined })
    const a = await anon.whenSettled((await anon.enqueue({ url, destDir: dest, source: 'huggingface' })).id)
    expect(a.error?.code).toBe('gated')
    expect(a.error?.message).toContain('request access on')
    expect(a.error?.message).toContain('/atelier-test/gated-model')
    const pending = await env.open(await env.tempDir('state'), { credentials: () => 'hf_atelier_pending' })
    const p = await pending.whenSettled(
      (await pending.enqueue({ url, destDir: dest, source: 'huggingface' })).id,
    )
    expect(p.error?.code).toBe('gated')
    expect(p.error?.message).toMatch(/no access to atelier-test\/gated-model yet/)
    expect(env.sleeps).toHaveLength(0)
    const ok = await env.open(await env.tempDir('state'))
    const o = await ok.whenSettled(
      (
        await ok.enqueue({
          url,
          destDir: dest,
          source: 'huggingface',
          expectedSha256: env.models.checkpoint.sha256,
        })
      ).id,
    )
    expect(o.state).toBe('done')
  })
})

describe('faults', () => {
  it('resumes after a dropped connection with Range + If-Range → 206', async () => {
    env.civitai.setFaults({ dropAfterBytes: 200_000, dropTimes: 1 })
    const m = await env.open(await env.tempDir('state'))
    const done = await m.whenSettled(
      (
        await m.enqueue({
          url: dl(2001),
          destDir: await env.tempDir('lib'),
          expectedSha256: env.models.checkpoint.sha256,
          source: 'civitai',
        })
      ).id,
    )
    expect(done.state).toBe('done')
    expect(done.verified).toBe(true)
    const storage = env.civitai.storageRequests()
    expect(storage).toHaveLength(2)
    const range = storage[1]?.headers.range ?? ''
    const from = Number(/^bytes=(\d+)-$/.exec(range)?.[1])
    expect(from).toBeGreaterThan(0)
    expect(from).toBeLessThanOrEqual(200_000)
    expect(storage[1]?.headers['if-range']).toMatch(/^"[0-9a-f]{32}"$/)
    expect(storage[1]?.status).toBe(206)
    expect(env.sleeps).toHaveLength(1)
  })

  it('hashes on a worker thread as well (resumed prefix included)', async () => {
    env.civitai.setFaults({ dropAfterBytes: 300_000, dropTimes: 1 })
    const m = await env.open(await env.tempDir('state'), { hashInWorker: 'always' })
    const dest = await env.tempDir('lib')
    const expectedSha256 = env.models.checkpoint.sha256
    const done = await m.whenSettled(
      (await m.enqueue({ url: dl(2001), destDir: dest, expectedSha256, source: 'civitai' })).id,
    )
    expect(done.state).toBe('done')
    expect(done.sha256).toBe(expectedSha256)
    expect(env.civitai.storageRequests()[1]?.status).toBe(206)
    env.civitai.setFaults({ corruptAt: 650_000 })
    const bad = await m.whenSettled(
      (await m.enqueue({ url: dl(2001), destDir: dest, expectedSha256, source: 'civitai' })).id,
    )
    expect(bad.error?.code).toBe('hash-mismatch')
  })

  it('downloads a chunked response (no Content-Length) and resumes it after a drop, inline and on a worker', async () => {
    for (const hashInWorker of ['never', 'always'] as const) {
      env.reset()
      env.civitai.setFaults({ chunked: true, dropAfterBytes: 250_000, dropTimes: 1 })
      const m = await env.open(await env.tempDir('state'), { hashInWorker })
      const done = await m.whenSettled(
        (
          await m.enqueue({
            url: dl(2001),
            destDir: await env.tempDir('lib'),
            expectedSha256: env.models.checkpoint.sha256,
            source: 'civitai',
          })
        ).id,
      )
      expect(done.state).toBe('done')
      expect(sha256(done.destPath ?? '')).toBe(env.models.checkpoint.sha256)
      const storage = env.civitai.storageRequests()
      expect(storage).toHaveLength(2)
      expect(storage[1]?.status).toBe(206)
      const from = Number(/^bytes=(\d+)-$/.exec(storage[1]?.headers.range ?? '')?.[1])
      expect(from).toBeGreaterThan(0)
      expect(from).toBeLessThanOrEqual(250_000)
    }
  })

  it('restarts from zero when the server ignores Range (200)', async () => {
    env.civitai.setFaults({ dropAfterBytes: 150_000, dropTimes: 1, ignoreRange: true })
    const m = await env.open(await env.tempDir('state'))
    const done = await m.whenSettled(
      (
        await m.enqueue({
          url: dl(2001),
          destDir: await env.tempDir('lib'),
          expectedSha256: env.models.checkpoint.sha256,
          source: 'civitai',
        })
      ).id,
    )
    expect(done.state).toBe('done')
    expect(sha256(done.destPath ?? '')).toBe(env.models.checkpoint.sha256)
    const storage = env.civitai.storageRequests()
    expect(storage[1]?.headers.range).toMatch(/^bytes=\d+-$/)
    expect(storage[1]?.status).toBe(200)
  })

  it('corrupted bytes are rejected: nothing in the destination, the file is quarantined', async () => {
    env.civitai.setFaults({ corruptAt: 5000 })
    const stateDir = await env.tempDir('state')
    const dest = await env.tempDir('lib')
    const m = await env.open(stateDir)
    const done = await m.whenSettled(
      (
        await m.enqueue({
          url: dl(2001),
          destDir: dest,
          expectedSha256: env.models.checkpoint.sha256,
          source: 'civitai',
        })
      ).id,
    )
    expect(done.state).toBe('failed')
    expect(done.error?.code).toBe('hash-mismatch')
    expect(done.error?.message).toMatch(
      /tinyCheckpoint_v10\.safetensors is corrupt.*moved to .*quarantine.*not installed/,
    )
    expect(fs.readdirSync(dest)).toEqual([])
    const q = fs.readdirSync(path.join(stateDir, 'quarantine'))
    expect(q).toHaveLength(1)
    expect(q[0]).toBe('tinyCheckpoint_v10.safetensors.corrupt')
    // A retry after the fault is gone starts from zero and succeeds.
    env.civitai.resetFaults()
    m.retry(done.id)
    const again = await m.whenSettled(done.id)
    expect(again.state).toBe('done')
    expect(fs.readdirSync(dest)).toEqual(['tinyCheckpoint_v10.safetensors'])
  })

  it('retries 429 (no Retry-After) and 503 (Retry-After: 3) with backoff', async () => {
    env.civitai.faults.failNext.push(
      { status: 429, on: 'download' },
      { status: 503, on: 'storage', retryAfter: '3' },
    )
    const m = await env.open(await env.tempDir('state'))
    const done = await m.whenSettled(
      (await m.enqueue({ url: dl(2004), destDir: await env.tempDir('lib'), source: 'civitai' })).id,
    )
    expect(done.state).toBe('done')
    expect(env.sleeps).toEqual([750, 3000])
  })

  it('gives up after the retry budget', async () => {
    for (let i = 0; i < 10; i++) env.civitai.faults.failNext.push({ status: 503, on: 'download' })
    const m = await env.open(await env.tempDir('state'), { retry: { retries: 2 } })
    const done = await m.whenSettled(
      (await m.enqueue({ url: dl(2004), destDir: await env.tempDir('lib'), source: 'civitai' })).id,
    )
    expect(done.state).toBe('failed')
    expect(done.error?.code).toBe('server-error')
    expect(env.sleeps).toHaveLength(2)
  })

  it('sanitises a hostile Content-Disposition name and stays inside the folder', async () => {
    env.civitai.setFaults({
      contentDisposition: `attachment; filename*=UTF-8''..%2F..%2Fevil%0A%00.safetensors; filename="x"`,
    })
    const dest = await env.tempDir('lib')
    const m = await env.open(await env.tempDir('state'))
    const done = await m.whenSettled(
      (await m.enqueue({ url: dl(2003), destDir: dest, source: 'civitai' })).id,
    )
    expect(done.state).toBe('done')
    const name = done.fileName ?? ''
    expect(name).not.toMatch(/[/\\\0\n]/)
    expect(name).not.toContain('..')
    expect(name.endsWith('evil.safetensors')).toBe(true)
    expect(path.dirname(done.destPath ?? '')).toBe(dest)
    expect(fs.readdirSync(dest)).toEqual([name])
    expect(fs.existsSync(path.join(dest, '..', '..', 'evil.safetensors'))).toBe(false)
  })

  it('refuses to start without enough free space (statfs)', async () => {
    const dest = await env.tempDir('lib')
    const m = await env.open(await env.tempDir('state'), {
      fs: { statfs: async () => ({ bavail: 10, bsize: 4096 }) },
    })
    const done = await m.whenSettled(
      (
        await m.enqueue({
          url: dl(2001),
          destDir: dest,
          expectedSize: env.models.checkpoint.size,
          source: 'civitai',
        })
      ).id,
    )
    expect(done.state).toBe('failed')
    expect(done.error?.code).toBe('disk-full')
    expect(done.error?.message).toMatch(/Not enough free space in .*: 685\.\d KiB needed, 40\.0 KiB free/)
    expect(env.civitai.log).toHaveLength(0)
  })

  it('ENOSPC while writing fails clearly, keeps the partial file, and a retry resumes it', async () => {
    const dest = await env.tempDir('lib')
    const stateDir = await env.tempDir('state')
    const limit = 300_000
    const full = {
      open: async (file: string, flags: 'a' | 'w') => {
        const fd = fs.openSync(file, flags)
        let written = flags === 'a' ? fs.fstatSync(fd).size : 0
        return {
          write: async (chunk: Buffer) => {
            const room = Math.max(0, limit - written)
            if (room > 0) fs.writeSync(fd, chunk.subarray(0, room))
            written += Math.min(room, chunk.length)
            if (chunk.length > room) {
              const err = new Error('ENOSPC: no space left on device, write') as NodeJS.ErrnoException
              err.code = 'ENOSPC'
              throw err
            }
          },
          close: async () => fs.closeSync(fd),
        }
      },
    }
    const m = await env.open(stateDir, { fs: full })
    const job = await m.enqueue({
      url: dl(2001),
      destDir: dest,
      expectedSha256: env.models.checkpoint.sha256,
      source: 'civitai',
    })
    const failed = await m.whenSettled(job.id)
    expect(failed.state).toBe('failed')
    expect(failed.error?.code).toBe('disk-full')
    expect(failed.error?.message).toMatch(
      /Disk full while writing tinyCheckpoint_v10\.safetensors.*partial file was kept/,
    )
    expect(fs.statSync(failed.partialPath).size).toBe(limit)
    expect(env.sleeps).toHaveLength(0)
    await m.dispose()
    env.civitai.log.length = 0
    const m2 = await env.open(stateDir)
    m2.retry(job.id)
    const done = await m2.whenSettled(job.id)
    expect(done.state).toBe('done')
    expect(env.civitai.storageRequests()[0]?.headers.range).toBe(`bytes=${limit}-`)
    expect(env.civitai.storageRequests()[0]?.status).toBe(206)
    expect(sha256(done.destPath ?? '')).toBe(env.models.checkpoint.sha256)
  })

  it('a redirect to the login page (browser-like User-Agent) is an auth failure, not a file', async () => {
    const m = await env.open(await env.tempDir('state'))
    const dest = await env.tempDir('lib')
    const login = await m.whenSettled(
      (
        await m.enqueue({
          url: dl(2006),
          destDir: dest,
          source: 'civitai',
          useCredentials: false,
          headers: { 'user-agent': 'Mozilla/5.0' },
        })
      ).id,
    )
    expect(login.state).toBe('failed')
    expect(login.error?.code).toBe('unauthorized')
    expect(fs.readdirSync(dest)).toEqual([])
  })
})

describe('content sanity', () => {
  it('refuses an HTML page served where a model file was expected', async () => {
    const page = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end('<!doctype html><title>Sign in</title>')
    })
    try {
      const m = await env.open(await env.tempDir('state'))
      const dest = await env.tempDir('lib')
      const done = await m.whenSettled(
        (await m.enqueue({ url: `${page.url}/model.safetensors`, destDir: dest })).id,
      )
      expect(done.state).toBe('failed')
      expect(done.error?.code).toBe('not-a-model')
      expect(done.error?.message).toMatch(/sent a web page instead of the file/)
      expect(fs.readdirSync(dest)).toEqual([])
    } finally {
      await page.close()
    }
  })
})

describe('pause, resume, cancel, restart', () => {
  it('pauses and resumes a throttled download with a 206', async () => {
    env.civitai.setFaults({ throttleBytesPerSec: 400_000 })
    const m = await env.open(await env.tempDir('state'))
    const job = await m.enqueue({
      url: dl(2001),
      destDir: await env.tempDir('lib'),
      expectedSha256: env.models.checkpoint.sha256,
      source: 'civitai',
    })
    await waitFor(m, job.id, 100_000)
    const paused = waitForState(m, job.id, 'paused')
    m.pause(job.id)
    await paused
    const partial = fs.statSync(m.get(job.id)?.partialPath ?? '').size
    expect(partial).toBeGreaterThanOrEqual(100_000)
    env.civitai.setFaults({ throttleBytesPerSec: null })
    m.resume(job.id)
    const done = await m.whenSettled(job.id)
    expect(done.state).toBe('done')
    const last = env.civitai.storageRequests().at(-1)
    expect(last?.headers.range).toBe(`bytes=${partial}-`)
    expect(last?.status).toBe(206)
  })

  it('cancel removes the partial file', async () => {
    env.civitai.setFaults({ throttleBytesPerSec: 300_000 })
    const dest = await env.tempDir('lib')
    const m = await env.open(await env.tempDir('state'))
    const job = await m.enqueue({ url: dl(2001), destDir: dest, source: 'civitai' })
    await waitFor(m, job.id, 50_000)
    m.cancel(job.id)
    const done = await m.whenSettled(job.id)
    expect(done.state).toBe('cancelled')
    expect(fs.readdirSync(dest)).toEqual([])
  })

  it('respects the concurrency limit', async () => {
    env.civitai.setFaults({ throttleBytesPerSec: 2_000_000 })
    const m = await env.open(await env.tempDir('state'), { concurrency: 1 })
    const dest = await env.tempDir('lib')
    let maxActive = 0
    m.on('state', () => {
      maxActive = Math.max(maxActive, m.list().filter((j) => j.state === 'downloading').length)
    })
    const jobs = await Promise.all(
      [2003, 2004, 2001].map((v) => m.enqueue({ url: dl(v), destDir: dest, source: 'civitai' })),
    )
    const done = await Promise.all(jobs.map((j) => m.whenSettled(j.id)))
    expect(done.map((j) => j.state)).toEqual(['done', 'done', 'done'])
    expect(maxActive).toBe(1)
  })

  it('dispose mid-download, reopen: the job resumes from its partial file', async () => {
    env.civitai.setFaults({ throttleBytesPerSec: 300_000 })
    const stateDir = await env.tempDir('state')
    const m = await env.open(stateDir)
    const job = await m.enqueue({
      url: dl(2001),
      destDir: await env.tempDir('lib'),
      expectedSha256: env.models.checkpoint.sha256,
      source: 'civitai',
    })
    await waitFor(m, job.id, 100_000)
    await m.dispose()
    expect(JSON.parse(fs.readFileSync(path.join(stateDir, 'downloads.json'), 'utf8')).jobs[0].state).toBe(
      'queued',
    )
    env.civitai.setFaults({ throttleBytesPerSec: null })
    const m2 = await env.open(stateDir)
    const done = await m2.whenSettled(job.id)
    expect(done.state).toBe('done')
    expect(env.civitai.storageRequests().at(-1)?.status).toBe(206)
  })

  it('a complete partial file answered with 416 is verified and installed', async () => {
    const stateDir = await env.tempDir('state')
    const dest = await env.tempDir('lib')
    const partialPath = path.join(dest, '.crafted.partial')
    fs.copyFileSync(env.models.lora.path, partialPath)
    const now = new Date().toISOString()
    const job: DownloadJob = {
      id: 'crafted',
      state: 'downloading',
      request: { url: dl(2003), destDir: dest, expectedSha256: env.models.lora.sha256, source: 'civitai' },
      fileName: 'tinyStyleLora_v1.safetensors',
      destPath: null,
      partialPath,
      bytes: env.models.lora.size,
      total: env.models.lora.size,
      etag: `"${env.models.lora.sha256.slice(0, 32)}"`,
      lastModified: null,
      sha256: null,
      verified: false,
      error: null,
      attempts: 0,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
    }
    fs.writeFileSync(path.join(stateDir, 'downloads.json'), JSON.stringify({ version: 1, jobs: [job] }))
    const m = await env.open(stateDir)
    const done = await m.whenSettled('crafted')
    expect(done.state).toBe('done')
    expect(done.verified).toBe(true)
    expect(env.civitai.storageRequests()[0]?.status).toBe(416)
    expect(fs.readdirSync(dest)).toEqual(['tinyStyleLora_v1.safetensors'])
  })
})
