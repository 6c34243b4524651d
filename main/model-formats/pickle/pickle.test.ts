import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../platform/paths'
import { readPickleHeader, refusePickle } from '../pickle'
import { SafetensorsFile } from '../safetensors'
import { PickleRefusedError } from './errors'
import { ALLOWED_GLOBALS, TorchFile, TorchFormatError } from './torch'
import { f32Bytes, PickleBuilder, stateDictPickle, torchSaveZip, zipStored } from './torch-writer'
import type { PyTuple } from './unpickler'
import { ForbiddenGlobalError, PickleDataError, PyDict, unpickle } from './unpickler'
import { crc32 } from './zip'

const dir = path.resolve(repoRoot(), '../shared/oracle-pickle')
const haveOracle = existsSync(path.join(dir, 'expected.safetensors'))
if (!haveOracle) console.warn(`skipping oracle pickle reader tests: ${dir} not found`)

let tmp = ''
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'atelier-pickle-reader-'))
})
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

/** Deterministic xorshift32. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 0x100000000
  }
}

/** Opens a file and reads every tensor; returns 'ok' or the error class name (rethrows anything else). */
async function openAndReadAll(file: string): Promise<string> {
  let t: TorchFile | undefined
  try {
    t = await TorchFile.open(file)
    for (const [, x] of t.tensors()) await t.readBytes(x)
    return 'ok'
  } catch (err) {
    if (err instanceof TorchFormatError || err instanceof PickleRefusedError) {
      expect(err.message.length).toBeGreaterThan(10)
      return err.name
    }
    throw err
  } finally {
    await t?.close()
  }
}

const noGlobals = { resolveGlobal: (): undefined => undefined }

describe('unpickler', () => {
  it('reads the basic value kinds of protocols 0-4', () => {
    const p = new PickleBuilder().proto(2).op(0x7d) // {}
    p.mark()
    p.str('int').int(-7)
    p.str('big').op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1) // LONG1 2**64
    p.str('t').op(0x88, 0x89, 0x4e, 0x87) // (True, False, None)
    p.str('f')
      .op(0x47)
      .raw(Uint8Array.from([0x3f, 0xf8, 0, 0, 0, 0, 0, 0])) // 1.5
    p.str('py2').op(0x55, 3).raw(new TextEncoder().encode('abc'))
    p.str('list').op(0x5d, 0x28).int(1).int(2).op(0x65)
    p.setitems().stop()
    const { value } = unpickle(p.bytes(), noGlobals)
    expect(value).toBeInstanceOf(PyDict)
    const d = value as PyDict
    expect(d.get('int')).toBe(-7)
    expect(d.get('big')).toBe(2n ** 64n)
    expect((d.get('t') as PyTuple).items).toEqual([true, false, null])
    expect(d.get('f')).toBe(1.5)
    expect(d.get('py2')).toBe('abc')
    expect(d.get('list')).toEqual([1, 2])
    // protocol 0 text opcodes
    const text = new TextEncoder().encode("(lp0\nI42\naL-3L\naF0.25\naS'a\\nb'\np1\nag1\na.")
    expect(unpickle(text, noGlobals).value).toEqual([42, -3, 0.25, 'a\nb', 'a\nb'])
  })

  it('refuses globals that are not allowed, naming them, before anything else happens', () => {
    const evil = new TextEncoder().encode("cos\nsystem\n(S'echo hi'\ntR.")
    expect(() => unpickle(evil, noGlobals)).toThrow(ForbiddenGlobalError)
    expect(() => unpickle(evil, noGlobals)).toThrow(/forbidden global os\.system/)
    const stack = new PickleBuilder().proto(4).str('builtins').str('eval').op(0x93).stop().bytes()
    expect(() => unpickle(stack, noGlobals)).toThrow(/forbidden global builtins\.eval/)
    const py2 = new TextEncoder().encode('c__builtin__\ngetattr\n.')
    expect(() => unpickle(py2, noGlobals)).toThrow(/__builtin__\.getattr/)
  })

  it('fails cleanly on bad opcodes, underflow, huge lengths and missing memo entries', () => {
    const cases: [number[], RegExp][] = [
      [[0x80, 2, 0xff], /unknown opcode 0xff/],
      [[0x80, 2, 0x2e], /stack underflow/],
      [[0x80, 2, 0x28, 0x2e], /stack underflow/],
      [[0x80, 4, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x2e], /impossible|ends early/],
      [[0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f], /ends early/],
      [[0x80, 2, 0x8b, 0xff, 0xff, 0xff, 0x7f], /ends early|too large/],
      [[0x80, 2, 0x68, 5, 0x2e], /memo entry 5 is not defined/],
      [[0x80, 2, 0x4b, 1, 0x4b, 2, 0x4b, 3, 0x73, 0x2e], /SETITEM on int/],
      [[0x80, 2, 0x7d, 0x5d, 0x4e, 0x73], /unhashable/],
      [[0x80, 9], /unsupported pickle protocol 9/],
      [[0x80, 2, 0x82, 1], /extension-registry/],
      [[0x80, 2, 0x4e], /ends early/],
    ]
    for (const [bytes, re] of cases) {
      let err: unknown
      try {
        unpickle(Uint8Array.from(bytes), noGlobals)
      } catch (e) {
        err = e
      }
      expect(err, bytes.join(',')).toBeInstanceOf(PickleDataError)
      expect((err as Error).message, bytes.join(',')).toMatch(re)
    }
  })

  it('never throws anything but its own errors on random input (fuzz, 20000 buffers)', () => {
    const r = rng(1234)
    const seed = stateDictPickle([['a.weight', { dtype: 'F32', shape: [2, 3] }]], 'params')
    let ok = 0
    for (let i = 0; i < 20000; i++) {
      let buf: Uint8Array
      if (i % 2 === 0) {
        buf = new Uint8Array(1 + Math.floor(r() * 64))
        for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(r() * 256)
      } else {
        buf = seed.slice()
        const flips = 1 + Math.floor(r() * 4)
        for (let k = 0; k < flips; k++) buf[Math.floor(r() * buf.length)] = Math.floor(r() * 256)
        if (r() < 0.3) buf = buf.subarray(0, Math.floor(r() * buf.length))
      }
      try {
        unpickle(buf, {
          resolveGlobal: (m, n) =>
            `${m}.${n}` === 'collections.OrderedDict' ? { call: () => new PyDict(true) } : undefined,
          persistentLoad: () => null,
        })
        ok++
      } catch (err) {
        if (!(err instanceof PickleDataError || err instanceof ForbiddenGlobalError)) throw err
      }
    }
    expect(ok).toBeGreaterThanOrEqual(0)
  })
})

describe.skipIf(!haveOracle)('PyTorch files of the oracle set', () => {
  const files = ['state-dict.pth', 'state-dict-legacy.pth', 'checkpoint-style.ckpt']

  it.each(files)(
    '%s: every tensor equals expected.safetensors (views, strides, fp16/bf16, int, bool)',
    async (f) => {
      const expected = await SafetensorsFile.open(path.join(dir, 'expected.safetensors'))
      const t = await TorchFile.open(path.join(dir, f))
      try {
        expect(t.format).toBe(f.includes('legacy') ? 'legacy' : 'zip')
        const sd = t.stateDict()
        expect([...sd.keys()].sort()).toEqual(expected.keys().sort())
        for (const [name, x] of sd) {
          const info = expected.info(name)
          expect(x.shape, name).toEqual(info.shape)
          if (info.dtype === 'F32') {
            const mine = await t.readFloat32(x)
            expect(Array.from(mine), name).toEqual(Array.from(await expected.readFloat32(name)))
          } else {
            expect(
              Buffer.from(await t.readBytes(x)).equals(Buffer.from(await expected.readRaw(name))),
              name,
            ).toBe(true)
          }
        }
        const b = sd.get('shared.b')
        expect(b?.contiguous).toBe(false)
        expect(b?.stride).toEqual([1, 8])
        expect(sd.get('shared.a')?.storageOffset).toBe(8)
        expect(sd.get('shared.a')?.storage).toBe(b?.storage)
      } finally {
        await t.close()
        await expected.close()
      }
    },
  )

  it('the checkpoint-style file keeps its training fields', async () => {
    const t = await TorchFile.open(path.join(dir, 'checkpoint-style.ckpt'))
    try {
      const root = t.root as PyDict
      expect(root.get('global_step')).toBe(470000)
      expect(root.get('epoch')).toBe(6)
      expect(root.get('optimizer_states')).toEqual([])
    } finally {
      await t.close()
    }
  })

  it('refuses the os.system pickle by name and never runs it', async () => {
    const f = path.join(dir, 'forbidden-global.pth')
    const err = await TorchFile.open(f).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PickleRefusedError)
    expect((err as PickleRefusedError).forbidden).toBe('posix.system')
    expect((err as Error).message).toMatch(
      /forbidden-global\.pth was refused: its pickle calls the forbidden global "posix\.system"/,
    )
    await expect(refusePickle(f)).rejects.toThrow(/posix\.system/)
    await expect(readPickleHeader(f)).rejects.toBeInstanceOf(PickleRefusedError)
  })

  it('describes a pickled state dict like a safetensors header', async () => {
    const h = await readPickleHeader(path.join(dir, 'checkpoint-style.ckpt'))
    expect(h?.kind).toBe('torch-zip')
    expect(h?.tensors.get('half.weight')).toMatchObject({ dtype: 'F16', shape: [5, 7] })
    expect(h?.scattered).toEqual(['shared.b'])
    await expect(readPickleHeader(path.join(dir, 'state-dict.pth'), { requireRanges: true })).rejects.toThrow(
      /tensor "shared\.b" is not stored as one contiguous range/,
    )
    expect(await readPickleHeader(path.join(dir, 'expected.safetensors'))).toBeNull()
  })

  it('fuzz: every truncation of the zip and legacy files ends in a clear error', async () => {
    for (const f of ['state-dict.pth', 'state-dict-legacy.pth']) {
      const bytes = await readFile(path.join(dir, f))
      const cut = path.join(tmp, `cut-${f}`)
      const results = new Map<string, number>()
      for (let n = 0; n < bytes.length; n += n < 64 || n > bytes.length - 64 ? 1 : 23) {
        await writeFile(cut, bytes.subarray(0, n))
        const r = await openAndReadAll(cut)
        expect(r, `${f} cut at ${n}`).not.toBe('ok')
        results.set(r, (results.get(r) ?? 0) + 1)
      }
      expect([...results.keys()].every((k) => k === 'TorchFormatError' || k === 'PickleRefusedError')).toBe(
        true,
      )
    }
  })

  it('fuzz: random byte damage never crashes or hangs (600 mutants)', async () => {
    const r = rng(99)
    for (const f of ['state-dict.pth', 'state-dict-legacy.pth', 'forbidden-global.pth']) {
      const bytes = await readFile(path.join(dir, f))
      const m = path.join(tmp, `mut-${f}`)
      for (let i = 0; i < 200; i++) {
        const b = Buffer.from(bytes)
        const flips = 1 + Math.floor(r() * 6)
        for (let k = 0; k < flips; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256)
        await writeFile(m, b)
        const res = await openAndReadAll(m)
        if (f.startsWith('forbidden') && res === 'ok') throw new Error('a damaged forbidden pickle loaded')
      }
    }
  })
})

describe('hostile and damaged archives (written here)', () => {
  const weight = f32Bytes([1, 2, 3, 4, 5, 6])

  it('a torch.save zip written here reads back, wrapped or not', async () => {
    for (const wrapper of [undefined, 'params_ema']) {
      const f = path.join(tmp, `ok-${wrapper ?? 'plain'}.pth`)
      await writeFile(
        f,
        torchSaveZip([['conv.weight', { dtype: 'F32', shape: [2, 3], bytes: weight }]], { wrapper }),
      )
      const t = await TorchFile.open(f)
      const x = t.stateDict().get('conv.weight')
      expect(x && Array.from(await t.readFloat32(x))).toEqual([1, 2, 3, 4, 5, 6])
      await t.close()
    }
  })

  async function expectError(name: string, bytes: Uint8Array, re: RegExp): Promise<void> {
    const f = path.join(tmp, name)
    await writeFile(f, bytes)
    const err = await TorchFile.open(f).catch((e: unknown) => e)
    expect(err, name).toBeInstanceOf(Error)
    expect((err as Error).message, name).toMatch(re)
    expect((err as Error).message, name).toContain(name)
  }

  it('storage sizes larger than their entries, tensors past their storage, missing storages', async () => {
    const pklFor = (numel: number, shape: number[], offset = 0): Uint8Array => {
      const p = new PickleBuilder().proto(2).global('torch._utils', '_rebuild_tensor_v2').mark()
      p.mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(numel).tuple()
      p.binpersid().int(offset).mark()
      for (const d of shape) p.int(d)
      p.tuple().mark()
      for (let i = 0; i < shape.length; i++) p.int(shape.slice(i + 1).reduce((a, b) => a * b, 1))
      p.tuple().op(0x89).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce().stop()
      return p.bytes()
    }
    const zip = (pkl: Uint8Array, data: Uint8Array | null): Uint8Array =>
      zipStored([['a/data.pkl', pkl], ...(data ? [['a/data/0', data] as [string, Uint8Array]] : [])])
    await expectError(
      'huge-storage.pth',
      zip(pklFor(2 ** 30, [2, 3]), weight),
      /storage 0 needs \d+ bytes but its entry holds 24/,
    )
    await expectError('past-end.pth', zip(pklFor(6, [3, 3]), weight), /reaches element 8 of a storage of 6/)
    await expectError('offset.pth', zip(pklFor(6, [2, 3], 4), weight), /reaches element/)
    await expectError('no-storage.pth', zip(pklFor(6, [2, 3]), null), /storage 0 has no entry a\/data\/0/)
    await expectError(
      'huge-shape.pth',
      zip(pklFor(6, [2 ** 30, 2 ** 30, 2 ** 30]), weight),
      /too large|reaches/,
    )
  })

  it('damaged zip structures: bad CRC, lying directory, zip64 claims, no data.pkl', async () => {
    const good = torchSaveZip([['w', { dtype: 'F32', shape: [6], bytes: weight }]])
    const v = new DataView(good.buffer)
    const eocd = good.length - 22
    const cdOffset = v.getUint32(eocd + 16, true)

    const badCrc = good.slice()
    new DataView(badCrc.buffer).setUint32(cdOffset + 16, (crc32(Uint8Array.of(1)) ^ 1) >>> 0, true)
    await expectError('bad-crc.pth', badCrc, /fails its CRC check/)

    const lying = good.slice()
    new DataView(lying.buffer).setUint32(eocd + 12, 0x7fffffff, true)
    await expectError('lying-cd.pth', lying, /central directory .* does not fit/)

    const zip64 = good.slice()
    new DataView(zip64.buffer).setUint32(eocd + 16, 0xffffffff, true)
    await expectError('zip64.pth', zip64, /zip64 locator/)

    const hugeEntry = good.slice()
    new DataView(hugeEntry.buffer).setUint32(cdOffset + 20, 0x7ffffff0, true)
    await expectError('huge-entry.pth', hugeEntry, /does not fit before the central directory/)

    await expectError('no-pkl.pth', zipStored([['x/other', weight]]), /without data\.pkl/)
    await expectError('empty.pth', new Uint8Array(0), /not a PyTorch file/)
  })

  it('a pickle inside a zip that reaches for a forbidden global is refused by name', async () => {
    const p = new PickleBuilder()
      .proto(2)
      .global('subprocess', 'Popen')
      .mark()
      .str('ls')
      .tuple()
      .reduce()
      .stop()
    const f = path.join(tmp, 'popen.pth')
    await writeFile(f, zipStored([['a/data.pkl', p.bytes()]]))
    const err = (await TorchFile.open(f).catch((e: unknown) => e)) as PickleRefusedError
    expect(err).toBeInstanceOf(PickleRefusedError)
    expect(err.forbidden).toBe('subprocess.Popen')
    expect(err.kind).toBe('torch-zip')
    // A legacy-style raw pickle too.
    const g = path.join(tmp, 'eval.pt')
    await writeFile(g, new PickleBuilder().proto(2).global('builtins', 'eval').stop().bytes())
    await expect(TorchFile.open(g)).rejects.toMatchObject({ forbidden: 'builtins.eval' })
  })

  it('the allow-list holds only state-dict globals', () => {
    for (const g of ALLOWED_GLOBALS)
      expect(g).toMatch(
        /^(torch\.|collections\.OrderedDict$|builtins\.(set|frozenset|bytearray)$|_codecs\.encode$|numpy|pytorch_lightning\.callbacks\.model_checkpoint\.ModelCheckpoint$)/,
      )
    expect(ALLOWED_GLOBALS).toContain('torch._utils._rebuild_tensor_v2')
    expect(ALLOWED_GLOBALS).toContain('torch.BFloat16Storage')
    expect(ALLOWED_GLOBALS).not.toContain('builtins.eval')
  })
})
