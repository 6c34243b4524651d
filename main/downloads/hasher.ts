/**
 * Incremental SHA-256 for downloads, inline or on a worker thread. On a fast link, hashing on the main thread
 * competes with receiving and writing (SHA-256 runs at roughly 1 GB/s per core); the worker variant batches
 * chunks into 4 MiB buffers, transfers them without copying, and asks the caller to pause the socket when it
 * falls behind (update() returns false, then `onDrain` fires).
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import { Worker } from 'node:worker_threads'

export interface StreamHasher {
  /** Hash the first `length` bytes of `file` (the resumed prefix) before any update(). */
  prefix(file: string, length: number, signal?: AbortSignal): Promise<void>
  /** Feed a chunk; false means "pause the source until onDrain". */
  update(chunk: Buffer): boolean
  onDrain(fn: () => void): void
  digest(): Promise<string>
  close(): void
}

/** Feed the first `length` bytes of `file` into `hash`. */
export async function hashPrefix(
  file: string,
  length: number,
  hash: crypto.Hash,
  signal?: AbortSignal,
): Promise<void> {
  if (length <= 0) return
  const stream = fs.createReadStream(file, { start: 0, end: length - 1, highWaterMark: 1 << 20, signal })
  for await (const chunk of stream) hash.update(chunk as Buffer)
}

export class InlineHasher implements StreamHasher {
  private readonly hash = crypto.createHash('sha256')

  prefix(file: string, length: number, signal?: AbortSignal): Promise<void> {
    return hashPrefix(file, length, this.hash, signal)
  }

  update(chunk: Buffer): boolean {
    this.hash.update(chunk)
    return true
  }

  onDrain(): void {}

  digest(): Promise<string> {
    return Promise.resolve(this.hash.digest('hex'))
  }

  close(): void {}
}

// CommonJS so it runs with `eval: true` anywhere (tsx, the esbuild CLI bundle, Electron main) without a file.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const crypto = require('node:crypto')
const fs = require('node:fs')
const hash = crypto.createHash('sha256')
parentPort.on('message', (m) => {
  try {
    if (m.type === 'data') {
      hash.update(new Uint8Array(m.buffer, 0, m.length))
      parentPort.postMessage({ type: 'ack' })
    } else if (m.type === 'prefix') {
      const fd = fs.openSync(m.file, 'r')
      try {
        const buf = Buffer.allocUnsafe(1 << 22)
        let pos = 0
        while (pos < m.length) {
          const n = fs.readSync(fd, buf, 0, Math.min(buf.length, m.length - pos), pos)
          if (n === 0) throw new Error('file shorter than expected: ' + m.file)
          hash.update(buf.subarray(0, n))
          pos += n
        }
      } finally {
        fs.closeSync(fd)
      }
      parentPort.postMessage({ type: 'prefixed' })
    } else if (m.type === 'digest') {
      parentPort.postMessage({ type: 'digest', hex: hash.digest('hex') })
    }
  } catch (err) {
    parentPort.postMessage({ type: 'error', message: String(err && err.message || err) })
  }
})
`

const BATCH = 4 << 20
const HIGH_WATER = 4 // batches in flight before asking for a pause
const LOW_WATER = 1

export class WorkerHasher implements StreamHasher {
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true })
  private batch = Buffer.allocUnsafeSlow(BATCH)
  private fill = 0
  private inFlight = 0
  private blocked = false
  private drainFn: (() => void) | null = null
  private pending: { resolve: (v: string) => void; reject: (e: Error) => void; type: string } | null = null
  private failure: Error | null = null

  constructor() {
    this.worker.unref()
    this.worker.on('message', (m: { type: string; hex?: string; message?: string }) => {
      if (m.type === 'ack') {
        this.inFlight--
        if (this.blocked && this.inFlight <= LOW_WATER) {
          this.blocked = false
          this.drainFn?.()
        }
      } else if (m.type === 'error') {
        this.fail(new Error(m.message ?? 'hash worker failed'))
      } else if (this.pending && this.pending.type === m.type) {
        const p = this.pending
        this.pending = null
        p.resolve(m.hex ?? '')
      }
    })
    this.worker.on('error', (e) => this.fail(e))
  }

  private fail(e: Error): void {
    this.failure ??= e
    const p = this.pending
    this.pending = null
    p?.reject(e)
  }

  private request(type: 'prefixed' | 'digest', message: object): Promise<string> {
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject, type }
      this.worker.postMessage(message)
    })
  }

  async prefix(file: string, length: number): Promise<void> {
    if (length > 0) await this.request('prefixed', { type: 'prefix', file, length })
  }

  private flush(): void {
    if (this.fill === 0) return
    const buffer = this.batch.buffer
    this.worker.postMessage({ type: 'data', buffer, length: this.fill }, [buffer])
    this.inFlight++
    this.batch = Buffer.allocUnsafeSlow(BATCH)
    this.fill = 0
  }

  update(chunk: Buffer): boolean {
    let off = 0
    while (off < chunk.length) {
      const n = Math.min(BATCH - this.fill, chunk.length - off)
      chunk.copy(this.batch, this.fill, off, off + n)
      this.fill += n
      off += n
      if (this.fill === BATCH) this.flush()
    }
    if (this.inFlight >= HIGH_WATER) this.blocked = true
    return !this.blocked
  }

  onDrain(fn: () => void): void {
    this.drainFn = fn
  }

  async digest(): Promise<string> {
    if (this.failure) throw this.failure
    this.flush()
    return this.request('digest', { type: 'digest' })
  }

  close(): void {
    void this.worker.terminate()
  }
}
