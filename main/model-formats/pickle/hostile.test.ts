import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  deflatedStoragePth,
  legacyTorchFile,
  listDagPickle,
  stringDagKeyPickle,
  tupleDagKeyPickle,
} from './hostile-fixtures'
import { TorchFile } from './torch'
import { f32Bytes, torchSaveZip } from './torch-writer'
import { expandedSize, PickleDataError, PyDict, PyTuple, unpickle, type PyValue } from './unpickler'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-hostile-pickle-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const opts = { resolveGlobal: () => undefined }

/** Runs `f`, returning the error it throws, its time and the RSS growth. */
async function measure(f: () => unknown): Promise<{ err: unknown; ms: number; mb: number }> {
  const before = process.memoryUsage().rss
  const t0 = performance.now()
  let err: unknown
  try {
    await f()
  } catch (e) {
    err = e
  }
  return { err, ms: performance.now() - t0, mb: (process.memoryUsage().rss - before) / 2 ** 20 }
}

describe('pickle reference bombs (attack 7)', () => {
  it.each([
    ['512-byte tuple DAG as a dict key', tupleDagKeyPickle(), 512, /dict key expands to more than 1000000/],
    ['325-byte string DAG as a dict key', stringDagKeyPickle(), 325, /dict key expands to more than 1000000/],
    ['list DAG as a value', listDagPickle(), 604, /expand to more than 50000000/],
  ])('%s is refused in milliseconds', async (_name, bytes, size, message) => {
    expect(bytes.length).toBe(size)
    const r = await measure(() => unpickle(bytes, opts))
    expect(r.err).toBeInstanceOf(PickleDataError)
    expect((r.err as PickleDataError).code).toBe('too-large')
    expect(String(r.err)).toMatch(message)
    expect(r.ms).toBeLessThan(1000)
    expect(r.mb).toBeLessThan(100)
  })

  it('the same bomb saved as a .pth is refused by the torch reader', async () => {
    const file = path.join(tmp, 'bomb.pth')
    fs.writeFileSync(file, legacyTorchFile(tupleDagKeyPickle()))
    const r = await measure(() => TorchFile.open(file))
    expect(String(r.err)).toMatch(/bomb\.pth: damaged pickle: a dict key expands to more than 1000000 values/)
    expect(r.ms).toBeLessThan(1000)
  })

  it('keeps tuple keys working: equal structures, shared parts and frozensets', () => {
    // {((1, 2), (1, 2)): 'a', ((1, 2), (1, 2)) built again: 'b'} -> one key, value 'b'
    const t = [0x4b, 1, 0x4b, 2, 0x86] // (1, 2)
    const pkl = Uint8Array.from([
      0x80,
      0x02,
      0x7d,
      ...t,
      0x71,
      0x00,
      0x68,
      0x00,
      0x86,
      0x58,
      1,
      0,
      0,
      0,
      0x61,
      0x73,
      ...t,
      ...t,
      0x86,
      0x58,
      1,
      0,
      0,
      0,
      0x62,
      0x73,
      0x2e,
    ])
    const d = unpickle(pkl, opts).value as PyDict
    expect(d.size).toBe(1)
    expect(d.get(new PyTuple([new PyTuple([1, 2]), new PyTuple([1, 2])]))).toBe('b')
    // a long key still compares by content
    const long = new PyTuple(Array.from({ length: 300 }, (_, i) => `k${i}`))
    const dd = new PyDict()
    dd.set(long, 1)
    expect(dd.get(new PyTuple(Array.from({ length: 300 }, (_, i) => `k${i}`)))).toBe(1)
    expect(dd.get(new PyTuple(Array.from({ length: 300 }, (_, i) => `k${i + 1}`)))).toBeUndefined()
  })

  it('expandedSize counts shared references and stops past the budget', () => {
    let t: PyValue = null
    for (let i = 0; i < 10; i++) t = new PyTuple([t, t])
    expect(expandedSize(t)).toBe(2 ** 11 - 1)
    for (let i = 0; i < 40; i++) t = new PyTuple([t, t])
    expect(expandedSize(t, 1e6)).toBe(Number.POSITIVE_INFINITY)
    const cyc: PyValue[] = []
    cyc.push(cyc, 1)
    expect(expandedSize(cyc)).toBe(3)
  })
})

describe('zip bombs in torch archives (attack 7)', () => {
  it('a 6.6 MB .pth of deflated 1 GiB storages is refused before inflating', async () => {
    const file = path.join(tmp, 'deflated.pth')
    const bytes = deflatedStoragePth(6, 1024)
    expect(bytes.length).toBeLessThan(7_000_000)
    fs.writeFileSync(file, bytes)
    const r = await measure(async () => {
      const t = await TorchFile.open(file)
      try {
        for (const x of t.stateDict().values()) await t.readBytes(x)
      } finally {
        await t.close()
      }
    })
    expect(String(r.err)).toMatch(/claims to inflate \d+ bytes to 1073741824 .*zip bomb/)
    expect(r.ms).toBeLessThan(2000)
    expect(r.mb).toBeLessThan(150)
  })

  it('small deflated storages still load', async () => {
    const file = path.join(tmp, 'small-deflated.pth')
    fs.writeFileSync(file, deflatedStoragePth(2, 1))
    const t = await TorchFile.open(file)
    const [w] = t.stateDict().values()
    const b = w ? await t.readBytes(w).catch((e: unknown) => e) : undefined
    // the fixture's CRC is not the zeros' one: the entry inflates (within budget), then fails its CRC
    expect(String(b)).toMatch(/CRC/)
    await t.close()
    const ok = path.join(tmp, 'ok.pth')
    fs.writeFileSync(ok, torchSaveZip([['w', { dtype: 'F32', shape: [3], bytes: f32Bytes([1, 2, 3]) }]]))
    const t2 = await TorchFile.open(ok)
    expect([...t2.stateDict().keys()]).toEqual(['w'])
    await t2.close()
  })
})
