import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { setupDownloadEnv, type DownloadTestEnv } from './test-setup'
import type { DownloadJob } from './types'

let env: DownloadTestEnv

beforeAll(async () => {
  env = await setupDownloadEnv()
})
afterAll(async () => {
  await env.close()
})

it('kill -9 mid-download, then a new manager on the same state folder resumes with a 206 to a verified file', async () => {
  const stateDir = await env.tempDir('state')
  const dest = await env.tempDir('lib')
  const url = `${env.civitai.url}/api/download/models/2001`
  const { checkpoint } = env.models
  // Slow mode: ~700 KB at 150 KB/s takes ~5 s, so the kill lands mid-transfer.
  env.civitai.setFaults({ throttleBytesPerSec: 150_000 })
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'kill-resume.child.ts'),
      stateDir,
      url,
      dest,
      checkpoint.sha256,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  )
  let seen = 0
  for await (const line of createInterface({ input: child.stdout })) {
    const msg = JSON.parse(line) as { bytes?: number }
    if (typeof msg.bytes === 'number') seen = msg.bytes
    if (seen >= 200_000) {
      child.kill('SIGKILL')
      break
    }
  }
  expect(await exited, stderr).toBe('SIGKILL')
  expect(seen).toBeGreaterThanOrEqual(200_000)
  const saved = JSON.parse(fs.readFileSync(path.join(stateDir, 'downloads.json'), 'utf8')) as {
    jobs: DownloadJob[]
  }
  const job = saved.jobs[0]
  expect(job?.state).toBe('downloading')
  const partial = fs.statSync(job?.partialPath ?? '').size
  expect(partial).toBeGreaterThan(0)
  expect(partial).toBeLessThan(checkpoint.size)

  env.civitai.setFaults({ throttleBytesPerSec: null })
  env.civitai.log.length = 0
  const m = await env.open(stateDir)
  const done = await m.whenSettled(job?.id ?? '')
  expect(done.state).toBe('done')
  expect(done.verified).toBe(true)
  const resumed = env.civitai.storageRequests()
  expect(resumed).toHaveLength(1)
  expect(resumed[0]?.headers.range).toBe(`bytes=${partial}-`)
  expect(resumed[0]?.headers['if-range']).toBe(job?.etag)
  expect(resumed[0]?.status).toBe(206)
  const bytes = fs.readFileSync(path.join(dest, checkpoint.name))
  expect(crypto.createHash('sha256').update(bytes).digest('hex')).toBe(checkpoint.sha256)
  expect(fs.readdirSync(dest)).toEqual([checkpoint.name])
})
