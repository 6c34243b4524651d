/**
 * DownloadManager: a persistent, resumable, verifying download queue.
 *
 *   const downloads = await DownloadManager.open({ stateDir, credentials: (source) => keys[source] })
 *   const job = await downloads.enqueue({
 *     url: file.downloadUrl, destDir: libraryDir, fileName: file.name,
 *     expectedSha256: file.sha256 ?? undefined, expectedSize: file.sizeBytes ?? undefined,
 *     source: 'civitai', meta: { modelId, versionId },
 *   })
 *   const off = downloads.on('progress', (p) => ...)   // {id, bytes, total, speedBps, etaMs}
 *   downloads.on('state', (job) => ...)                 // a snapshot after every state change
 *   const done = await downloads.whenSettled(job.id)    // state 'done' | 'failed' | 'cancelled'
 *   downloads.pause(id); downloads.resume(id); downloads.cancel(id); downloads.retry(id)
 *   await downloads.dispose()                           // stops transfers; they resume on the next open()
 *
 * States: queued → downloading → verifying → done, or failed / paused / cancelled. The queue lives in
 * `<stateDir>/downloads.json` (atomic writes); after a crash or kill, jobs that were downloading are
 * queued again and resume from their `.partial` file with Range + If-Range. Bytes are hashed while they are
 * written; a SHA-256 or size mismatch never reaches the destination: the file goes to
 * `<quarantineDir>/<name>.corrupt` and the job fails. Credentials come from `credentials(source)` at request
 * time (never persisted) and are sent to the request URL's origin only, never to a redirect target elsewhere.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { ProxyResolver } from '../platform/proxy'
import { USER_AGENT } from '../remote/http'
import { backoffDelay, retryPolicy, type RetryPolicy } from '../remote/retry'
import { verifyAndInstall } from './install'
import { InlineHasher, WorkerHasher, type StreamHasher } from './hasher'
import { JobStore } from './store'
import { DownloadFailure, nodeFs, runAttempt, type DownloadFs } from './transfer'
import {
  FINAL_STATES,
  type DownloadEvents,
  type DownloadJob,
  type DownloadProgress,
  type DownloadRequest,
  type DownloadSource,
  type DownloadState,
} from './types'

export interface DownloadManagerOptions {
  /** Folder of the state file (downloads.json). */
  stateDir: string
  /** Where corrupt files go; default `<stateDir>/quarantine`. */
  quarantineDir?: string
  /** Simultaneous transfers; default 2. */
  concurrency?: number
  /** API key / token for a source, read at request time; sent as `Authorization: Bearer`. */
  credentials?: (source: DownloadSource) => string | undefined | Promise<string | undefined>
  /**
   * Origins a source's credential may be sent to (the configured API origin and the download hosts its API
   * documents). A job whose URL is on any other origin (a Civitai answer's `downloadUrl` pointing elsewhere)
   * gets no credential; redirects drop it as soon as they leave the first origin (fetch.ts).
   */
  credentialOrigins?: (source: DownloadSource) => readonly string[]
  userAgent?: string
  /** Retries after transient failures (network, 429, 5xx); `sleep` is injectable for tests. */
  retry?: Partial<RetryPolicy>
  /** Socket inactivity limit; default 60 s. */
  idleTimeoutMs?: number
  /** Proxy choice per URL; default: HTTPS_PROXY / HTTP_PROXY / NO_PROXY, then the system's (platform/proxy.ts). */
  proxy?: ProxyResolver
  /** Extra trusted CA certificate for https downloads and https:// proxies (tests). */
  ca?: string | Buffer
  /** Minimum interval between progress events per job; default 250 ms. */
  progressIntervalMs?: number
  /** Re-queue jobs interrupted by a crash (default true; false leaves them paused). */
  resumeInterrupted?: boolean
  fs?: Partial<DownloadFs>
  /**
   * Hash on a worker thread: 'auto' (default) for files of 64 MiB or more (or of unknown size) on machines with
   * 2 cores or more. The worker reads the receive buffers in place (SharedArrayBuffers, no copy), so it costs
   * about the CPU of inline hashing and takes SHA-256 off the main thread: ~30 % more throughput on a loaded
   * 2-core machine (bench/download.ts). 'always' / 'never' force it.
   */
  hashInWorker?: 'auto' | 'always' | 'never'
}

const WORKER_HASH_MIN_BYTES = 64 * 1024 * 1024

type Listener<K extends keyof DownloadEvents> = (payload: DownloadEvents[K]) => void
type StopReason = 'pause' | 'cancel' | 'dispose'

interface Active {
  controller: AbortController
  reason: StopReason | null
  done: Promise<void>
}

const PERSIST_PROGRESS_MS = 2000

export class DownloadManager {
  private readonly jobs = new Map<string, DownloadJob>()
  private readonly active = new Map<string, Active>()
  private readonly listeners: { [K in keyof DownloadEvents]: Set<Listener<K>> } = {
    progress: new Set(),
    state: new Set(),
  }
  private readonly waiters = new Map<string, ((job: DownloadJob) => void)[]>()
  private readonly store: JobStore
  private readonly policy: RetryPolicy
  private readonly fs: DownloadFs
  private readonly concurrency: number
  private readonly quarantineDir: string
  private disposed = false

  private constructor(private readonly options: DownloadManagerOptions) {
    this.store = new JobStore(options.stateDir)
    this.policy = retryPolicy(options.retry)
    this.fs = { ...nodeFs, ...options.fs }
    this.concurrency = Math.max(1, options.concurrency ?? 2)
    this.quarantineDir = options.quarantineDir ?? path.join(options.stateDir, 'quarantine')
  }

  /** Load the queue from `stateDir` and start whatever is queued (including interrupted jobs). */
  static async open(options: DownloadManagerOptions): Promise<DownloadManager> {
    const m = new DownloadManager(options)
    for (const job of await m.store.load()) {
      if (job.state === 'downloading' || job.state === 'verifying') {
        job.state = options.resumeInterrupted === false ? 'paused' : 'queued'
        job.updatedAt = new Date().toISOString()
      }
      m.jobs.set(job.id, job)
    }
    await m.persist()
    m.pump()
    return m
  }

  on<K extends keyof DownloadEvents>(event: K, fn: Listener<K>): () => void {
    const set = this.listeners[event] as Set<Listener<K>>
    set.add(fn)
    return () => void set.delete(fn)
  }

  list(): DownloadJob[] {
    return [...this.jobs.values()].map((j) => structuredClone(j))
  }

  get(id: string): DownloadJob | undefined {
    const j = this.jobs.get(id)
    return j && structuredClone(j)
  }

  async enqueue(request: DownloadRequest): Promise<DownloadJob> {
    if (this.disposed) throw new Error('DownloadManager is disposed')
    const url = new URL(request.url)
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`Cannot download ${request.url}: not an http(s) URL.`)
    if (request.expectedSha256 !== undefined && !/^[0-9a-f]{64}$/i.test(request.expectedSha256)) {
      throw new Error(`expectedSha256 must be 64 hex digits, got "${request.expectedSha256}".`)
    }
    const destDir = path.resolve(request.destDir)
    await fs.promises.mkdir(destDir, { recursive: true })
    const id = crypto.randomUUID()
    const now = new Date().toISOString()
    const job: DownloadJob = {
      id,
      state: 'queued',
      request: { ...request, destDir, expectedSha256: request.expectedSha256?.toLowerCase() },
      fileName: null,
      destPath: null,
      partialPath: path.join(destDir, `.${id}.partial`),
      bytes: 0,
      total: request.expectedSize ?? null,
      etag: null,
      lastModified: null,
      sha256: null,
      verified: false,
      error: null,
      attempts: 0,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
    }
    this.jobs.set(id, job)
    await this.changed(job)
    this.pump()
    return structuredClone(job)
  }

  pause(id: string): DownloadJob {
    const job = this.require(id)
    const a = this.active.get(id)
    if (a) this.stop(a, 'pause')
    else if (job.state === 'queued') this.setState(job, 'paused')
    return structuredClone(job)
  }

  resume(id: string): DownloadJob {
    const job = this.require(id)
    if (job.state === 'paused') {
      this.setState(job, 'queued')
      this.pump()
    }
    return structuredClone(job)
  }

  cancel(id: string): DownloadJob {
    const job = this.require(id)
    const a = this.active.get(id)
    if (a) this.stop(a, 'cancel')
    else if (job.state === 'queued' || job.state === 'paused' || job.state === 'failed') {
      void this.discardPartial(job)
      job.finishedAt = new Date().toISOString()
      this.setState(job, 'cancelled')
    }
    return structuredClone(job)
  }

  /** Start a failed or cancelled job again (a failed one resumes from its partial file when it still exists). */
  retry(id: string): DownloadJob {
    const job = this.require(id)
    if (job.state === 'failed' || job.state === 'cancelled') {
      job.error = null
      job.attempts = 0
      job.finishedAt = null
      this.setState(job, 'queued')
      this.pump()
    }
    return structuredClone(job)
  }

  /** Forget a finished job (the downloaded file stays). */
  remove(id: string): boolean {
    const job = this.jobs.get(id)
    if (!job || !FINAL_STATES.includes(job.state)) return false
    this.jobs.delete(id)
    void this.persist()
    return true
  }

  /** Resolves when the job reaches done, failed or cancelled. */
  whenSettled(id: string): Promise<DownloadJob> {
    const job = this.require(id)
    if (FINAL_STATES.includes(job.state)) return Promise.resolve(structuredClone(job))
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? []
      list.push(resolve)
      this.waiters.set(id, list)
    })
  }

  /** Stop all transfers (they are saved as queued and resume on the next open) and flush the state file. */
  async dispose(): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    const running = [...this.active.values()]
    for (const a of running) this.stop(a, 'dispose')
    await Promise.all(running.map((a) => a.done))
    await this.persist()
    this.listeners.progress.clear()
    this.listeners.state.clear()
  }

  // -------------------------------------------------------------------------------------------------------

  private require(id: string): DownloadJob {
    const job = this.jobs.get(id)
    if (!job) throw new Error(`No download with id ${id}.`)
    return job
  }

  private emit<K extends keyof DownloadEvents>(event: K, payload: DownloadEvents[K]): void {
    for (const fn of this.listeners[event] as Set<Listener<K>>) {
      try {
        fn(payload)
      } catch {
        // a broken listener must not break the queue
      }
    }
  }

  private persist(): Promise<void> {
    return this.store.save([...this.jobs.values()]).catch(() => undefined)
  }

  private async changed(job: DownloadJob): Promise<void> {
    job.updatedAt = new Date().toISOString()
    const snapshot = structuredClone(job)
    this.emit('state', snapshot)
    await this.persist()
    // Waiters see the settled job only once it is on disk.
    if (FINAL_STATES.includes(snapshot.state) && job.state === snapshot.state) {
      const waiters = this.waiters.get(job.id) ?? []
      this.waiters.delete(job.id)
      for (const w of waiters) w(structuredClone(job))
    }
  }

  private setState(job: DownloadJob, state: DownloadState): void {
    job.state = state
    void this.changed(job)
  }

  private stop(a: Active, reason: StopReason): void {
    a.reason ??= reason
    a.controller.abort(new Error(`download ${reason}`))
  }

  private pump(): void {
    if (this.disposed) return
    for (const job of this.jobs.values()) {
      if (this.active.size >= this.concurrency) break
      if (job.state !== 'queued' || this.active.has(job.id)) continue
      const a: Active = { controller: new AbortController(), reason: null, done: Promise.resolve() }
      this.active.set(job.id, a)
      a.done = this.run(job, a).finally(() => {
        this.active.delete(job.id)
        this.pump()
      })
    }
  }

  private async authorization(job: DownloadJob): Promise<string | undefined> {
    const source = job.request.source ?? 'url'
    if (source === 'url' || job.request.useCredentials === false || !this.options.credentials)
      return undefined
    if (this.options.credentialOrigins) {
      let origin: string
      try {
        origin = new URL(job.request.url).origin
      } catch {
        return undefined
      }
      if (!this.options.credentialOrigins(source).includes(origin)) return undefined
    }
    const token = await this.options.credentials(source)
    return token ? `Bearer ${token}` : undefined
  }

  private createHasher(total: number | null): StreamHasher {
    const mode = this.options.hashInWorker ?? 'auto'
    const big = total === null || total >= WORKER_HASH_MIN_BYTES
    const useWorker = mode === 'always' || (mode === 'auto' && big && os.availableParallelism() >= 2)
    return useWorker ? new WorkerHasher() : new InlineHasher()
  }

  private async run(job: DownloadJob, a: Active): Promise<void> {
    job.error = null
    this.setState(job, 'downloading')
    const progress = this.progressTracker(job)
    for (;;) {
      const before = job.bytes
      try {
        const { sha256 } = await runAttempt({
          job,
          signal: a.controller.signal,
          headers: { 'user-agent': this.options.userAgent ?? USER_AGENT, ...job.request.headers },
          authorization: await this.authorization(job),
          idleTimeoutMs: this.options.idleTimeoutMs ?? 60_000,
          ...(this.options.proxy ? { proxy: this.options.proxy } : {}),
          ...(this.options.ca === undefined ? {} : { ca: this.options.ca }),
          fs: this.fs,
          createHasher: (total) => this.createHasher(total),
          onBytes: progress,
          onResponse: () => void this.persist(),
        })
        progress(job.bytes, true)
        await this.finish(job, sha256)
        return
      } catch (err) {
        if (a.reason) return this.stopped(job, a.reason)
        const failure = DownloadFailure.from(err)
        if (job.bytes > before) job.attempts = 0
        job.attempts++
        const tooLong =
          failure.retryAfterMs !== undefined && failure.retryAfterMs > this.policy.maxRetryAfterMs
        if (!failure.retryable || job.attempts > this.policy.retries || tooLong) {
          job.error = { code: failure.code, message: failure.message }
          job.finishedAt = new Date().toISOString()
          this.setState(job, 'failed')
          return
        }
        void this.persist()
        try {
          const delay =
            failure.retryAfterMs === 0 ? 0 : backoffDelay(job.attempts, this.policy, failure.retryAfterMs)
          await this.policy.sleep(delay, a.controller.signal)
        } catch {
          return this.stopped(job, a.reason ?? 'pause')
        }
      }
    }
  }

  private async stopped(job: DownloadJob, reason: StopReason): Promise<void> {
    if (reason === 'cancel') {
      await this.discardPartial(job)
      job.finishedAt = new Date().toISOString()
      this.setState(job, 'cancelled')
    } else {
      // Paused, or shutting down: the partial file stays; 'dispose' jobs resume on the next open().
      job.state = reason === 'pause' ? 'paused' : 'queued'
      await this.changed(job)
    }
  }

  private progressTracker(job: DownloadJob): (bytes: number, force?: boolean) => void {
    const interval = this.options.progressIntervalMs ?? 250
    let lastAt = Date.now()
    let lastBytes = job.bytes
    let lastPersist = Date.now()
    let speed = 0
    return (bytes, force = false) => {
      job.bytes = bytes
      const now = Date.now()
      const dt = now - lastAt
      if (!force && dt < interval) return
      if (dt > 0) {
        const inst = ((bytes - lastBytes) * 1000) / dt
        speed = speed === 0 ? inst : 0.7 * speed + 0.3 * inst
      }
      lastAt = now
      lastBytes = bytes
      const p: DownloadProgress = {
        id: job.id,
        bytes,
        total: job.total,
        speedBps: Math.max(0, Math.round(speed)),
        etaMs: job.total !== null && speed > 0 ? Math.round(((job.total - bytes) / speed) * 1000) : null,
      }
      this.emit('progress', p)
      if (now - lastPersist >= PERSIST_PROGRESS_MS) {
        lastPersist = now
        void this.persist()
      }
    }
  }

  /** Verify the finished `.partial` and move it into place, or quarantine it. */
  private async finish(job: DownloadJob, sha256: string): Promise<void> {
    this.setState(job, 'verifying')
    const verdict = await verifyAndInstall(job, sha256, this.quarantineDir)
    job.sha256 = sha256
    job.finishedAt = new Date().toISOString()
    if (!verdict.ok) {
      job.error = verdict.error
      if (verdict.error.code !== 'io') job.bytes = 0 // the partial file went to quarantine
      this.setState(job, 'failed')
      return
    }
    job.destPath = verdict.destPath
    job.fileName = path.basename(verdict.destPath)
    job.verified = Boolean(job.request.expectedSha256)
    this.setState(job, 'done')
  }

  private async discardPartial(job: DownloadJob): Promise<void> {
    job.bytes = 0
    await fs.promises.rm(job.partialPath, { force: true })
  }
}
