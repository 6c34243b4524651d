import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { encode } from '@msgpack/msgpack'
import { decodeMessage, encodeMessage, type ServerMessage } from '../../preload/wire'
import { createApi } from '../services/api'
import { startServer, type RunningServer } from './index'
import { checkMsgpackShape, decodeClientFrame, MAX_FRAME_DEPTH } from './limits'

let server: RunningServer
let home: string

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-hostile-'))
  const renderer = path.join(home, 'renderer')
  fs.mkdirSync(renderer)
  fs.writeFileSync(path.join(renderer, 'index.html'), '<!doctype html><title>x</title>')
  const { services, handlers } = createApi({ home, mode: 'server', env: {} })
  server = await startServer({ services, handlers, rendererDir: renderer, port: 0 })
})
afterAll(async () => {
  await server.close()
  fs.rmSync(home, { recursive: true, force: true })
})

/** Sends raw bytes on a fresh TCP connection; resolves with what came back when the server closes it. */
function raw(request: string | Buffer, waitMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(server.port, '127.0.0.1')
    let got = ''
    const done = (): void => {
      clearTimeout(timer)
      sock.destroy()
      resolve(got)
    }
    const timer = setTimeout(done, waitMs)
    sock.on('data', (d: Buffer) => (got += d.toString('latin1')))
    sock.on('close', done)
    sock.on('error', done)
    sock.write(request)
  })
}

async function healthy(): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${server.port}/api/health?token=${server.token}`)
  return res.status === 200
}

function upgrade(target: string, host: string, extra = ''): string {
  return (
    `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`
  )
}

function connect(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`)
    ws.once('message', () => resolve(ws)) // the hello frame
    ws.once('error', reject)
  })
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)))
}

async function roundTrip(ws: WebSocket): Promise<void> {
  const answer = new Promise<ServerMessage>((resolve) =>
    ws.on('message', (d: Buffer) => {
      const m = decodeMessage(d) as ServerMessage
      if (m.t === 'res') resolve(m)
    }),
  )
  ws.send(encodeMessage({ t: 'req', id: 7, channel: 'app:info', payload: {} }))
  expect(await answer).toMatchObject({ t: 'res', id: 7, result: { ok: true } })
}

describe('hostile upgrade requests (attack 1)', () => {
  const port = (): number => server.port
  it.each([
    ['//[', () => `127.0.0.1:${port()}`],
    ['/ws', () => '['],
    ['/ws', () => 'a b'],
    ['//[?token=x', () => `127.0.0.1:${port()}`],
    ['http://[', () => `127.0.0.1:${port()}`],
    ['*', () => `127.0.0.1:${port()}`],
  ])('GET %s is answered 4xx and the server keeps running', async (target, host) => {
    const answer = await raw(upgrade(target, host()))
    expect(answer).toMatch(/^HTTP\/1\.1 4\d\d /)
    expect(await healthy()).toBe(true)
  })

  it('a cross-origin page opening ws://…//[ gets 403 before the URL is parsed', async () => {
    const answer = await raw(upgrade('//[', `127.0.0.1:${port()}`, 'Origin: http://evil.example\r\n'))
    expect(answer).toMatch(/^HTTP\/1\.1 403 /)
    expect(await healthy()).toBe(true)
  })

  it('a malformed plain HTTP request gets 400 and the server keeps running', async () => {
    const answer = await raw(`GET //[ HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\nConnection: close\r\n\r\n`)
    expect(answer).toMatch(/^HTTP\/1\.1 400 /)
    expect(await raw('GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /)
    expect(await healthy()).toBe(true)
  })

  it('a reset in the middle of an upgrade does not crash the server', async () => {
    const sock = net.connect(server.port, '127.0.0.1')
    await new Promise((r) => sock.once('connect', r))
    sock.write(upgrade(`/ws?token=${server.token}`, `127.0.0.1:${port()}`).slice(0, 40))
    sock.resetAndDestroy()
    await new Promise((r) => setTimeout(r, 50))
    expect(await healthy()).toBe(true)
  })
})

/** One client frame, masked as RFC 6455 requires unless `mask` is false. */
function frame(first: number, payload: Buffer, opts: { mask?: boolean; len?: Buffer } = {}): Buffer {
  const mask = opts.mask ?? true
  const len =
    opts.len ??
    (payload.length < 126
      ? Buffer.from([payload.length])
      : Buffer.from([126, payload.length >> 8, payload.length & 255]))
  len.writeUInt8(len.readUInt8(0) | (mask ? 0x80 : 0), 0)
  const key = Buffer.from([1, 2, 3, 4])
  const body = Buffer.from(payload.map((b, i) => (mask ? b ^ key.readUInt8(i % 4) : b)))
  return Buffer.concat([Buffer.from([first]), len, mask ? key : Buffer.alloc(0), body])
}

describe('malformed WebSocket frames from a client with the token (attack 2)', () => {
  const big = Buffer.alloc(8)
  big.writeBigUInt64BE(600n * 1024n * 1024n)
  it.each([
    ['reserved opcode', frame(0x83, Buffer.alloc(0))],
    ['RSV1 without an extension', frame(0xc2, Buffer.from([0x80]))],
    ['unmasked frame', frame(0x82, Buffer.from([0x80]), { mask: false })],
    ['close code 999', frame(0x88, Buffer.from([0x03, 0xe7]))],
    ['ping over 125 bytes', frame(0x89, Buffer.alloc(126))],
    ['fragmented control frame', frame(0x09, Buffer.alloc(1))],
    ['stray continuation', frame(0x80, Buffer.alloc(4))],
    [
      'length header over 512 MB',
      frame(0x82, Buffer.alloc(0), { len: Buffer.concat([Buffer.from([127]), big]) }),
    ],
  ])('%s closes that socket only', async (_name, bytes) => {
    const other = await connect()
    const ws = await connect()
    const gone = closed(ws)
    ;(ws as unknown as { _socket: net.Socket })._socket.write(bytes)
    const code = await gone
    expect(code).toBeGreaterThanOrEqual(1002)
    await roundTrip(other)
    other.close()
    expect(await healthy()).toBe(true)
  })
})

describe('decoded size limits (attack 3)', () => {
  it('refuses a map of 3M keys in milliseconds without decoding it', () => {
    const n = 3_000_000
    const bytes = Buffer.alloc(5 + n * 2)
    bytes[0] = 0xdf
    bytes.writeUInt32BE(n, 1)
    for (let i = 0; i < n; i++) {
      bytes[5 + i * 2] = 0xa0 // "" key
      bytes[6 + i * 2] = 0x00
    }
    const t0 = performance.now()
    expect(() => decodeClientFrame(bytes)).toThrow(/more than/)
    expect(performance.now() - t0).toBeLessThan(500)
  })

  it('refuses a 50M-element array header and deep nesting', () => {
    const arr = Buffer.from([0xdd, 0x02, 0xfa, 0xf0, 0x80, 0xc0, 0xc0])
    expect(() => decodeClientFrame(arr)).toThrow()
    const deep = Buffer.alloc(MAX_FRAME_DEPTH + 2, 0x91)
    deep[deep.length - 1] = 0xc0
    expect(() => decodeClientFrame(deep)).toThrow(/deeper/)
  })

  it('counts exactly what encode() wrote and accepts ordinary requests with images', () => {
    const msg = {
      t: 'req',
      id: 1,
      channel: 'x',
      payload: { a: [1, -1, 1.5, 2 ** 40, 'é', null, true], b: new Uint8Array(70_000) },
    }
    const shape = checkMsgpackShape(encode(msg))
    expect(shape).toEqual({ items: 1 + 8 + 4 + 7, depth: 3 })
    expect(decodeClientFrame(encode(msg))).toMatchObject({ channel: 'x' })
    expect(() => checkMsgpackShape(encode(msg).subarray(0, 20))).toThrow(/truncated/)
  })

  it('closes a socket that sends a huge map and keeps serving the others', async () => {
    const other = await connect()
    const ws = await connect()
    const gone = closed(ws)
    const n = 1_000_000
    const bytes = Buffer.alloc(5 + n * 2)
    bytes[0] = 0xdf
    bytes.writeUInt32BE(n, 1)
    for (let i = 0; i < n; i++) bytes[5 + i * 2] = 0xa0
    const t0 = performance.now()
    ws.send(bytes)
    expect(await gone).toBe(1007)
    expect(performance.now() - t0).toBeLessThan(2000)
    await roundTrip(other)
    other.close()
  })
})
