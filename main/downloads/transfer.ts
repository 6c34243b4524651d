/**
 * One download attempt: resume the `.partial` file with Range + If-Range, handle 206 / 200 / 416, hash the
 * bytes while they are written (the existing prefix first), and report everything the manager persists.
 * Failures throw DownloadFailure (retryable or not); the manager owns retries, states and verification.
 */
import fs from 'node:fs'
import path from 'node:path'
import type http from 'node:http'
import type { Writable } from 'node:stream'
import { RemoteError } from '../remote/errors'
import { chooseFileName, nameFromUrl, parseContentDisposition } from './filename'
import type { StreamHasher } from './hasher'
import { downloadHttpError, openStream, readSmallBody } from './fetch'
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
  createWriteStream(file: string, flags: 'a' | 'w'): Writable
  statfs(dir: string): Promise<{ bavail: number; bsize: number }>
}

export const nodeFs: DownloadFs = {
  createWriteStream: (file, flags) => fs.createWriteStream(file, { flags, highWaterMark: 1 << 20 }),
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
  const apiOrigin = new URL(job.request.url).origin
  const source = job.request.source ?? 'url'
  const { res, url } = await openStream({
    url: job.request.url,
    headers,
    authorization: ctx.authorization,
    signal: ctx.signal,
    idleTimeoutMs: ctx.idleTimeoutMs,
  })
  const status = res.statusCode ?? 0
  if (new URL(url).searchParams.get('reason') === 'download-auth') {
    res.resume()
    throw new DownloadFailure(
      'unauthorized',
      'Civitai requires you to be logged in to download this model. Add your Civitai API key in Settings.',
      false,
    )
  }
  if (status >= 400 && status !== 416) {
    const body = await readSmallBody(res)
    throw DownloadFailure.from(
      downloadHttpError(source, apiOrigin, { status, headers: res.headers, body, url }),
    )
  }
  if (status === 416) {
    res.resume()
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
    res.resume()
    throw new DownloadFailure('bad-response', `Unexpected HTTP ${status} from ${new URL(url).host}.`, true)
  }
  const ctype = String(res.headers['content-type'] ?? '')
  if (/text\/html/i.test(ctype)) {
    res.resume()
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
      res.resume()
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
  res: http.IncomingMessage,
  hasher: StreamHasher,
  start: number,
): Promise<{ sha256: string }> {
  const { job } = ctx
  if (start > 0) await hasher.prefix(job.partialPath, start, ctx.signal)
  const out = ctx.fs.createWriteStream(job.partialPath, start > 0 ? 'a' : 'w')
  let bytes = start
  try {
    await copyToFile(res, out, hasher, ctx.signal, (n) => {
      bytes += n
      ctx.onBytes(bytes)
    })
  } catch (err) {
    job.bytes = bytes
    if (ctx.signal.aborted) throw err
    if (err instanceof WriteError) {
      if (err.cause.code === 'ENOSPC') {
        throw new DownloadFailure(
          'disk-full',
          `Disk full while writing ${job.fileName} in ${path.dirname(job.partialPath)}; the partial file was kept: free some space and retry to resume.`,
          false,
        )
      }
      throw new DownloadFailure('io', `Could not write ${job.partialPath}: ${err.cause.message}`, false)
    }
    const of = job.total === null ? '' : ` of ${formatBytes(job.total)}`
    throw new DownloadFailure('network', `The connection dropped after ${formatBytes(bytes)}${of}.`, true)
  }
  job.bytes = bytes
  if (job.total !== null && bytes !== job.total) {
    throw new DownloadFailure(
      'network',
      `The connection closed after ${formatBytes(bytes)} of ${formatBytes(job.total)}.`,
      true,
    )
  }
  return { sha256: await hasher.digest() }
}

class WriteError extends Error {
  constructor(override readonly cause: NodeJS.ErrnoException) {
    super(cause.message)
  }
}

/**
 * Copy the response body into `out`, calling `onChunk` for every chunk. Whatever happens (drop, abort), the
 * bytes already received are flushed to the file before the promise settles, so the `.partial` file always
 * matches what was counted and a later attempt resumes exactly there. Rejects with WriteError for disk errors.
 */
function copyToFile(
  res: http.IncomingMessage,
  out: Writable,
  hasher: StreamHasher,
  signal: AbortSignal,
  onBytes: (n: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    // The socket is paused while either the file or the hasher is behind.
    let outBlocked = false
    let hashBlocked = false
    const maybeResume = (): void => {
      if (!outBlocked && !hashBlocked && !ending) res.resume()
    }
    let readError: Error | null = null
    let writeError: NodeJS.ErrnoException | null = null
    let ending = false
    let settled = false
    const endOut = (): void => {
      if (ending) return
      ending = true
      out.end()
    }
    const settle = (): void => {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', onAbort)
      if (writeError) reject(new WriteError(writeError))
      else if (readError) reject(readError)
      else resolve()
    }
    const onAbort = (): void => {
      readError ??= signal.reason instanceof Error ? signal.reason : new Error('aborted')
      res.destroy()
      endOut()
    }
    res.on('data', (chunk: Buffer) => {
      if (ending) return
      if (!hasher.update(chunk)) hashBlocked = true
      onBytes(chunk.length)
      if (!out.write(chunk)) outBlocked = true
      if (outBlocked || hashBlocked) res.pause()
    })
    out.on('drain', () => {
      outBlocked = false
      maybeResume()
    })
    hasher.onDrain(() => {
      hashBlocked = false
      maybeResume()
    })
    res.on('end', endOut)
    res.on('error', (e) => {
      readError ??= e
      endOut()
    })
    res.on('close', () => {
      if (!res.complete) readError ??= new Error('the connection closed early')
      endOut()
    })
    out.on('error', (e: NodeJS.ErrnoException) => {
      writeError ??= e
      res.destroy()
      settle()
    })
    out.on('finish', settle)
    out.on('close', settle)
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
}
