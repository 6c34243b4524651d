/**
 * SHA-256 throughput of the download hasher alone (node:crypto, as used while downloading), in memory with
 * the chunk sizes a socket delivers, and over a page-cached file with the resume prefix hasher. Prints JSON.
 *
 *   npx tsx bench/hash.ts
 *   ATELIER_BENCH_HASH_BYTES=1073741824 npx tsx bench/hash.ts
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { hashPrefix } from '../main/downloads/hasher'

const SIZE = Number(process.env.ATELIER_BENCH_HASH_BYTES ?? 512 * 1024 * 1024)
const RUNS = Math.max(1, Number(process.env.ATELIER_BENCH_RUNS ?? 3))
const MiB = 1024 * 1024

function inMemory(chunk: number, buf: Buffer): number {
  const t0 = performance.now()
  const h = crypto.createHash('sha256')
  for (let done = 0; done < SIZE; done += chunk) {
    const n = Math.min(chunk, SIZE - done)
    const off = done % (buf.length - chunk + 1)
    h.update(buf.subarray(off, off + n))
  }
  h.digest()
  return SIZE / ((performance.now() - t0) / 1000)
}

async function fromFile(file: string): Promise<number> {
  const t0 = performance.now()
  const h = crypto.createHash('sha256')
  await hashPrefix(file, SIZE, h)
  h.digest()
  return SIZE / ((performance.now() - t0) / 1000)
}

const best = (xs: number[]): number => Math.round((Math.max(...xs) / MiB) * 10) / 10
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return Math.round(((s[Math.floor(s.length / 2)] ?? 0) / MiB) * 10) / 10
}

async function main(): Promise<void> {
  const buf = crypto.randomBytes(64 * MiB)
  const results: Record<string, { medianMiBps: number; bestMiBps: number }> = {}
  for (const chunk of [16 * 1024, 64 * 1024, 1024 * 1024]) {
    const xs = Array.from({ length: RUNS }, () => inMemory(chunk, buf))
    results[`memory-${chunk / 1024}KiB-chunks`] = { medianMiBps: median(xs), bestMiBps: best(xs) }
  }
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'atelier-bench-hash-'))
  const file = path.join(dir, 'data.bin')
  try {
    const fh = await fs.promises.open(file, 'w')
    for (let pos = 0; pos < SIZE; pos += buf.length)
      await fh.write(buf, 0, Math.min(buf.length, SIZE - pos), pos)
    await fh.close()
    await fromFile(file) // warm the page cache
    const xs: number[] = []
    for (let i = 0; i < RUNS; i++) xs.push(await fromFile(file))
    results['file-prefix-hasher'] = { medianMiBps: median(xs), bestMiBps: best(xs) }
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
        loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
      },
      null,
      2,
    )}\n`,
  )
}

await main()
