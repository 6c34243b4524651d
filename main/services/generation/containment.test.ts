import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readHeader } from '../../model-formats/safetensors'
import { createResolvers } from './resolve'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-contain-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))
const lib = path.join(tmp, 'library')
const outside = path.join(tmp, 'outside')
fs.mkdirSync(path.join(lib, 'loras'), { recursive: true })
fs.mkdirSync(outside)
const secret = path.join(outside, 'shadow')
fs.writeFileSync(secret, 'root:$6$saltsalt$hashhashhash:19000:0:99999:7:::\n')
fs.writeFileSync(path.join(lib, 'loras', 'style.safetensors'), 'x')
fs.writeFileSync(path.join(outside, 'model.safetensors'), 'x')
fs.symlinkSync(secret, path.join(lib, 'loras', 'link.safetensors'))

async function message(f: () => unknown): Promise<string> {
  try {
    await f()
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
  return 'no error'
}

describe('paths from prompts and requests stay in the library (attacks 8, 11)', () => {
  it('a <lora:/path:1> tag never leaves the library, even in the CLI', async () => {
    for (const allowPaths of [false, true]) {
      const r = createResolvers({ roots: [lib], allowPaths })
      expect(await message(() => r.lora(secret, 'prompt'))).toMatch(/LoRA ".*shadow" was not found/)
      expect(await message(() => r.lora(path.join(lib, 'loras', 'link.safetensors'), 'prompt'))).toMatch(
        /not found/,
      )
      expect((await r.lora('style', 'prompt')).path).toBe(path.join(lib, 'loras', 'style.safetensors'))
      expect((await r.lora(path.join(lib, 'loras', 'style.safetensors'), 'prompt')).name).toBe('style')
    }
  })

  it('requests over IPC / WebSocket name files inside the library only; the CLI may name any file', async () => {
    const ws = createResolvers({ roots: [lib], allowPaths: false })
    expect(await message(() => ws.model(path.join(outside, 'model.safetensors')))).toMatch(/was not found/)
    expect(await message(() => ws.lora(secret))).toMatch(/not found/)
    expect(await message(() => ws.upscaler?.(secret))).toMatch(/not found/)
    expect(await message(() => ws.ipAdapter?.(secret))).toMatch(/not found/)
    const cli = createResolvers({ roots: [lib], allowPaths: true })
    expect((await cli.model(path.join(outside, 'model.safetensors'))).name).toBe('model')
  })

  it('a file that is not a model is never echoed in the error (safetensors header length, JSON)', async () => {
    const m = await message(() => readHeader(secret))
    expect(m).toMatch(/not a safetensors file/)
    // "root:$6$" read as a little-endian u64 is 2676326155254509426: neither it nor the text may appear
    expect(m).not.toMatch(/\d{12,}/)
    expect(m).not.toMatch(/root|salt|hash/)
    const json = path.join(outside, 'json.safetensors')
    const body = Buffer.from('root:x:0:0:secret')
    const len = Buffer.alloc(8)
    len.writeBigUInt64LE(BigInt(body.length))
    fs.writeFileSync(json, Buffer.concat([len, body]))
    const j = await message(() => readHeader(json))
    expect(j).toMatch(/header is not valid JSON/)
    expect(j).not.toMatch(/root|secret/)
  })
})
