/**
 * Clip skip through a job: the request takes A1111's range (1 to 12), the conditioning changes, and the
 * infotext carries `Clip skip: N` (omitted at 1, as A1111 does) and always the RNG; both read back.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { generateRequestSchema } from '../../../preload/contract'
import type { GenerateRequest } from '../../../preload/contract-types'
import { decodeImage } from '../../engine/image'
import { readImageParameters } from './parameters'
import type { FromWorker, WorkerJob } from './protocol'
import { JobRunner } from './runner'

const SLOW = 300_000
let tmp = ''
let model = ''
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-clip-skip-job-'))
  model = (await ensureTinyModels()).sd15
}, SLOW)
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const request: GenerateRequest = {
  mode: 'txt2img',
  model: 'tiny',
  prompt: 'a lighthouse at dusk',
  steps: 2,
  width: 64,
  height: 64,
  seed: 5,
  sampler: 'Euler',
}

describe('Clip skip in jobs', () => {
  it('the request takes 1 to 12', () => {
    for (const clipSkip of [1, 2, 3, 12])
      expect(generateRequestSchema.safeParse({ ...request, clipSkip }).success).toBe(true)
    for (const clipSkip of [0, 13, 1.5])
      expect(generateRequestSchema.safeParse({ ...request, clipSkip }).success).toBe(false)
  })

  it(
    'changes the picture and writes Clip skip (not at 1) and the RNG',
    async () => {
      const messages: FromWorker[] = []
      const runner = new JobRunner((m) => messages.push(m))
      const job = (id: string, extra: Partial<GenerateRequest>): WorkerJob => ({
        jobId: id,
        request: { ...request, ...extra },
        seed: 5,
        model: { path: model, name: 'tiny-sd15' },
        loras: [],
        cacheRoot: path.join(tmp, 'cache'),
        appVersion: 'test',
        executionProvider: 'cpu',
      })
      try {
        await runner.run(job('one', {}))
        await runner.run(job('three', { clipSkip: 3 }))
        await runner.run(job('gpu', { rng: 'gpu' }))
        await runner.run(job('thirteen', { clipSkip: 13 }))
        const errors = messages.flatMap((m) => (m.type === 'error' ? [m] : []))
        expect(errors.map((e) => e.jobId)).toEqual(['thirteen'])
        expect(errors[0]?.error.message).toMatch(
          /Clip skip 13 is more than this text encoder has layers \(2\)/,
        )
        const pngs = messages.flatMap((m) => (m.type === 'images' ? m.images.map((i) => i.png) : []))
        expect(pngs).toHaveLength(3)
        const a = readImageParameters(pngs[0] as Uint8Array)
        const b = readImageParameters(pngs[1] as Uint8Array)
        expect(a.clipSkip).toBeUndefined()
        expect(a.text).not.toMatch(/Clip skip/)
        expect(a.rng).toBe('CPU')
        expect(b).toMatchObject({ clipSkip: 3, rng: 'CPU' })
        expect(readImageParameters(pngs[2] as Uint8Array)).toMatchObject({ rng: 'NV' })
        const [x, y] = await Promise.all(pngs.slice(0, 2).map((p) => decodeImage(p)))
        expect(Buffer.from(x?.data ?? []).equals(Buffer.from(y?.data ?? []))).toBe(false)
      } finally {
        runner.handle({ type: 'dispose' })
      }
    },
    SLOW,
  )
})
