/**
 * SHA-256 throughput of the download hasher alone (node:crypto / OpenSSL, as used while downloading): in
 * memory with the chunk sizes a socket read delivers, through the worker hasher (1 MiB SharedArrayBuffer
 * batches, 8 in flight, as the receive pool feeds it), and over a page-cached file with the resume prefix
 * hasher. Prints JSON with MiB/s and CPU-s/GiB (medians), and whether the CPU has the SHA extensions.
 *
 *   npx tsx bench/hash.ts
 *   ATELIER_BENCH_HASH_BYTES=1073741824 npx tsx bench/hash.ts
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { hashPrefix, WorkerHasher } from '../main/downloads/hasher'

const SIZE = Number(process.env.ATELIER_BENCH_HASH_BYTES ?? 512 * 1024 * 1024)
const RUNS = Math.max(1, Number(process.env.ATELIER_BENCH_RUNS ?? 5))
const MiB = 1024 * 1024
const GiB = 1024 ** 3

interface Sample {
  rate: number
  cpu: number
}

const cpuNow = (): number => {
  const u = process.cpuUsage() // worker threads included
  return (u.user + u.system) / 1e6
}

async function measure(fn: () => Promise<void> | void): Promise<Sample> {
  const t0 = performance.now()
  const c0 = cpuNow()
  await fn()
  return { rate: SIZE / ((performance.now() - t0) / 1000), cpu: cpuNow() - c0 }
}

function inMemory(chunk: number, buf: Buffer): void {
  const h = crypto.createHash('sha256')
  for (let done = 0; done < SIZE; done += chunk) {
    const n = Math.min(chunk, SIZE - done)
    const off = done % (buf.length - chunk + 1)
    h.update(buf.subarray(off, off + n))
  }
  h.digest()
}

/** The worker hasher fed like the receive pool does: 1 MiB shared buffers, at most 8 in flight. */
async function viaWorker(src: Buffer): Promise<void> {
  const hasher = new WorkerHasher()
  const pool: Buffer[] = Array.from({ length: 8 }, () => Buffer.from(new SharedArrayBuffer(MiB)))
  for (const b of pool) src.copy(b, 0, 0, MiB)
  try {
    let sent = 0
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (pool.length > 0 && sent < SIZE) {
          const buf = pool.pop() as Buffer
          const n = Math.min(MiB, SIZE - sent)
          sent += n
          hasher.batch(buf.subarray(0, n), () => {
            pool.push(buf)
            pump()
          })
        }
        if (sent >= SIZE && pool.length === 8) resolve()
      }
      pump()
    })
    await hasher.digest()
  } finally {
    hasher.close()
  }
}

async function fromFile(file: string): Promise<void> {
  const h = crypto.createHash('sha256')
  await hashPrefix(file, SIZE, h)
  h.digest()
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? 0
}
const summary = (xs: Sample[]) => ({
  medianMiBps: Math.round((median(xs.map((x) => x.rate)) / MiB) * 10) / 10,
  bestMiBps: Math.round((Math.max(...xs.map((x) => x.rate)) / MiB) * 10) / 10,
  cpuSecondsPerGiB: Math.round((median(xs.map((x) => x.cpu)) / (SIZE / GiB)) * 100) / 100,
})

function shaExtensions(): boolean | null {
  try {
    return /\bsha_ni\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'))
  } catch {
    return null // not Linux
  }
}

async function main(): Promise<void> {
  const loadStart = os.loadavg()
  const buf = crypto.randomBytes(64 * MiB)
  const results: Record<string, ReturnType<typeof summary>> = {}
  for (const chunk of [16 * 1024, 64 * 1024, 1024 * 1024]) {
    const xs: Sample[] = []
    for (let i = 0; i < RUNS; i++) xs.push(await measure(() => inMemory(chunk, buf)))
    results[`memory-${chunk / 1024}KiB-chunks`] = summary(xs)
  }
  const xs: Sample[] = []
  for (let i = 0; i < RUNS; i++) xs.push(await measure(() => viaWorker(buf)))
  results['worker-1MiB-shared-batches'] = summary(xs)
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'atelier-bench-hash-'))
  const file = path.join(dir, 'data.bin')
  try {
    const fh = await fs.promises.open(file, 'w')
    for (let pos = 0; pos < SIZE; pos += buf.length)
      await fh.write(buf, 0, Math.min(buf.length, SIZE - pos), pos)
    await fh.close()
    await fromFile(file) // warm the page cache
    const fs_: Sample[] = []
    for (let i = 0; i < RUNS; i++) fs_.push(await measure(() => fromFile(file)))
    results['file-prefix-hasher'] = summary(fs_)
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true })
  }
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'hash',
        algorithm: 'sha256 (node:crypto / OpenSSL)',
        bytes: SIZE,
        runs: RUNS,
        results,
        cpu: os.cpus()[0]?.model ?? 'unknown',
        shaExtensions: shaExtensions(),
        loadavgStart: loadStart.map((x) => Math.round(x * 100) / 100),
        loadavgEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
      },
      null,
      2,
    )}\n`,
  )
}

await main()
