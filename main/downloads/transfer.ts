/**
 * One download attempt: resume the `.partial` file with Range + If-Range, handle 206 / 200 / 416, hash the
 * bytes while they are written (the existing prefix first), and report everything the manager persists.
 * Failures throw DownloadFailure (retryable or not); the manager owns retries, states and verification.
 */
import fs from 'node:fs'
import path from 'node:path'
import { ProxyError, type ProxyResolver } from '../platform/proxy'
import { RemoteError } from '../remote/errors'
import { chooseFileName, nameFromUrl, parseContentDisposition } from './filename'
import type { StreamHasher } from './hasher'
import { downloadHttpError, openStream } from './fetch'
import type { BodySink, HttpResponse } from './http1'
import type { DownloadErrorCode, DownloadJob } from './types'

export class DownloadFailure extends Error {
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message)
    this.name = 'DownloadFailure'
  }

  static from(err: unknown): DownloadFailure {
    if (err instanceof DownloadFailure) return err
    if (err instanceof RemoteError)
      return new DownloadFailure(err.code, err.message, err.retryable, err.retryAfterMs)
    if (err instanceof ProxyError) {
      const code = err.kind === 'auth' ? 'forbidden' : err.kind === 'config' ? 'bad-request' : 'network'
      return new DownloadFailure(code, err.message, err.retryable)
    }
    const code = (err as NodeJS.ErrnoException | null)?.code
    if (code === 'ENOSPC') return new DownloadFailure('disk-full', 'The disk is full.', false)
    if (code && /^(ECONN|EPIPE|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|UND_ERR)/.test(code)) {
      return new DownloadFailure('network', `Network error (${code}).`, true)
    }
    return new DownloadFailure('io', err instanceof Error ? err.message : String(err), false)
  }
}

/** File-system operations the transfer uses; injectable to simulate a full disk. */
export interface DownloadFs {
  /** Open the `.partial` file to append to it ('a') or to write it from zero ('w'). */
  open(file: string, flags: 'a' | 'w'): Promise<DownloadFile>
  statfs(dir: string): Promise<{ bavail: number; bsize: number }>
}

export interface DownloadFile {
  /** Append all of `data` (one call at a time, in order); rejects with the errno error. */
  write(data: Buffer): Promise<void>
  close(): Promise<void>
}

function writeAll(fd: number, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number): void =>
      fs.write(fd, data, off, data.length - off, null, (err, n) => {
        if (err) reject(err)
        else if (off + n >= data.length) resolve()
        else if (n === 0) reject(new Error('the disk accepted no bytes'))
        else step(off + n)
      })
    step(0)
  })
}

export const nodeFs: DownloadFs = {
  open: async (file, flags) => {
    const fd = await new Promise<number>((resolve, reject) =>
      fs.open(file, flags, (err, fd) => (err ? reject(err) : resolve(fd))),
    )
    return {
      write: (data) => writeAll(fd, data),
      close: () =>
        new Promise<void>((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve()))),
    }
  },
  statfs: async (dir) => {
    const s = await fs.promises.statfs(dir)
    return { bavail: Number(s.bavail), bsize: Number(s.bsize) }
  },
}

export interface AttemptContext {
  job: DownloadJob
  signal: AbortSignal
  headers: Record<string, string>
  authorization?: string
  idleTimeoutMs: number
  /** Proxy choice per URL (default: the environment, then the system's). */
  proxy?: ProxyResolver
  /** Extra trusted CA certificate (tests). */
  ca?: string | Buffer
  fs: DownloadFs
  /** A fresh SHA-256 hasher for this attempt (inline or worker, chosen by the manager from the size). */
  createHasher(total: number | null): StreamHasher
  /** Called with the running byte count while data arrives. */
  onBytes(bytes: number): void
  /** Called once the response is accepted (name, total and validators set on the job): persist now. */
  onResponse(): void
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await fs.promises.stat(file)).size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw err
  }
}

async function truncate(file: string): Promise<void> {
  await fs.promises.truncate(file, 0).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err
  })
}

async function ensureSpace(ctx: AttemptContext, needed: number): Promise<void> {
  if (needed <= 0) return
  const dir = path.dirname(ctx.job.partialPath)
  let free: number
  try {
    const s = await ctx.fs.statfs(dir)
    free = s.bavail * s.bsize
  } catch {
    return // statfs unsupported: the ENOSPC handler still catches a full disk
  }
  if (free < needed) {
    throw new DownloadFailure(
      'disk-full',
      `Not enough free space in ${dir}: ${formatBytes(needed)} needed, ${formatBytes(free)} free.`,
      false,
    )
  }
}

/** Content-Range `bytes 100-199/1000` → {start, end, total}; the unsatisfied form (star instead of a range) → {total}. */
export function parseContentRange(
  v: string | undefined,
): { start?: number; end?: number; total: number | null } | null {
  if (!v) return null
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(v.trim())
  if (!m) return null
  return {
    start: m[1] === undefined ? undefined : Number(m[1]),
    end: m[2] === undefined ? undefined : Number(m[2]),
    total: m[3] === '*' || m[3] === undefined ? null : Number(m[3]),
  }
}

/** Run one attempt; resolves with the SHA-256 of the complete `.partial` file. */
export async function runAttempt(ctx: AttemptContext): Promise<{ sha256: string }> {
  const { job } = ctx
  let have = await fileSize(job.partialPath)
  if (job.total !== null && have > job.total) {
    await truncate(job.partialPath)
    have = 0
  }
  job.bytes = have
  await ensureSpace(ctx, (job.total ?? job.request.expectedSize ?? 0) - have)

  const headers: Record<string, string> = { ...ctx.headers, 'accept-encoding': 'identity' }
  if (have > 0) {
    headers.range = `bytes=${have}-`
    const strongEtag = job.etag && !job.etag.startsWith('W/') ? job.etag : null
    const validator = strongEtag ?? job.lastModified
    if (validator) headers['if-range'] = validator
  }
  const { res, url } = await openStream({
    url: job.request.url,
    headers,
    authorization: ctx.authorization,
    signal: ctx.signal,
    idleTimeoutMs: ctx.idleTimeoutMs,
    ...(ctx.proxy ? { proxy: ctx.proxy } : {}),
    ...(ctx.ca === undefined ? {} : { ca: ctx.ca }),
  })
  try {
    return await handleResponse(ctx, res, url, have)
  } finally {
    res.destroy() // a no-op once the body was read to its end
  }
}

async function handleResponse(
  ctx: AttemptContext,
  res: HttpResponse,
  url: string,
  have: number,
): Promise<{ sha256: string }> {
  const { job } = ctx
  const apiOrigin = new URL(job.request.url).origin
  const source = job.request.source ?? 'url'
  const status = res.status
  if (new URL(url).searchParams.get('reason') === 'download-auth') {
    throw new DownloadFailure(
      'unauthorized',
      'Civitai requires you to be logged in to download this model. Add your Civitai API key in Settings.',
      false,
    )
  }
  if (status >= 400 && status !== 416) {
    const body = await res.text()
    throw DownloadFailure.from(
      downloadHttpError(source, apiOrigin, { status, headers: res.headers, body, url }),
    )
  }
  if (status === 416) {
    const total = parseContentRange(res.headers['content-range'])?.total ?? null
    if (total !== null && have === total && have > 0) {
      // Everything is already here (e.g. killed after the last byte): verify what we have.
      job.total = total
      const hasher = ctx.createHasher(total)
      try {
        await hasher.prefix(job.partialPath, have, ctx.signal)
        return { sha256: await hasher.digest() }
      } finally {
        hasher.close()
      }
    }
    await truncate(job.partialPath)
    throw new DownloadFailure(
      'bad-request',
      `The server refused to resume at byte ${have}; restarting.`,
      true,
      0,
    )
  }
  if (status !== 200 && status !== 206) {
    throw new DownloadFailure('bad-response', `Unexpected HTTP ${status} from ${new URL(url).host}.`, true)
  }
  const ctype = String(res.headers['content-type'] ?? '')
  if (/text\/html/i.test(ctype)) {
    throw new DownloadFailure(
      'not-a-model',
      `${new URL(url).host} sent a web page instead of the file (a login or error page?).`,
      false,
    )
  }

  let start = 0
  if (status === 206) {
    const range = parseContentRange(res.headers['content-range'])
    if (!range || range.start !== have) {
      await truncate(job.partialPath)
      throw new DownloadFailure(
        'bad-response',
        `The server resumed at the wrong offset; restarting.`,
        true,
        0,
      )
    }
    start = have
    job.total = range.total ?? job.total
  } else {
    // 200: the server ignored Range or the file changed (If-Range): start over.
    const len = Number(res.headers['content-length'])
    job.total =
      res.headers['content-encoding'] === undefined && Number.isFinite(len) && len >= 0
        ? len
        : (job.request.expectedSize ?? null)
  }
  job.bytes = start
  const etag = res.headers.etag
  job.etag = typeof etag === 'string' ? etag : null
  job.lastModified = res.headers['last-modified'] ?? null
  job.fileName ??= chooseFileName([
    job.request.fileName,
    parseContentDisposition(res.headers['content-disposition']),
    nameFromUrl(url),
    nameFromUrl(job.request.url),
  ])
  ctx.onResponse()
  if (job.total !== null) await ensureSpace(ctx, job.total - start)

  const hasher = ctx.createHasher(job.total)
  try {
    return await receive(ctx, res, hasher, start)
  } finally {
    hasher.close()
  }
}

async function receive(
  ctx: AttemptContext,
  res: HttpResponse,
  hasher: StreamHasher,
  start: number,
): Promise<{ sha256: string }> {
  const { job } = ctx
  if (start > 0) await hasher.prefix(job.partialPath, start, ctx.signal)
  let file: DownloadFile
  try {
    file = await ctx.fs.open(job.partialPath, start > 0 ? 'a' : 'w')
  } catch (err) {
    throw writeFailure(job, err as NodeJS.ErrnoException)
  }
  let bytes = start
  const sink = new FileSink(file, hasher, {
    onBytes: (n) => {
      bytes += n
      ctx.onBytes(bytes)
    },
    wake: () => res.resume(),
    onWriteError: (err) => res.destroy(err),
  })
  let readError: Error | null = null
  try {
    await res.pipe(sink)
  } catch (err) {
    readError = err as Error
  }
  // Whatever happened (drop, abort), what arrived is on disk before going on: the `.partial` file matches
  // what was counted and a later attempt resumes exactly there.
  const writeError = await sink.finish()
  job.bytes = bytes
  if (writeError) throw writeFailure(job, writeError)
  if (readError) {
    if (ctx.signal.aborted) throw readError
    const of = job.total === null ? '' : ` of ${formatBytes(job.total)}`
    throw new DownloadFailure('network', `The connection dropped after ${formatBytes(bytes)}${of}.`, true)
  }
  if (job.total !== null && bytes !== job.total) {
    throw new DownloadFailure(
      'network',
      `The connection closed after ${formatBytes(bytes)} of ${formatBytes(job.total)}.`,
      true,
    )
  }
  return { sha256: await hasher.digest() }
}

function writeFailure(job: DownloadJob, err: NodeJS.ErrnoException): DownloadFailure {
  if (err.code === 'ENOSPC') {
    return new DownloadFailure(
      'disk-full',
      `Disk full while writing ${job.fileName} in ${path.dirname(job.partialPath)}; the partial file was kept: free some space and retry to resume.`,
      false,
    )
  }
  return new DownloadFailure('io', `Could not write ${job.partialPath}: ${err.message}`, false)
}

/** Receive buffers: 1 MiB each (one file write each), 8 of them in flight at most. */
const BUFFER_BYTES = 1 << 20
const POOL_BUFFERS = 8
/** A buffer with less room than this is handed to the writer (socket reads stay large). */
const MIN_ROOM = 16 * 1024
/** A slow download still reaches the disk this often (what a crash can lose). */
const FLUSH_MS = 200

/**
 * The body's way to disk: socket reads land straight in pooled receive buffers (SharedArrayBuffers, so a worker
 * hasher reads them in place); each read is hashed as it lands (inline hasher) and each full buffer is written
 * with one fs.write on the thread pool, in order, while the next one fills. The socket pauses while every
 * buffer is in use (disk or hasher behind) and resumes when one comes back.
 */
class FileSink implements BodySink {
  private readonly free: Buffer[] = []
  private allocated = 0
  private current: Buffer
  private fill = 0
  private paused = false
  private writes: Promise<void> = Promise.resolve()
  private writeError: NodeJS.ErrnoException | null = null
  private lastFlush = Date.now()

  constructor(
    private readonly file: DownloadFile,
    private readonly hasher: StreamHasher,
    private readonly on: {
      onBytes(n: number): void
      /** Room again after commit() returned false. */
      wake(): void
      onWriteError(err: Error): void
    },
  ) {
    this.current = this.allocate()
  }

  private allocate(): Buffer {
    this.allocated++
    return Buffer.from(new SharedArrayBuffer(BUFFER_BYTES))
  }

  space(): Buffer {
    return this.current.subarray(this.fill)
  }

  commit(n: number): boolean {
    this.hasher.chunk(this.current.subarray(this.fill, this.fill + n))
    this.fill += n
    this.on.onBytes(n)
    // Only here may the buffer change: the socket asks space() for its next read right after commit().
    if (this.current.length - this.fill < MIN_ROOM || Date.now() - this.lastFlush >= FLUSH_MS) this.rotate()
    return !this.paused
  }

  /** Hand the current buffer to the writer and go on in a free one. */
  private rotate(): void {
    this.flush()
    // The last free buffer stays as room for bytes that still arrive after asking for a pause (TLS); past
    // that, one more buffer (dropped again on release).
    this.current = this.free.pop() ?? this.allocate()
    if (this.free.length === 0 && this.allocated >= POOL_BUFFERS) this.paused = true
  }

  private release(buf: Buffer): void {
    if (this.allocated > POOL_BUFFERS) {
      this.allocated--
      return
    }
    this.free.push(buf)
    if (this.paused) {
      this.paused = false
      this.on.wake()
    }
  }

  private flush(): void {
    if (this.fill === 0) return
    const buf = this.current
    const view = buf.subarray(0, this.fill)
    this.fill = 0
    this.lastFlush = Date.now()
    let holds = 2
    const done = (): void => {
      if (--holds === 0) this.release(buf)
    }
    this.hasher.batch(view, done)
    this.writes = this.writes
      .then(async () => {
        if (this.writeError) return
        try {
          await this.file.write(view)
        } catch (err) {
          this.writeError = err as NodeJS.ErrnoException
          this.on.onWriteError(this.writeError)
        }
      })
      .finally(done)
  }

  /** Write what is left, wait for every write, close the file; resolves with the first write error. */
  async finish(): Promise<NodeJS.ErrnoException | null> {
    this.flush()
    await this.writes
    try {
      await this.file.close()
    } catch (err) {
      this.writeError ??= err as NodeJS.ErrnoException
    }
    return this.writeError
  }
}
