import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { credentialOrigins } from '../remote/credentials'
import { DownloadManager } from './manager'

// Two loopback "hosts": the configured API and a stranger a Civitai answer could point at.
interface Host {
  url: string
  auth: (string | undefined)[]
  server: http.Server
}
const hosts: Host[] = []
let api: Host
let stranger: Host
const body = Buffer.from('model bytes')

function start(redirectTo?: () => string): Promise<Host> {
  const h = { url: '', auth: [] as (string | undefined)[] } as Host
  h.server = http.createServer((req, res) => {
    h.auth.push(req.headers.authorization)
    if (redirectTo && req.url?.startsWith('/redirect'))
      return void res.writeHead(302, { location: `${redirectTo()}/file.bin` }).end()
    res
      .writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' })
      .end(body)
  })
  return new Promise((resolve) =>
    h.server.listen(0, '127.0.0.1', () => {
      h.url = `http://127.0.0.1:${(h.server.address() as AddressInfo).port}`
      hosts.push(h)
      resolve(h)
    }),
  )
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-cred-'))
beforeAll(async () => {
  stranger = await start()
  api = await start(() => stranger.url)
})
afterAll(() => {
  for (const h of hosts) h.server.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe('credentials go to the configured API origin only (attack 12)', () => {
  it('a downloadUrl on another host gets no key; the API origin does; redirects drop it', async () => {
    const m = await DownloadManager.open({
      stateDir: path.join(tmp, 'state'),
      credentials: (s) => (s === 'civitai' ? 'civitai-secret-key' : undefined),
      credentialOrigins: (s) => credentialOrigins(s === 'civitai' ? api.url : null),
      hashInWorker: 'never',
    })
    const get = async (url: string, name: string): Promise<void> => {
      const job = await m.enqueue({ url, destDir: path.join(tmp, 'out'), fileName: name, source: 'civitai' })
      expect((await m.whenSettled(job.id)).state).toBe('done')
    }
    await get(`${stranger.url}/api/download/models/1`, 'a.bin')
    expect(stranger.auth).toEqual([undefined])
    await get(`${api.url}/api/download/models/2`, 'b.bin')
    expect(api.auth).toEqual(['Bearer civitai-secret-key'])
    await get(`${api.url}/redirect/3`, 'c.bin')
    expect(api.auth[1]).toBe('Bearer civitai-secret-key')
    expect(stranger.auth).toEqual([undefined, undefined])
    await m.dispose()
  })

  it('origins: the configured one, plus civitai.red beside civitai.com', () => {
    expect(credentialOrigins('http://127.0.0.1:9/api')).toEqual(['http://127.0.0.1:9'])
    expect(credentialOrigins('https://civitai.com')).toEqual(['https://civitai.com', 'https://civitai.red'])
    expect(credentialOrigins('not a url')).toEqual([])
    expect(credentialOrigins(null)).toEqual([])
  })
})
