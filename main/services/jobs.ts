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
export class JobManager {
  private readonly jobs = new Map<string, { info: JobInfo; abort: AbortController }>()

  constructor(private readonly bus: EventBus) {}

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
    this.bus.emit('jobs:progress', { ...info })
  }

  list(): JobInfo[] {
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
