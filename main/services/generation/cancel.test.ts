import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { GenerationResult } from '../../../preload/contract-types'
import { EventBus } from '../events'
import { JobManager } from '../jobs'
import { GalleryStore } from './gallery'
import { readImageParameters } from './parameters'
import type { ToWorker } from './protocol'
import type { GenerationResolvers } from './resolve'
import { GenerationService } from './service'
import type { GenerationWorker, WorkerHandlers } from './worker-client'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-cancel-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** A worker stuck in one long step: it reports step 1 and then ignores `cancel`, like a 4096² UNet call. */
function stuckWorker(h: WorkerHandlers, log: string[]): GenerationWorker {
  let alive = true
  return {
    get alive() {
      return alive
    },
    send: (m: ToWorker) => {
      log.push(m.type)
      if (m.type === 'run')
        setTimeout(
          () =>
            h.message({
              type: 'progress',
              jobId: m.job.jobId,
              batch: 0,
              batchCount: 1,
              step: 1,
              total: 30,
              etaMs: 1e6,
            }),
          5,
        )
    },
    terminate: async () => {
      log.push('terminate')
      alive = false
    },
  } as unknown as GenerationWorker
}

describe('cancel interrupts a long single step (attack 14)', () => {
  it('terminates a worker that does not stop within the grace period, and the next job gets a fresh one', async () => {
    const bus = new EventBus()
    const jobs = new JobManager(bus)
    const logs: string[][] = []
    const resolvers: GenerationResolvers = {
      model: () => ({ path: path.join(tmp, 'm.safetensors'), name: 'm' }),
      lora: () => {
        throw new Error('no LoRAs here')
      },
    }
    const service = new GenerationService({
      bus,
      jobs,
      gallery: new GalleryStore(path.join(tmp, 'out'), readImageParameters),
      resolvers,
      cacheRoot: path.join(tmp, 'cache'),
      appVersion: 'test',
      cancelGraceMs: 300,
      makeWorker: (h) => {
        const log: string[] = []
        logs.push(log)
        return stuckWorker(h, log)
      },
    })
    const finished: GenerationResult[] = []
    bus.subscribe((e) => {
      if (e.name === 'generate:finished') finished.push(e.payload)
    })
    const req = {
      mode: 'txt2img' as const,
      model: 'm',
      prompt: 'a cat',
      steps: 30,
      width: 4096,
      height: 4096,
    }
    const { jobId } = await service.start(req)
    await new Promise((r) => setTimeout(r, 50))
    const t0 = performance.now()
    service.cancel(jobId)
    while (!finished.some((f) => f.jobId === jobId)) await new Promise((r) => setTimeout(r, 10))
    const ms = performance.now() - t0
    expect(ms).toBeLessThan(2000)
    expect(ms).toBeGreaterThanOrEqual(250)
    expect(finished.find((f) => f.jobId === jobId)?.state).toBe('cancelled')
    expect(logs[0]).toEqual(['run', 'cancel', 'terminate'])
    // the queue moves on with a new worker
    const second = await service.start(req)
    await new Promise((r) => setTimeout(r, 50))
    expect(logs).toHaveLength(2)
    expect(logs[1]).toEqual(['run'])
    service.cancel(second.jobId)
    while (!finished.some((f) => f.jobId === second.jobId)) await new Promise((r) => setTimeout(r, 10))
    await service.dispose()
    expect(jobs.list().find((j) => j.id === jobId)?.state).toBe('cancelled')
  })
})

describe('finished jobs are pruned (attack 14)', () => {
  it('by count and by age', async () => {
    let now = 0
    const jobs = new JobManager(new EventBus(), { maxFinished: 5, maxAgeMs: 1000, now: () => now })
    for (let i = 0; i < 12; i++) jobs.start('x', `job ${i}`, async () => 'ok')
    await new Promise((r) => setTimeout(r, 10))
    const labels = jobs.list().map((j) => j.label)
    expect(labels).toEqual(['job 7', 'job 8', 'job 9', 'job 10', 'job 11'])
    let release = (): void => undefined
    jobs.start('x', 'running', () => new Promise<void>((r) => (release = r)))
    now = 5000
    expect(jobs.list().map((j) => j.label)).toEqual(['running'])
    release()
  })
})
