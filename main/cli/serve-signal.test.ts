import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, expect, it } from 'vitest'
import WebSocket from 'ws'
import { encodeMessage } from '../../preload/wire'
import { hostilePng } from '../engine/metadata/hostile-fixtures'

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-sigterm-'))
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))

it('SIGTERM stops a busy `atelier serve` promptly', async () => {
  const renderer = path.join(home, 'renderer')
  fs.mkdirSync(renderer)
  fs.writeFileSync(path.join(renderer, 'index.html'), '<!doctype html><title>x</title>')
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'main.ts'), 'serve', '--port', '0', '--home', home],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ATELIER_RENDERER_DIR: renderer } },
  )
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | string | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  )
  let url = ''
  for await (const line of createInterface({ input: child.stdout })) {
    const m = /running at (http\S+)/.exec(line)
    if (m) {
      url = m[1] as string
      break
    }
  }
  expect(url, stderr).not.toBe('')
  const u = new URL(url)
  const ws = new WebSocket(`ws://${u.host}/ws${u.search}`)
  await new Promise((resolve, reject) => {
    ws.once('message', resolve)
    ws.once('error', reject)
  })
  // Keep it busy: hostile PNGs to read parameters from, then a socket left open.
  for (let id = 1; id <= 4; id++)
    ws.send(encodeMessage({ t: 'req', id, channel: 'gallery:parameters', payload: { png: hostilePng() } }))
  await new Promise((r) => setTimeout(r, 100))
  const t0 = performance.now()
  child.kill('SIGTERM')
  expect(await exited, stderr).toBe(0)
  expect(performance.now() - t0).toBeLessThan(5000)
  ws.terminate()
})
