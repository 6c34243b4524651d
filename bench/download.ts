/**
 * Download throughput: the DownloadManager (hashing while writing, then verify + rename) against curl on the
 * same loopback URL. Prints JSON.
 *
 *   npx tsx bench/download.ts
 *   ATELIER_BENCH_DOWNLOAD_BYTES=536870912 ATELIER_BENCH_RUNS=3 npx tsx bench/download.ts
 *
 * The source file is sparse (holes read as zeros, so the server's disk is not the bottleneck) with a random
 * first 64 MiB; ATELIER_BENCH_RANDOM=1 writes it fully random instead. Runs alternate curl and the manager;
 * medians are reported. Target: manager >= 90 % of `curl -o /dev/null`.
 */
import { execFile, spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { listen, serveBytes, defaultFaults } from '../e2e/fixtures/remote/fixture-http'
import { DownloadManager } from '../main/downloads/manager'

const run = promisify(execFile)
const SIZE = Number(process.env.ATELIER_BENCH_DOWNLOAD_BYTES ?? 2 * 1024 ** 3)
const RUNS = Math.max(1, Number(process.env.ATELIER_BENCH_RUNS ?? 3))
const FULL_RANDOM = process.env.ATELIER_BENCH_RANDOM === '1'
const MiB = 1024 * 1024

async function makeSource(file: string): Promise<string> {
  const fh = await fs.promises.open(file, 'w')
  const hash = crypto.createHash('sha256')
  const chunk = Buffer.alloc(8 * MiB)
  const randomPart = FULL_RANDOM ? SIZE : Math.min(SIZE, 64 * MiB)
  let pos = 0
  try {
    while (pos < randomPart) {
      const n = Math.min(chunk.length, randomPart - pos)
      crypto.randomFillSync(chunk, 0, n)
      await fh.write(chunk, 0, n, pos)
      hash.update(chunk.subarray(0, n))
      pos += n
    }
    await fh.truncate(SIZE)
  } finally {
    await fh.close()
  }
  const zeros = Buffer.alloc(8 * MiB)
  while (pos < SIZE) {
    const n = Math.min(zeros.length, SIZE - pos)
    hash.update(zeros.subarray(0, n))
    pos += n
  }
  return hash.digest('hex')
}

async function hasCurl(): Promise<boolean> {
  try {
    await run('curl', ['--version'])
    return true
  } catch {
    return false
  }
}

interface Sample {
  /** bytes per second (wall clock) */
  rate: number
  /** CPU seconds (user + sys) of the downloading process */
  cpu: number
}

/** `curl -o <out>`; CPU time from bash's `times` (children's user + sys). */
async function curl(url: string, out: string): Promise<Sample> {
  const script = `curl -s -f -o "$1" -w '%{size_download} %{time_total}\\n' "$2"; times`
  const { stdout } = await run('bash', ['-c', script, 'bench', out, url])
  const lines = stdout.trim().split('\n')
  const [bytes, secs] = (lines[0] ?? '').split(' ').map(Number)
  if (bytes !== SIZE) throw new Error(`curl fetched ${bytes} bytes, expected ${SIZE}`)
  const child = (lines[2] ?? '').match(/(\d+)m([\d.]+)s/g) ?? []
  const cpu = child.reduce((s, t) => {
    const m = /(\d+)m([\d.]+)s/.exec(t)
    return s + Number(m?.[1] ?? 0) * 60 + Number(m?.[2] ?? 0)
  }, 0)
  return { rate: SIZE / (secs ?? 1), cpu }
}

function cpuNow(): number {
  const u = process.cpuUsage() // whole process, worker threads included
  return (u.user + u.system) / 1e6
}

/** Floor without curl: a plain Node GET discarding the body. */
async function nodeGet(url: string): Promise<Sample> {
  const t0 = performance.now()
  const c0 = cpuNow()
  const res = await fetch(url)
  let n = 0
  for await (const c of res.body ?? []) n += (c as Uint8Array).byteLength
  if (n !== SIZE) throw new Error(`fetched ${n} bytes`)
  return { rate: SIZE / ((performance.now() - t0) / 1000), cpu: cpuNow() - c0 }
}

async function manager(
  url: string,
  dir: string,
  sha: string,
  i: number,
  hashInWorker: 'never' | 'always',
): Promise<Sample> {
  const stateDir = path.join(dir, `state-${i}`)
  const dest = path.join(dir, `dest-${i}`)
  const m = await DownloadManager.open({ stateDir, progressIntervalMs: 500, hashInWorker })
  try {
    const t0 = performance.now()
    const c0 = cpuNow()
    const job = await m.enqueue({ url, destDir: dest, fileName: 'big.safetensors', expectedSha256: sha })
    const done = await m.whenSettled(job.id)
    const secs = (performance.now() - t0) / 1000
    if (done.state !== 'done' || !done.verified) {
      throw new Error(`download ${done.state}: ${done.error?.message}`)
    }
    return { rate: SIZE / secs, cpu: cpuNow() - c0 }
  } finally {
    await m.dispose()
    await fs.promises.rm(dest, { recursive: true, force: true })
    await fs.promises.rm(stateDir, { recursive: true, force: true })
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}
const mbps = (x: number): number => Math.round((x / MiB) * 10) / 10
const summary = (xs: Sample[]): { MiBps: number; runsMiBps: number[]; cpuSecondsPerGiB: number } => ({
  MiBps: mbps(median(xs.map((x) => x.rate))),
  runsMiBps: xs.map((x) => mbps(x.rate)),
  cpuSecondsPerGiB: Math.round((median(xs.map((x) => x.cpu)) / (SIZE / 1024 ** 3)) * 100) / 100,
})

/** Server mode (child process, so it does not share the manager's event loop): serve argv file, print URL. */
async function serve(file: string): Promise<void> {
  const bytes = { size: SIZE, etag: '"bench"', lastModified: new Date(), diskPath: file }
  const l = await listen((req, res) => void serveBytes(req, res, bytes, defaultFaults()))
  process.stdout.write(`${l.url}/big.safetensors\n`)
}

async function startServer(file: string): Promise<{ url: string; close(): Promise<void> }> {
  const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, '--serve', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ATELIER_BENCH_DOWNLOAD_BYTES: String(SIZE) },
  })
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))
    child.once('exit', (code) => reject(new Error(`bench server exited (${code})`)))
  })
  return {
    url,
    close: async () => {
      child.kill()
      await new Promise((r) => child.once('exit', r))
    },
  }
}

async function main(): Promise<void> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'atelier-bench-dl-'))
  const src = path.join(dir, 'source.bin')
  const sha = await makeSource(src)
  const server = { ...(await startServer(src)), sha }
  try {
    const curlOk = await hasCurl()
    const floor: Sample[] = []
    const toFile: Sample[] = []
    const inline: Sample[] = []
    const worker: Sample[] = []
    for (let i = 0; i < RUNS; i++) {
      floor.push(curlOk ? await curl(server.url, '/dev/null') : await nodeGet(server.url))
      if (curlOk) {
        const out = path.join(dir, 'curl.out')
        toFile.push(await curl(server.url, out))
        await fs.promises.rm(out, { force: true })
      }
      inline.push(await manager(server.url, dir, server.sha, 2 * i, 'never'))
      worker.push(await manager(server.url, dir, server.sha, 2 * i + 1, 'always'))
    }
    const best = Math.max(median(inline.map((x) => x.rate)), median(worker.map((x) => x.rate)))
    const ratio = best / median(floor.map((x) => x.rate))
    process.stdout.write(
      `${JSON.stringify(
        {
          bench: 'download',
          bytes: SIZE,
          runs: RUNS,
          source: FULL_RANDOM ? 'random' : 'sparse+64MiB-random',
          server: 'separate Node process, loopback',
          floor: { what: curlOk ? 'curl -o /dev/null' : 'node fetch, body discarded', ...summary(floor) },
          curlToFile: curlOk ? summary(toFile) : null,
          managerInlineHash: summary(inline),
          managerWorkerHash: summary(worker),
          ratioVsFloor: Math.round(ratio * 1000) / 1000,
          target: 0.9,
          pass: ratio >= 0.9,
          cpus: os.cpus().length,
          loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
        },
        null,
        2,
      )}\n`,
    )
  } finally {
    await server.close()
    await fs.promises.rm(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3] ?? '')
else await main()
