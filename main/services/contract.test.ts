import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { channels, requestSchemas } from '../../preload/contract'
import { createApi } from './api'
import { dispatch } from './dispatch'

const homes: string[] = []
function api() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-contract-'))
  homes.push(home)
  return createApi({ home, mode: 'server', env: {} })
}
afterEach(() => {
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true })
})

describe('contract', () => {
  it('has a handler and a validator for every channel', () => {
    const { handlers } = api()
    expect(channels.length).toBeGreaterThan(0)
    for (const c of channels) {
      expect(typeof handlers[c], c).toBe('function')
      expect(typeof requestSchemas[c].safeParse, c).toBe('function')
    }
    expect(Object.keys(handlers).sort()).toEqual([...channels].sort())
  })

  it('answers malformed requests with invalid-input, never a throw', async () => {
    const { handlers } = api()
    const bad: [string, unknown][] = [
      ['settings:update', { patch: { concurrentDownloads: 'many' } }],
      ['settings:update', { patch: { unknownKey: 1 } }],
      ['settings:update', null],
      ['secrets:set', { name: 'root-password', value: 'x' }],
      ['jobs:cancel', { jobId: 42 }],
      ['app:info', { extra: true }],
    ]
    for (const [channel, payload] of bad) {
      const r = await dispatch(handlers, channel, payload, { transport: 'test' })
      expect(r.ok, `${channel} ${JSON.stringify(payload)}`).toBe(false)
      if (!r.ok) expect(r.error.code).toBe('invalid-input')
    }
    const unknown = await dispatch(handlers, 'fs:readFile', { path: '/etc/passwd' }, { transport: 'test' })
    expect(unknown).toMatchObject({ ok: false, error: { code: 'unknown-channel' } })
  })

  it('maps service errors to error envelopes', async () => {
    const { handlers } = api()
    const r = await dispatch(handlers, 'jobs:cancel', { jobId: 'nope' }, { transport: 'test' })
    expect(r).toMatchObject({ ok: false, error: { code: 'not-found' } })
  })

  it('round-trips a setting through the store', async () => {
    const { handlers, services } = api()
    const r = await dispatch(
      handlers,
      'settings:update',
      { patch: { nsfw: 'show', concurrentDownloads: 3 } },
      { transport: 'test' },
    )
    expect(r).toMatchObject({ ok: true, value: { nsfw: 'show', concurrentDownloads: 3 } })
    const again = createApi({ home: services.home, mode: 'server', env: {} })
    expect(again.services.settings.get()).toMatchObject({ nsfw: 'show', concurrentDownloads: 3 })
  })
})
