import crypto from 'node:crypto'
import type { JobInfo } from '../../preload/contract-types'
import { AppError } from './errors'
import type { EventBus } from './events'

export interface JobContext {
  signal: AbortSignal
  /** progress in [0, 1]; the message is shown beside the bar. */
  report(progress: number, message?: string): void
}

/**
 * Long work runs as jobs: a request returns the job id at once, progress arrives as `jobs:progress`
 * events, and `jobs:cancel` aborts the job's signal.
 */
export interface JobRetention {
  /** Finished jobs kept at most (oldest dropped first); default 200. */
  maxFinished?: number
  /** Finished jobs dropped after this many ms; default one hour. */
  maxAgeMs?: number
  now?: () => number
}

export class JobManager {
  private readonly jobs = new Map<string, { info: JobInfo; abort: AbortController; finishedAt?: number }>()
  private readonly maxFinished: number
  private readonly maxAgeMs: number
  private readonly now: () => number

  constructor(
    private readonly bus: EventBus,
    retention: JobRetention = {},
  ) {
    this.maxFinished = retention.maxFinished ?? 200
    this.maxAgeMs = retention.maxAgeMs ?? 60 * 60 * 1000
    this.now = retention.now ?? Date.now
  }

  /** Finished jobs are pruned by age and count, so a long-running server does not keep every job forever. */
  private prune(): void {
    const now = this.now()
    const finished = [...this.jobs.entries()].filter(([, j]) => j.finishedAt !== undefined)
    let extra = finished.length - this.maxFinished
    for (const [id, j] of finished) {
      if (extra > 0 || now - (j.finishedAt as number) > this.maxAgeMs) {
        this.jobs.delete(id)
        extra--
      }
    }
  }

  start(kind: string, label: string, work: (ctx: JobContext) => Promise<string | void>): JobInfo {
    const info: JobInfo = {
      id: crypto.randomUUID(),
      kind,
      label,
      state: 'running',
      progress: 0,
      startedAt: Date.now(),
    }
    const abort = new AbortController()
    this.prune()
    this.jobs.set(info.id, { info, abort })
    this.bus.emit('jobs:progress', { ...info })
    const ctx: JobContext = {
      signal: abort.signal,
      report: (progress, message) => {
        if (info.state !== 'running') return
        info.progress = Math.max(0, Math.min(1, progress))
        if (message !== undefined) info.message = message
        this.bus.emit('jobs:progress', { ...info })
      },
    }
    void work(ctx).then(
      (message) => this.finish(info, abort.signal.aborted ? 'cancelled' : 'done', message ?? undefined),
      (err: unknown) =>
        this.finish(
          info,
          abort.signal.aborted ? 'cancelled' : 'failed',
          err instanceof Error ? err.message : String(err),
        ),
    )
    return { ...info }
  }

  private finish(info: JobInfo, state: JobInfo['state'], message?: string): void {
    info.state = state
    if (state === 'done') info.progress = 1
    if (message !== undefined) info.message = message
    const entry = this.jobs.get(info.id)
    if (entry) entry.finishedAt = this.now()
    this.bus.emit('jobs:progress', { ...info })
    this.prune()
  }

  list(): JobInfo[] {
    this.prune()
    return [...this.jobs.values()].map((j) => ({ ...j.info }))
  }

  cancel(id: string): void {
    const job = this.jobs.get(id)
    if (!job) throw new AppError('not-found', `No job with id ${id}.`)
    job.abort.abort(new AppError('cancelled', 'Cancelled by the user.'))
  }

  dispose(): void {
    for (const job of this.jobs.values()) job.abort.abort()
  }
}
