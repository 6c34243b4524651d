/**
 * Download throughput: the DownloadManager (hashing while writing, then verify + rename) against curl on the
 * same loopback URL, interleaved round by round so both see the same machine load. Prints JSON.
 *
 *   npx tsx bench/download.ts
 *   ATELIER_BENCH_DOWNLOAD_BYTES=1073741824 ATELIER_BENCH_RUNS=3 npx tsx bench/download.ts
 *   ATELIER_BENCH_BASELINE=/path/to/other/checkout npx tsx bench/download.ts   # before/after in one run
 *
 * The source file is sparse (holes read as zeros, so the server's disk is not the bottleneck) with a random
 * first 64 MiB; ATELIER_BENCH_RANDOM=1 writes it fully random instead. The server is a separate Node process
 * (the fixture responder). Each round runs `curl -o /dev/null`, `curl -o file`, the manager with inline
 * hashing and with worker hashing (and the baseline checkout's manager, if given). Reported: median MiB/s,
 * median CPU-s/GiB of the client process (threads included; curl's from `times`) and of the server, the 1-minute
 * load average at each sample, and the manager's ratio to both curl runs (ratio of medians, and median of per-round ratios).
 * Target: the manager (the hashing mode 'auto' picks here) >= 90 % of curl.
 *
 * Proxies (ATELIER_BENCH_PROXY=0 turns them off): a loopback HTTP proxy (the `proxy` package, its own Node
 * process) serves `curl -x` and the manager through it (absolute-form http, the onread path). With openssl
 * (ATELIER_BENCH_TLS=0 turns it off) the same file is also served over TLS (a throwaway certificate), and the
 * manager fetches it directly and through a CONNECT tunnel (TLS over the tunnel: 'data' chunks copied into the
 * receive buffers). Those rows use the hashing mode 'auto' picks. The proxy's CPU comes from /proc (Linux).
 */
import { execFile, spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { createProxy } from 'proxy'
import { listen, serveBytes, defaultFaults } from '../e2e/fixtures/remote/fixture-http'
import { DownloadManager } from '../main/downloads/manager'
import type { ProxyResolver } from '../main/platform/proxy'
import { hasOpenssl, makeLocalhostCert } from '../main/platform/test-proxy'

const run = promisify(execFile)
const SIZE = Number(process.env.ATELIER_BENCH_DOWNLOAD_BYTES ?? 2 * 1024 ** 3)
const RUNS = Math.max(1, Number(process.env.ATELIER_BENCH_RUNS ?? 5))
const FULL_RANDOM = process.env.ATELIER_BENCH_RANDOM === '1'
const BASELINE = process.env.ATELIER_BENCH_BASELINE
const WITH_PROXY = process.env.ATELIER_BENCH_PROXY !== '0'
const WITH_TLS = WITH_PROXY && process.env.ATELIER_BENCH_TLS !== '0' && hasOpenssl()
const MiB = 1024 * 1024
const GiB = 1024 ** 3

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
  /** CPU seconds of the server process meanwhile */
  serverCpu: number
  /** 1-minute load average when the sample started */
  load: number
  /** CPU seconds of the proxy process meanwhile (proxied samples on Linux) */
  proxyCpu?: number
}

let serverOrigin = ''
async function serverCpuNow(): Promise<number> {
  return Number(await (await fetch(`${serverOrigin}/__cpu`)).text())
}

/** CPU seconds of a child process from /proc (Linux); null elsewhere. */
function procCpu(pid: number | undefined): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / 100 // utime + stime, USER_HZ = 100 on Linux
  } catch {
    return null
  }
}
let proxyPid: number | undefined

/** Run one download and add the server's (and the proxy's) CPU seconds to its sample. */
async function sampled(
  fn: () => Promise<Omit<Sample, 'serverCpu'>>,
  o: { tls?: Server; proxied?: boolean } = {},
): Promise<Sample> {
  const { tls } = o
  const s0 = tls ? (procCpu(tls.pid) ?? 0) : await serverCpuNow()
  const p0 = o.proxied ? procCpu(proxyPid) : null
  const sample = await fn()
  const p1 = o.proxied ? procCpu(proxyPid) : null
  const s1 = tls ? (procCpu(tls.pid) ?? 0) : await serverCpuNow()
  return { ...sample, serverCpu: s1 - s0, ...(p0 !== null && p1 !== null ? { proxyCpu: p1 - p0 } : {}) }
}

const load1 = (): number => Math.round((os.loadavg()[0] ?? 0) * 100) / 100

/** `curl -o <out>` (through `proxy` when given); CPU time from bash's `times` (children's user + sys). */
async function curl(url: string, out: string, proxy?: string): Promise<Omit<Sample, 'serverCpu'>> {
  const load = load1()
  const script = `curl -s -f -o "$1" -w '%{size_download} %{time_total}\\n' "$2" \${3:+-x "$3"}; times`
  const { stdout } = await run('bash', ['-c', script, 'bench', out, url, proxy ?? ''], {
    env: { ...process.env, http_proxy: '', HTTP_PROXY: '', https_proxy: '', HTTPS_PROXY: '' },
  })
  const lines = stdout.trim().split('\n')
  const [bytes, secs] = (lines[0] ?? '').split(' ').map(Number)
  if (bytes !== SIZE) throw new Error(`curl fetched ${bytes} bytes, expected ${SIZE}`)
  const child = (lines[2] ?? '').match(/(\d+)m([\d.]+)s/g) ?? []
  const cpu = child.reduce((s, t) => {
    const m = /(\d+)m([\d.]+)s/.exec(t)
    return s + Number(m?.[1] ?? 0) * 60 + Number(m?.[2] ?? 0)
  }, 0)
  return { rate: SIZE / (secs ?? 1), cpu, load }
}

function cpuNow(): number {
  const u = process.cpuUsage() // whole process: worker threads and the libuv pool included
  return (u.user + u.system) / 1e6
}

/** Floor without curl: a plain Node GET discarding the body. */
async function nodeGet(url: string): Promise<Omit<Sample, 'serverCpu'>> {
  const load = load1()
  const t0 = performance.now()
  const c0 = cpuNow()
  const res = await fetch(url)
  let n = 0
  for await (const c of res.body ?? []) n += (c as Uint8Array).byteLength
  if (n !== SIZE) throw new Error(`fetched ${n} bytes`)
  return { rate: SIZE / ((performance.now() - t0) / 1000), cpu: cpuNow() - c0, load }
}

type Manager = typeof DownloadManager

async function manager(
  impl: Manager,
  url: string,
  dir: string,
  sha: string,
  tag: string,
  hashInWorker: 'never' | 'always',
  net: { proxy?: ProxyResolver; ca?: Buffer } = {},
): Promise<Omit<Sample, 'serverCpu'>> {
  const stateDir = path.join(dir, `state-${tag}`)
  const dest = path.join(dir, `dest-${tag}`)
  // Direct rows say so explicitly (an HTTPS_PROXY in the bench's environment must not leak into them).
  const m = await impl.open({ stateDir, progressIntervalMs: 250, hashInWorker, proxy: () => null, ...net })
  try {
    const load = load1()
    const t0 = performance.now()
    const c0 = cpuNow()
    const job = await m.enqueue({ url, destDir: dest, fileName: 'big.safetensors', expectedSha256: sha })
    const done = await m.whenSettled(job.id)
    const secs = (performance.now() - t0) / 1000
    const cpu = cpuNow() - c0
    if (done.state !== 'done' || !done.verified) {
      throw new Error(`download ${done.state}: ${done.error?.message}`)
    }
    return { rate: SIZE / secs, cpu, load }
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
const r3 = (x: number): number => Math.round(x * 1000) / 1000
const cpuPerGiB = (x: Sample): number => x.cpu / (SIZE / GiB)
const r2 = (x: number): number => Math.round(x * 100) / 100
const summary = (xs: Sample[]) => ({
  MiBps: mbps(median(xs.map((x) => x.rate))),
  runsMiBps: xs.map((x) => mbps(x.rate)),
  cpuSecondsPerGiB: r2(median(xs.map(cpuPerGiB))),
  runsCpuSecondsPerGiB: xs.map((x) => r2(cpuPerGiB(x))),
  serverCpuSecondsPerGiB: r2(median(xs.map((x) => x.serverCpu / (SIZE / GiB)))),
  ...(xs.some((x) => x.proxyCpu !== undefined)
    ? { proxyCpuSecondsPerGiB: r2(median(xs.map((x) => (x.proxyCpu ?? 0) / (SIZE / GiB)))) }
    : {}),
  load1: xs.map((x) => x.load),
})
/** Manager vs curl: ratio of the medians, and the median of the per-round ratios (robust to load drift). */
const ratio = (a: Sample[], b: Sample[]) =>
  b.length === 0
    ? null
    : {
        ofMedians: r3(median(a.map((x) => x.rate)) / median(b.map((x) => x.rate))),
        perRoundMedian: r3(median(a.map((x, i) => x.rate / (b[i]?.rate ?? x.rate)))),
      }

/** Server mode (child process, so it does not share the manager's event loop): serve argv file, print URL. */
async function serve(file: string): Promise<void> {
  const bytes = { size: SIZE, etag: '"bench"', lastModified: new Date(), diskPath: file }
  const l = await listen((req, res) => {
    if (req.url === '/__cpu') {
      const u = process.cpuUsage()
      res.end(String((u.user + u.system) / 1e6))
    } else void serveBytes(req, res, bytes, defaultFaults())
  })
  process.stdout.write(`${l.url}/big.safetensors\n`)
}

/** TLS server mode: the same bytes over https with the certificate in argv (key, cert files). */
async function serveTls(file: string, key: string, cert: string): Promise<void> {
  const bytes = { size: SIZE, etag: '"bench"', lastModified: new Date(), diskPath: file }
  const server = https.createServer(
    { key: fs.readFileSync(key), cert: fs.readFileSync(cert) },
    (req, res) => {
      void serveBytes(req, res, bytes, defaultFaults())
    },
  )
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  process.stdout.write(`https://localhost:${(server.address() as AddressInfo).port}/big.safetensors\n`)
}

/** Proxy mode: a loopback HTTP proxy (absolute-form requests and CONNECT). */
async function serveProxy(): Promise<void> {
  const server = createProxy()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
}

interface Server {
  url: string
  pid: number | undefined
  close(): Promise<void>
}

async function startServer(file: string, mode = '--serve', ...extra: string[]): Promise<Server> {
  const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, mode, file, ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ATELIER_BENCH_DOWNLOAD_BYTES: String(SIZE) },
  })
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))
    child.once('exit', (code) => reject(new Error(`bench server exited (${code})`)))
  })
  return {
    url,
    pid: child.pid,
    close: async () => {
      child.kill()
      await new Promise((r) => child.once('exit', r))
    },
  }
}

async function loadBaseline(): Promise<Manager | null> {
  if (!BASELINE) return null
  const file = path.resolve(BASELINE, 'main/downloads/manager.ts')
  const mod = (await import(pathToFileURL(file).href)) as { DownloadManager: Manager }
  return mod.DownloadManager
}

async function main(): Promise<void> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'atelier-bench-dl-'))
  const src = path.join(dir, 'source.bin')
  const sha = await makeSource(src)
  const server = await startServer(src)
  serverOrigin = new URL(server.url).origin
  const baseline = await loadBaseline()
  const proxyServer = WITH_PROXY ? await startServer('', '--proxy') : null
  proxyPid = proxyServer?.pid
  const viaProxy: ProxyResolver | undefined = proxyServer ? () => new URL(proxyServer.url) : undefined
  let tls: { server: Server; ca: Buffer } | null = null
  if (WITH_TLS) {
    const { key, cert } = makeLocalhostCert()
    await fs.promises.writeFile(path.join(dir, 'key.pem'), key)
    await fs.promises.writeFile(path.join(dir, 'cert.pem'), cert)
    const server = await startServer(
      src,
      '--serve-tls',
      path.join(dir, 'key.pem'),
      path.join(dir, 'cert.pem'),
    )
    tls = { server, ca: cert }
  }
  const loadStart = os.loadavg()
  try {
    const curlOk = await hasCurl()
    const s = {
      floor: [] as Sample[],
      toFile: [] as Sample[],
      inline: [] as Sample[],
      worker: [] as Sample[],
      baseInline: [] as Sample[],
      baseWorker: [] as Sample[],
      proxyCurl: [] as Sample[],
      proxyManager: [] as Sample[],
      tlsDirect: [] as Sample[],
      tlsProxy: [] as Sample[],
    }
    const autoWorker = os.availableParallelism() >= 2
    const autoHash = autoWorker ? 'always' : 'never'
    for (let i = 0; i < RUNS; i++) {
      s.floor.push(await sampled(() => (curlOk ? curl(server.url, '/dev/null') : nodeGet(server.url))))
      if (curlOk) {
        const out = path.join(dir, 'curl.out')
        s.toFile.push(await sampled(() => curl(server.url, out)))
        await fs.promises.rm(out, { force: true })
      }
      // Odd rounds run the baseline checkout first, so neither side always follows curl's file write.
      const current = async (): Promise<void> => {
        s.inline.push(await sampled(() => manager(DownloadManager, server.url, dir, sha, `i${i}`, 'never')))
        s.worker.push(await sampled(() => manager(DownloadManager, server.url, dir, sha, `w${i}`, 'always')))
      }
      const before = async (impl: Manager): Promise<void> => {
        s.baseInline.push(await sampled(() => manager(impl, server.url, dir, sha, `bi${i}`, 'never')))
        s.baseWorker.push(await sampled(() => manager(impl, server.url, dir, sha, `bw${i}`, 'always')))
      }
      if (baseline && i % 2 === 1) await before(baseline)
      await current()
      if (baseline && i % 2 === 0) await before(baseline)
      if (proxyServer && viaProxy) {
        if (curlOk) {
          const out = path.join(dir, 'curl.out')
          s.proxyCurl.push(await sampled(() => curl(server.url, out, proxyServer.url), { proxied: true }))
          await fs.promises.rm(out, { force: true })
        }
        s.proxyManager.push(
          await sampled(
            () => manager(DownloadManager, server.url, dir, sha, `p${i}`, autoHash, { proxy: viaProxy }),
            { proxied: true },
          ),
        )
      }
      if (tls && viaProxy) {
        const { server: t, ca } = tls
        s.tlsDirect.push(
          await sampled(() => manager(DownloadManager, t.url, dir, sha, `t${i}`, autoHash, { ca }), {
            tls: t,
          }),
        )
        s.tlsProxy.push(
          await sampled(
            () => manager(DownloadManager, t.url, dir, sha, `tp${i}`, autoHash, { ca, proxy: viaProxy }),
            { tls: t, proxied: true },
          ),
        )
      }
    }
    // What hashInWorker 'auto' picks for this file on this machine (see DownloadManagerOptions).
    const autoMode = os.availableParallelism() >= 2 ? 'worker' : 'inline'
    const chosen = autoMode === 'worker' ? s.worker : s.inline
    const vsFloor = ratio(chosen, s.floor)
    const vsFile = ratio(chosen, s.toFile)
    const out = {
      bench: 'download',
      bytes: SIZE,
      runs: RUNS,
      source: FULL_RANDOM ? 'random' : 'sparse+64MiB-random',
      server: 'separate Node process (fixture responder), loopback',
      curlNull: { what: curlOk ? 'curl -o /dev/null' : 'node fetch, body discarded', ...summary(s.floor) },
      curlToFile: curlOk ? summary(s.toFile) : null,
      managerInlineHash: summary(s.inline),
      managerWorkerHash: summary(s.worker),
      baseline: baseline
        ? {
            checkout: BASELINE,
            managerInlineHash: summary(s.baseInline),
            managerWorkerHash: summary(s.baseWorker),
            baselineVsCurlToFile: {
              inline: ratio(s.baseInline, s.toFile),
              worker: ratio(s.baseWorker, s.toFile),
            },
          }
        : null,
      proxy: proxyServer
        ? {
            what: 'loopback HTTP proxy (`proxy` npm package, its own Node process); manager rows hash as autoHashing',
            curlThroughProxy: curlOk ? summary(s.proxyCurl) : null,
            managerThroughProxy: summary(s.proxyManager),
            managerThroughProxyVsCurlThroughProxy: curlOk ? ratio(s.proxyManager, s.proxyCurl) : null,
            baseline: 'n/a: the code before this change ignores proxies',
          }
        : null,
      tls: tls
        ? {
            what: 'the same file over https (throwaway certificate), manager direct and through a CONNECT tunnel',
            managerDirect: summary(s.tlsDirect),
            managerThroughConnect: summary(s.tlsProxy),
            connectVsDirect: ratio(s.tlsProxy, s.tlsDirect),
          }
        : null,
      autoHashing: autoMode,
      ratios: {
        managerVsCurlNull: vsFloor,
        managerVsCurlToFile: vsFile,
        inlineVsCurlToFile: ratio(s.inline, s.toFile),
        workerVsCurlToFile: ratio(s.worker, s.toFile),
      },
      target: 0.9,
      passVsCurlNull: (vsFloor?.ofMedians ?? 0) >= 0.9,
      passVsCurlToFile: vsFile === null ? null : vsFile.ofMedians >= 0.9,
      cpus: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      loadavgStart: loadStart.map((x) => Math.round(x * 100) / 100),
      loadavgEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    }
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
  } finally {
    await server.close()
    await proxyServer?.close()
    await tls?.server.close()
    await fs.promises.rm(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3] ?? '')
else if (process.argv[2] === '--serve-tls')
  await serveTls(process.argv[3] ?? '', process.argv[4] ?? '', process.argv[5] ?? '')
else if (process.argv[2] === '--proxy') await serveProxy()
else await main()
