import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../platform/paths'
import {
  classifyPickleBytes,
  detectPickle,
  hasPickleExtension,
  PickleRefusedError,
  refusePickle,
} from './pickle'

const dir = path.resolve(repoRoot(), '../shared/oracle-pickle')
const haveOracle = existsSync(dir)
if (!haveOracle) console.warn(`skipping oracle pickle tests: ${dir} not found`)

describe('pickle detection', () => {
  let tmp = ''
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'atelier-pickle-'))
  })
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true })
  })

  it('classifies raw pickle protocols 2..5 and torch zips', () => {
    for (const p of [2, 3, 4, 5]) expect(classifyPickleBytes(Uint8Array.from([0x80, p, 0x7d]))).toBe('pickle')
    expect(classifyPickleBytes(Uint8Array.from([0x80, 0x01]))).toBeNull()
    const zip = Buffer.concat([
      Buffer.from([0x50, 0x4b, 3, 4]),
      Buffer.alloc(26),
      Buffer.from('archive/data.pkl'),
    ])
    expect(classifyPickleBytes(zip)).toBe('torch-zip')
    expect(classifyPickleBytes(Buffer.from([0x50, 0x4b, 3, 4, 0, 0]))).toBeNull()
    expect(classifyPickleBytes(Buffer.from('{"a":1}'))).toBeNull()
  })

  it('refuses by content whatever the extension, with a readable message', async () => {
    const f = path.join(tmp, 'renamed.safetensors')
    await writeFile(f, Buffer.from([0x80, 0x02, 0x8a, 0x0a]))
    const err = await refusePickle(f).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PickleRefusedError)
    expect((err as Error).message).toMatch(
      /renamed\.safetensors is a Python pickle.*can run arbitrary code.*\.safetensors version/,
    )
    const ok = path.join(tmp, 'ok.bin')
    await writeFile(ok, Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]))
    await expect(refusePickle(ok)).resolves.toBeUndefined()
    await writeFile(path.join(tmp, 'empty.pt'), Buffer.alloc(0))
    expect(await detectPickle(path.join(tmp, 'empty.pt'))).toBeNull()
  })

  it('knows pickle extensions', () => {
    expect(['a.ckpt', 'b.PT', 'c.pth', 'd.bin'].map(hasPickleExtension)).toEqual([true, true, true, true])
    expect(hasPickleExtension('e.safetensors')).toBe(false)
  })

  it.skipIf(!haveOracle)('detects every oracle pickle without running it', async () => {
    expect(await detectPickle(path.join(dir, 'state-dict.pth'))).toBe('torch-zip')
    expect(await detectPickle(path.join(dir, 'checkpoint-style.ckpt'))).toBe('torch-zip')
    expect(await detectPickle(path.join(dir, 'forbidden-global.pth'))).toBe('torch-zip')
    expect(await detectPickle(path.join(dir, 'state-dict-legacy.pth'))).toBe('pickle')
    expect(await detectPickle(path.join(dir, 'expected.safetensors'))).toBeNull()
  })
})
