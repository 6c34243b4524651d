import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { decodeMessage, encodeMessage, type ServerMessage } from '../../preload/wire'
import { createApi } from '../services/api'
import { startServer, type RunningServer } from './index'

let server: RunningServer
let home: string

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-server-'))
  const renderer = path.join(home, 'renderer')
  fs.mkdirSync(renderer)
  fs.writeFileSync(path.join(renderer, 'index.html'), '<!doctype html><title>x</title>')
  const { services, handlers } = createApi({ home, mode: 'server', env: {} })
  server = await startServer({ services, handlers, rendererDir: renderer, port: 0 })
})
afterAll(() => server.close())

function connect(query: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws${query}`, { headers })
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => reject(new Error(String(res.statusCode))))
    ws.once('error', reject)
  })
}

function call(ws: WebSocket, id: number, channel: string, payload: unknown): Promise<ServerMessage> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer): void => {
      const msg = decodeMessage(data) as ServerMessage
      if (msg.t === 'res' && msg.id === id) {
        ws.off('message', onMessage)
        resolve(msg)
      }
    }
    ws.on('message', onMessage)
    ws.send(encodeMessage({ t: 'req', id, channel, payload }))
  })
}

describe('atelier serve', () => {
  it('serves the renderer only with the token, and sets a session cookie', async () => {
    const base = `http://127.0.0.1:${server.port}`
    expect((await fetch(`${base}/`)).status).toBe(401)
    const ok = await fetch(`${base}/?token=${server.token}`)
    expect(ok.status).toBe(200)
    expect(ok.headers.get('set-cookie')).toContain('HttpOnly')
    const csp = ok.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'self'")
    // one connect-src (two made Chromium log a duplicate-directive warning on every load)
    expect(csp.match(/connect-src/g)).toHaveLength(1)
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${server.port}`)
    const traversal = await fetch(`${base}/..%2f..%2fetc%2fpasswd?token=${server.token}`)
    expect(await traversal.text()).not.toContain('root:')
  })

  it('refuses sockets without the token or from another origin', async () => {
    await expect(connect('')).rejects.toThrow('401')
    await expect(connect(`?token=${server.token}`, { Origin: 'http://evil.example' })).rejects.toThrow('403')
    await expect(connect(`?token=${server.token}`, { Host: 'evil.example' })).rejects.toThrow('403')
  })

  it('round-trips requests and pushes events over MessagePack', async () => {
    const ws = await connect(`?token=${server.token}`)
    const events: ServerMessage[] = []
    ws.on('message', (d: Buffer) => events.push(decodeMessage(d) as ServerMessage))
    const info = await call(ws, 1, 'app:info', {})
    expect(info).toMatchObject({ t: 'res', id: 1, result: { ok: true, value: { mode: 'server' } } })
    const bad = await call(ws, 2, 'settings:update', { patch: { nsfw: 'sometimes' } })
    expect(bad).toMatchObject({ result: { ok: false, error: { code: 'invalid-input' } } })
    const set = await call(ws, 3, 'settings:update', { patch: { nsfw: 'blur' } })
    expect(set).toMatchObject({ result: { ok: true, value: { nsfw: 'blur' } } })
    expect(events.some((e) => e.t === 'evt' && e.name === 'settings:changed')).toBe(true)
    ws.close()
  })
})
