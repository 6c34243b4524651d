import { existsSync } from 'node:fs'
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../platform/paths'
import {
  bf16ToF32,
  f16ToF32,
  f32ToF16,
  readHeader,
  SafetensorsError,
  SafetensorsFile,
  writeSafetensors,
} from './safetensors'

const oracle = path.resolve(repoRoot(), '../shared/oracle')
const tinySd15 = path.join(oracle, 'tiny-sd15.safetensors')
const haveOracle = existsSync(tinySd15)
if (!haveOracle) console.warn(`skipping oracle safetensors tests: ${tinySd15} not found`)

let dir = ''
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-st-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A file with the given raw header text (length prefix computed) and `dataBytes` zero bytes of data. */
async function crafted(name: string, header: string | object, dataBytes = 0, lengthOverride?: bigint) {
  const text = typeof header === 'string' ? header : JSON.stringify(header)
  const h = Buffer.from(text, 'utf8')
  const prefix = Buffer.alloc(8)
  prefix.writeBigUInt64LE(lengthOverride ?? BigInt(h.byteLength))
  const file = path.join(dir, name)
  await writeFile(file, Buffer.concat([prefix, h, Buffer.alloc(dataBytes)]))
  return file
}

async function expectCode(file: string, code: string, text?: RegExp) {
  const err = await readHeader(file).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(SafetensorsError)
  const e = err as SafetensorsError
  expect(e.code).toBe(code)
  expect(e.message).toContain(path.basename(file))
  if (text) expect(e.message).toMatch(text)
  await expect(SafetensorsFile.open(file)).rejects.toMatchObject({ code })
}

const t = (dtype: string, shape: number[], a: number, b: number) => ({ dtype, shape, data_offsets: [a, b] })

describe('header validation', () => {
  it('rejects files shorter than 8 bytes', async () => {
    const file = path.join(dir, 'tiny.safetensors')
    await writeFile(file, Buffer.from([1, 2, 3]))
    await expectCode(file, 'truncated', /3 bytes/)
  })
  it('rejects an absurd header length', async () => {
    await expectCode(await crafted('huge.safetensors', '{}', 0, 1n << 40n), 'header-too-large')
  })
  it('rejects a header longer than the file', async () => {
    await expectCode(
      await crafted('short.safetensors', '{}', 0, 5000n),
      'truncated',
      /runs past the end of the file/,
    )
  })
  it('rejects invalid JSON and non-objects', async () => {
    await expectCode(await crafted('json.safetensors', '{"a": '), 'bad-json')
    await expectCode(await crafted('arr.safetensors', '[1,2]'), 'bad-json')
    await expectCode(
      await crafted('bin.safetensors', Buffer.from([0xff, 0xfe]).toString('latin1')),
      'bad-json',
    )
  })
  it('rejects non-string metadata', async () => {
    await expectCode(await crafted('meta.safetensors', { __metadata__: { a: 1 } }), 'bad-metadata', /"a"/)
  })
  it('rejects unknown and unsupported dtypes', async () => {
    await expectCode(await crafted('dt.safetensors', { x: t('F17', [1], 0, 2) }, 2), 'unknown-dtype', /F17/)
    await expectCode(
      await crafted('f8.safetensors', { x: t('F8_E4M3', [1], 0, 1) }, 1),
      'unknown-dtype',
      /F8_E4M3/,
    )
  })
  it('rejects bad shapes', async () => {
    await expectCode(await crafted('sh.safetensors', { x: t('F32', [-1], 0, 4) }, 4), 'bad-shape')
    await expectCode(await crafted('sh2.safetensors', { x: t('F32', [1.5], 0, 4) }, 4), 'bad-shape')
    await expectCode(
      await crafted('sh3.safetensors', { x: { dtype: 'F32', data_offsets: [0, 4] } }, 4),
      'bad-shape',
    )
  })
  it('rejects malformed or reversed offsets', async () => {
    await expectCode(await crafted('o1.safetensors', { x: t('F32', [1], -4, 0) }, 4), 'offset-out-of-range')
    await expectCode(await crafted('o2.safetensors', { x: t('F32', [0], 4, 0) }, 4), 'offset-out-of-range')
  })
  it('rejects offsets outside the data section (lying header)', async () => {
    const file = await crafted('o3.safetensors', { a: t('F32', [1], 0, 4), b: t('F32', [1], 100, 104) }, 8)
    await expectCode(file, 'offset-out-of-range', /"b"/)
  })
  it('rejects overlapping tensors', async () => {
    const file = await crafted('ov.safetensors', { a: t('F32', [2], 0, 8), b: t('F32', [2], 4, 12) }, 12)
    await expectCode(file, 'overlap', /"a".*"b"/)
  })
  it('rejects shape x dtype that disagrees with the byte span', async () => {
    await expectCode(
      await crafted('sz.safetensors', { x: t('F16', [3], 0, 8) }, 8),
      'size-mismatch',
      /6 bytes/,
    )
  })
  it('reports a truncated download (contiguous tensors beyond the end)', async () => {
    const file = path.join(dir, 'cut.safetensors')
    await writeSafetensors(file, { a: { dtype: 'F32', shape: [4], data: new Float32Array(4) } })
    await truncate(file, (await readHeader(file)).size - 3)
    await expectCode(file, 'truncated', /incomplete/)
  })
})

describe('round trip', () => {
  it('writes and reads every dtype, metadata and empty tensors', async () => {
    const file = path.join(dir, 'rt.safetensors')
    const f32 = Float32Array.from([1, -2.5, 3.25, 1e-3, 65504, 0])
    const f64 = Float64Array.from([Math.PI, -1])
    const i64 = BigInt64Array.from([-3n, 1n << 40n])
    const i32 = Int32Array.from([7, -8, 9])
    const u8 = Uint8Array.from([0, 255])
    const bools = Uint8Array.from([1, 0, 1])
    await writeSafetensors(
      file,
      {
        f16: { dtype: 'F16', shape: [2, 3], data: f32ToF16(f32) },
        bf16: { dtype: 'BF16', shape: [1], data: Uint16Array.from([0x3fc0]) },
        f32: { dtype: 'F32', shape: [6], data: f32 },
        f64: { dtype: 'F64', shape: [2], data: f64 },
        i64: { dtype: 'I64', shape: [2], data: i64 },
        i32: { dtype: 'I32', shape: [3, 1], data: i32 },
        u8: { dtype: 'U8', shape: [2], data: u8 },
        b: { dtype: 'BOOL', shape: [3], data: bools },
        empty: { dtype: 'F32', shape: [0, 5], data: new Float32Array(0) },
      },
      { format: 'pt', note: 'héllo' },
    )
    const st = await SafetensorsFile.open(file)
    try {
      expect(st.metadata).toEqual({ format: 'pt', note: 'héllo' })
      expect(st.dataStart % 8).toBe(0)
      expect(st.keys()).toHaveLength(9)
      expect(st.has('f16')).toBe(true)
      expect(st.info('i32')).toMatchObject({ dtype: 'I32', shape: [3, 1], end: st.info('i32').begin + 12 })
      expect([...(await st.readFloat32('f16'))]).toEqual([1, -2.5, 3.25, 1049 * 2 ** -20, 65504, 0])
      expect([...(await st.readFloat32('bf16'))]).toEqual([1.5])
      expect([...(await st.readFloat32('f32'))]).toEqual([...f32])
      expect([...(await st.readFloat32('f64'))]).toEqual([Math.fround(Math.PI), -1])
      expect([...(await st.readFloat32('i64'))]).toEqual([-3, 2 ** 40])
      expect([...(await st.readFloat32('i32'))]).toEqual([7, -8, 9])
      expect([...(await st.readRaw('u8'))]).toEqual([0, 255])
      expect([...(await st.readFloat32('b'))]).toEqual([1, 0, 1])
      expect(await st.readTyped('i64')).toEqual(i64)
      expect((await st.readRaw('empty')).byteLength).toBe(0)
      expect(() => st.info('nope')).toThrow(/no tensor named "nope"/)
    } finally {
      await st.close()
    }
    await expect(st.readRaw('f32')).rejects.toMatchObject({ code: 'closed' })
  })
  it('refuses data whose size disagrees with the shape', async () => {
    const file = path.join(dir, 'bad-w.safetensors')
    await expect(
      writeSafetensors(file, { x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }),
    ).rejects.toMatchObject({ code: 'size-mismatch' })
  })
})

describe('half conversions', () => {
  it('f16 -> f32 covers zeros, subnormals, normals, inf, nan', () => {
    const bits = Uint16Array.from([
      0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xc000, 0x7bff, 0x7c00, 0xfc00, 0x7e00,
    ])
    const f = f16ToF32(bits)
    expect([...f.slice(0, 10)]).toEqual([
      0,
      -0,
      2 ** -24,
      1023 * 2 ** -24,
      2 ** -14,
      1,
      -2,
      65504,
      Infinity,
      -Infinity,
    ])
    expect(Number.isNaN(f[10])).toBe(true)
  })
  it('f32 -> f16 rounds to nearest even and round-trips every finite half', () => {
    const all = new Uint16Array(65536)
    for (let i = 0; i < 65536; i++) all[i] = i
    const back = f32ToF16(f16ToF32(all))
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0
      if (!isNaN && back[i] !== i)
        throw new Error(`half ${i.toString(16)} came back as ${back[i]!.toString(16)}`)
    }
    const x = Float32Array.from([
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
      65520,
      65519,
      2 ** -25,
      2 ** -25 * 1.5,
      1e-10,
      NaN,
    ])
    expect([...f32ToF16(x)]).toEqual([0x3c00, 0x3c02, 0x7c00, 0x7bff, 0x0000, 0x0001, 0x0000, 0x7e00])
  })
  it('bf16 -> f32 shifts the bits', () => {
    expect([...bf16ToF32(Uint16Array.from([0x3f80, 0xc040, 0x0000]))]).toEqual([1, -3, 0])
  })
})

describe.skipIf(!haveOracle)('oracle checkpoint', () => {
  it('reads tiny-sd15.safetensors header and tensors', async () => {
    const st = await SafetensorsFile.open(tinySd15)
    try {
      expect(st.dataStart).toBe(125216)
      expect(st.tensors.size).toBe(964)
      expect(st.metadata).toEqual({ format: 'pt' })
      const name = 'cond_stage_model.transformer.text_model.embeddings.position_embedding.weight'
      expect(st.info(name)).toMatchObject({
        dtype: 'F16',
        shape: [77, 64],
        begin: 125216,
        end: 125216 + 9856,
      })
      const v = await st.readFloat32(name)
      expect(v.length).toBe(77 * 64)
      expect([...v.slice(0, 4)]).toEqual([
        0.0191802978515625, -0.01120758056640625, 0.01351165771484375, 0.0235595703125,
      ])
      expect(v.reduce((s, x) => s + x, 0)).toBeCloseTo(0.18399089574813843, 5)
      expect(st.info('model.diffusion_model.input_blocks.0.0.weight').shape).toEqual([32, 4, 3, 3])
    } finally {
      await st.close()
    }
  })
})
