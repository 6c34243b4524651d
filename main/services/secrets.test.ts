import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { createApi } from './api'

describe('secrets', () => {
  it('are encrypted at rest with a user-only key file, and never logged', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-secrets-'))
    const log = vi.spyOn(console, 'log')
    const err = vi.spyOn(console, 'error')
    const { services } = createApi({ home, mode: 'server', env: {} })
    const secret = 'civitai-abcdef0123456789'
    const status = services.secrets.set('civitaiApiKey', secret)
    expect(status).toEqual({ name: 'civitaiApiKey', isSet: true, source: 'store', hint: '…6789' })
    const onDisk = fs
      .readdirSync(home)
      .map((f) => fs.readFileSync(path.join(home, f)).toString('latin1'))
      .join('\n')
    expect(onDisk).not.toContain(secret)
    expect(fs.statSync(path.join(home, 'secret.key')).mode & 0o777).toBe(0o600)
    // A fresh process with the same data folder reads it back.
    expect(createApi({ home, mode: 'server', env: {} }).services.secrets.get('civitaiApiKey')).toBe(secret)
    for (const call of [...log.mock.calls, ...err.mock.calls])
      expect(JSON.stringify(call)).not.toContain(secret)
  })

  it('prefer environment variables and report their source', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-secrets-'))
    const { services } = createApi({ home, mode: 'server', env: { ATELIER_HF_TOKEN: 'hf_fromenvironment' } })
    expect(services.secrets.status('hfToken')).toMatchObject({ isSet: true, source: 'env' })
    expect(services.secrets.get('hfToken')).toBe('hf_fromenvironment')
  })
})
