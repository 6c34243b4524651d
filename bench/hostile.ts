/**
 * Hostile inputs of issue 18, after the hardening: the time each takes to be refused (or survived) and the
 * peak memory it adds. Every case runs in its own child process, so the peak (getrusage maxRSS) is that
 * case's alone. Prints JSON: one object per case, with the "before" figure beside it.
 *
 *   npx tsx bench/hostile.ts            # all cases
 *   npx tsx bench/hostile.ts <case>     # one case (what the parent runs)
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { encodeMessage } from '../preload/wire'
import { decodeImage } from '../main/engine/image/codec'
import { createImage } from '../main/engine/image/types'
import { parseInfotext, readGenerationParameters } from '../main/engine/metadata'
import {
  hostilePng,
  hugePng,
  pngWithChunks,
  quadraticInfotext,
  zTxtBomb,
} from '../main/engine/metadata/hostile-fixtures'
import { UpscaleService } from '../main/engine/upscale/service'
import { Library } from '../main/library/library'
import { tinyLora } from '../main/library/test-support'
import {
  deflatedStoragePth,
  legacyTorchFile,
  stringDagKeyPickle,
  tupleDagKeyPickle,
} from '../main/model-formats/pickle/hostile-fixtures'
import { TorchFile } from '../main/model-formats/pickle/torch'
import { fetchPublic, isPublicAddress } from '../main/remote/public-fetch'
import { startServer, type RunningServer } from '../main/server'
import { createApi } from '../main/services/api'

interface Outcome {
  /** What happened: refused with which message, or survived. */
  result: string
}

async function withServer<T>(f: (s: RunningServer) => Promise<T>): Promise<T> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-bench-hostile-'))
  const renderer = path.join(home, 'renderer')
  fs.mkdirSync(renderer)
  fs.writeFileSync(path.join(renderer, 'index.html'), '<!doctype html>')
  const { services, handlers } = createApi({ home, mode: 'server', env: {} })
  const server = await startServer({ services, handlers, rendererDir: renderer, port: 0 })
  try {
    return await f(server)
  } finally {
    await server.close()
    await services.dispose()
    fs.rmSync(home, { recursive: true, force: true })
  }
}

async function healthy(s: RunningServer): Promise<boolean> {
  return (await fetch(`http://127.0.0.1:${s.port}/api/health?token=${s.token}`)).status === 200
}

function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    let got = ''
    sock.on('data', (d: Buffer) => (got += d.toString('latin1')))
    sock.on('close', () => resolve(got))
    sock.on('error', () => resolve(got))
    sock.write(bytes)
    setTimeout(() => sock.destroy(), 3000)
  })
}

function connect(s: RunningServer): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws?token=${s.token}`)
    ws.once('message', () => resolve(ws))
    ws.once('error', reject)
  })
}

/** Sends one frame; how long until the socket closes, and how long a health check sent beside it takes. */
async function sendFrame(s: RunningServer, bytes: Buffer): Promise<Outcome> {
  const ws = await connect(s)
  const t0 = performance.now()
  const code = new Promise<number>((r) => ws.once('close', (c) => r(c)))
  ws.send(bytes)
  const h0 = performance.now()
  const alive = await healthy(s)
  const healthMs = Math.round(performance.now() - h0)
  const closed = await code
  return {
    result: `closed ${closed} after ${Math.round(performance.now() - t0)} ms (frame sent); a health check beside it took ${healthMs} ms; alive=${alive}`,
  }
}

async function message(f: () => unknown): Promise<string> {
  try {
    await f()
    return 'survived'
  } catch (e) {
    return `refused: ${(e instanceof Error ? e.message : String(e)).slice(0, 140)}`
  }
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-bench-hostile-'))
}

const cases: Record<string, { attack: number; before: string; run: () => Promise<Outcome> }> = {
  'upgrade GET //[ (and Host: [)': {
    attack: 1,
    before: 'server process exits',
    run: () =>
      withServer(async (s) => {
        const host = `127.0.0.1:${s.port}`
        const up = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
        const a = await raw(s.port, `GET //[ HTTP/1.1\r\nHost: ${host}\r\n${up}\r\n`)
        const b = await raw(s.port, `GET /ws HTTP/1.1\r\nHost: [\r\n${up}\r\n`)
        return { result: `${a.split('\r\n')[0]} / ${b.split('\r\n')[0]}; alive=${await healthy(s)}` }
      }),
  },
  'malformed WebSocket frames (8 kinds)': {
    attack: 2,
    before: 'server process exits',
    run: () =>
      withServer(async (s) => {
        const frames = [
          [0x83, 0x80, 1, 2, 3, 4],
          [0xc2, 0x81, 1, 2, 3, 4, 0],
          [0x82, 0x01, 0],
          [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe7],
          [0x89, 0xfe, 0, 126, 0, 0, 0, 0, ...Array<number>(126).fill(0)],
          [0x09, 0x81, 0, 0, 0, 0, 0],
          [0x80, 0x80, 0, 0, 0, 0],
          [0x82, 0xff, 0, 0, 0, 0, 0x25, 0x80, 0, 0, 0, 0, 0, 0],
        ]
        let closed = 0
        for (const f of frames) {
          const ws = await connect(s)
          const gone = new Promise((r) => ws.once('close', r))
          ;(ws as unknown as { _socket: net.Socket })._socket.write(Buffer.from(f))
          await gone
          closed++
        }
        return { result: `${closed} sockets closed; alive=${await healthy(s)}` }
      }),
  },
  'MessagePack map of 3M keys (22 MB frame)': {
    attack: 3,
    before: 'blocks every client 34 s',
    run: () =>
      withServer(async (s) => {
        const n = 3_000_000
        const bytes = Buffer.alloc(5 + n * 7)
        bytes[0] = 0xdf
        bytes.writeUInt32BE(n, 1)
        for (let i = 0; i < n; i++) {
          const o = 5 + i * 7
          bytes[o] = 0xa5
          bytes.write(String(i % 100000).padStart(5, '0'), o + 1, 'latin1')
          bytes[o + 6] = 0xc0
        }
        return sendFrame(s, bytes)
      }),
  },
  'MessagePack array header of 50M elements': {
    attack: 3,
    before: '24 s, 1.9 GB',
    run: () =>
      withServer(async (s) => {
        const bytes = Buffer.alloc(5 + 50_000_000)
        bytes[0] = 0xdd
        bytes.writeUInt32BE(50_000_000, 1)
        return sendFrame(s, bytes)
      }),
  },
  'infotext line of 32 KB': {
    attack: 4,
    before: '1.5 s',
    run: async () => {
      const p = parseInfotext(quadraticInfotext(32 * 1024))
      return { result: `parsed (steps ${p.steps})` }
    },
  },
  'zTXt 1 MB -> 1 GiB': {
    attack: 4,
    before: '43 s, 2.7 GB',
    run: async () => {
      const r = readGenerationParameters(pngWithChunks([zTxtBomb(1024)]))
      return { result: r ? 'read' : 'chunk skipped (over the inflate cap)' }
    },
  },
  'hostile PNG through gallery:parameters': {
    attack: 4,
    before: 'server blocked > 5 min, SIGTERM ignored',
    run: () =>
      withServer(async (s) => {
        const ws = await connect(s)
        const answer = new Promise<void>((r) => ws.once('message', () => r()))
        ws.send(
          encodeMessage({ t: 'req', id: 1, channel: 'gallery:parameters', payload: { png: hostilePng() } }),
        )
        await answer
        ws.close()
        return { result: `answered; alive=${await healthy(s)}` }
      }),
  },
  'PNG declaring 16000x16000 (~750 KB)': {
    attack: 5,
    before: '4.7 GB before it fails',
    run: async () => ({ result: await message(() => decodeImage(hugePng(16000, 16000))) }),
  },
  'Lanczos x16 of 4096x4096': {
    attack: 5,
    before: '> 8 GB',
    run: async () => ({
      result: await message(() =>
        new UpscaleService().upscale(createImage(4096, 4096, 3), {
          upscaler: { kind: 'lanczos' },
          scale: 16,
        }),
      ),
    }),
  },
  'image prompt URL with a 2 GB image/png body': {
    attack: 6,
    before: '4.5 GB RSS before the 15 MB check',
    run: async () => {
      const server = http.createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png' })
        const chunk = Buffer.alloc(1 << 20)
        let sent = 0
        const pump = (): void => {
          while (sent++ < 2048) if (!res.write(chunk)) return void res.once('drain', pump)
          res.end()
        }
        res.on('close', () => (sent = 1e9))
        pump()
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.2', () => r()))
      const url = `http://127.0.0.2:${(server.address() as AddressInfo).port}/big.png`
      const result = await message(() =>
        fetchPublic(url, {
          maxBytes: 15 * 1024 * 1024,
          accept: 'image/',
          allowAddress: (ip) => ip === '127.0.0.2' || isPublicAddress(ip),
        }),
      )
      server.closeAllConnections()
      server.close()
      return { result }
    },
  },
  'image prompt URL http://[::ffff:127.0.0.1]/': {
    attack: 6,
    before: 'fetched',
    run: async () => ({
      result: await message(() => fetchPublic('http://[::ffff:7f00:1]:9/x.png', { maxBytes: 1 << 20 })),
    }),
  },
  '512-byte pickle, tuple DAG as a dict key (.pth)': {
    attack: 7,
    before: '> 60 s (probe, upscale, scan); server blocked > 150 s',
    run: async () => {
      const f = path.join(tmpDir(), 'bomb.pth')
      fs.writeFileSync(f, legacyTorchFile(tupleDagKeyPickle()))
      return { result: await message(() => TorchFile.open(f)) }
    },
  },
  '325-byte pickle variant': {
    attack: 7,
    before: '1-1.9 GB',
    run: async () => {
      const f = path.join(tmpDir(), 'bomb325.pth')
      fs.writeFileSync(f, legacyTorchFile(stringDagKeyPickle()))
      return { result: await message(() => TorchFile.open(f)) }
    },
  },
  '6.6 MB .pth of deflated 1 GiB storages': {
    attack: 7,
    before: '42 s, 2.2 GB',
    run: async () => {
      const f = path.join(tmpDir(), 'deflated.pth')
      fs.writeFileSync(f, deflatedStoragePth(6, 1024))
      return {
        result: await message(async () => {
          const t = await TorchFile.open(f)
          try {
            for (const x of t.stateDict().values()) await t.readBytes(x)
          } finally {
            await t.close()
          }
        }),
      }
    },
  },
  'two 300 MB sidecars (.civitai.info, A1111 .json) in a scan': {
    attack: 9,
    before: '23 s, 3 GB; copied into a 314 MB .atelier.json; two abort the scan',
    run: async () => {
      const home = tmpDir()
      const lora = await tinyLora(path.join(home, 'models', 'loras', 'a.safetensors'), 'sd-1', { seed: 1 })
      for (const ext of ['.civitai.info', '.json']) {
        const f = lora.replace(/\.safetensors$/, ext)
        fs.writeFileSync(f, '{"id": 1, "modelId": 2, "description": "')
        fs.truncateSync(f, 300 * 1024 * 1024)
      }
      const lib = await Library.open(home)
      const s = await lib.scan()
      const atelier = fs.statSync(lora.replace(/\.safetensors$/, '.atelier.json')).size
      fs.rmSync(home, { recursive: true, force: true })
      return { result: `scan kept ${s.models} model; .atelier.json ${atelier} bytes` }
    },
  },
}

async function runOne(name: string): Promise<void> {
  const c = cases[name]
  if (!c) throw new Error(`unknown case ${name}`)
  const base = process.resourceUsage().maxRSS
  const t0 = performance.now()
  const out = await c.run()
  const ms = performance.now() - t0
  const peak = process.resourceUsage().maxRSS
  process.stdout.write(
    `${JSON.stringify({ case: name, attack: c.attack, before: c.before, ms: Math.round(ms), peakAddedMB: Math.round((peak - base) / 1024), peakMB: Math.round(peak / 1024), ...out })}\n`,
  )
}

async function main(): Promise<void> {
  const one = process.argv[2]
  if (one) return runOne(one)
  const results: unknown[] = []
  for (const name of Object.keys(cases)) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), name], {
      encoding: 'utf8',
      timeout: 120_000,
    })
    const line = r.stdout.trim().split('\n').pop() ?? ''
    try {
      results.push(JSON.parse(line))
    } catch {
      results.push({ case: name, error: (r.stderr || `exit ${r.status} ${r.signal}`).slice(-400) })
    }
  }
  process.stdout.write(
    `${JSON.stringify({ bench: 'hostile', cpus: os.cpus().length, loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100), results }, null, 2)}\n`,
  )
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`)
    process.exit(1)
  },
)
