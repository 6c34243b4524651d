/**
 * Incremental SHA-256 for downloads, inline or on a worker thread. SHA-256 costs ~0.6 CPU-s/GiB with SHA-NI
 * (bench/hash.ts). The inline hasher hashes every socket read as it lands (the bytes are still in the CPU cache);
 * the worker variant hashes whole receive buffers on another core: they are SharedArrayBuffers, so nothing is
 * copied or transferred, and a buffer goes back to the receive pool once both the hash and the file write are
 * done with it (that pool is the back-pressure: the socket pauses while it is empty).
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import { Worker } from 'node:worker_threads'

export interface StreamHasher {
  /** Hash the first `length` bytes of `file` (the resumed prefix) before anything else. */
  prefix(file: string, length: number, signal?: AbortSignal): Promise<void>
  /** Bytes just received, in order. The inline hasher hashes them now; the worker hasher waits for batch(). */
  chunk(view: Buffer): void
  /**
   * A receive buffer whose bytes all went through chunk() before, about to be written. The worker hasher
   * hashes it now; `release` runs once the hasher no longer needs the bytes (at once for the inline one).
   */
  batch(view: Buffer, release: () => void): void
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

  chunk(view: Buffer): void {
    this.hash.update(view)
  }

  batch(_view: Buffer, release: () => void): void {
    release()
  }

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
const shared = new Map()
parentPort.on('message', (m) => {
  try {
    if (m.type === 'shared') {
      shared.set(m.id, new Uint8Array(m.buffer))
    } else if (m.type === 'data') {
      const bytes = m.id === undefined ? new Uint8Array(m.buffer) : shared.get(m.id)
      hash.update(bytes.subarray(m.offset, m.offset + m.length))
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

export class WorkerHasher implements StreamHasher {
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true })
  private readonly shared = new Map<SharedArrayBuffer, number>()
  /** release callbacks of the batches in flight, in order (the worker answers in order). */
  private readonly releases: (() => void)[] = []
  private pending: { resolve: (v: string) => void; reject: (e: Error) => void; type: string } | null = null
  private failure: Error | null = null

  constructor() {
    this.worker.unref()
    this.worker.on('message', (m: { type: string; hex?: string; message?: string }) => {
      if (m.type === 'ack') this.releases.shift()?.()
      else if (m.type === 'error') this.fail(new Error(m.message ?? 'hash worker failed'))
      else if (this.pending && this.pending.type === m.type) {
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
    // Let the receive pipeline go on (the digest reports the failure).
    for (const release of this.releases.splice(0)) release()
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

  chunk(): void {}

  batch(view: Buffer, release: () => void): void {
    if (this.failure) return release()
    const sab = view.buffer
    if (sab instanceof SharedArrayBuffer) {
      let id = this.shared.get(sab)
      if (id === undefined) {
        id = this.shared.size
        this.shared.set(sab, id)
        this.worker.postMessage({ type: 'shared', id, buffer: sab })
      }
      this.releases.push(release)
      this.worker.postMessage({ type: 'data', id, offset: view.byteOffset, length: view.length })
    } else {
      // Not shared: hand over a copy, keep the caller's buffer.
      const copy = new Uint8Array(view).buffer
      this.releases.push(() => undefined)
      this.worker.postMessage({ type: 'data', buffer: copy, offset: 0, length: view.length }, [copy])
      release()
    }
  }

  async digest(): Promise<string> {
    if (this.failure) throw this.failure
    return this.request('digest', { type: 'digest' })
  }

  close(): void {
    void this.worker.terminate()
  }
}
