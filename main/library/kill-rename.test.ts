import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Library } from './library'
import { leftoverOf, RENAME_JOURNAL } from './recover'
import { tempDir, tinyLora } from './test-support'

let home: string
beforeAll(async () => {
  home = await tempDir('atelier-kill-rename-')
  const lora = await tinyLora(path.join(home, 'models', 'loras', 'alpha.safetensors'), 'sd-1', { seed: 7 })
  const stem = lora.replace(/\.safetensors$/, '')
  fs.writeFileSync(
    `${stem}.civitai.info`,
    JSON.stringify({ id: 11, modelId: 22, name: 'v1', baseModel: 'SD 1.5' }),
  )
  fs.writeFileSync(
    `${stem}.json`,
    JSON.stringify({ 'activation text': 'tinystyle', 'preferred weight': 0.7 }),
  )
  fs.writeFileSync(`${stem}.preview.png`, 'PNG')
})
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))

/** Deterministic delays (xorshift32). */
function delays(seed: number, n: number): number[] {
  let s = seed
  return Array.from({ length: n }, () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return 5 + (s % 120)
  })
}

const ROUNDS = Number(process.env.ATELIER_KILL_ROUNDS ?? 6)

it(`kill -9 during renames never loses a sidecar and leaves no leftovers (${ROUNDS} rounds)`, async () => {
  const dir = path.join(home, 'models', 'loras')
  for (const wait of delays(18, ROUNDS)) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, 'kill-rename.child.ts'), home],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<string | number | null>((resolve) =>
      child.on('exit', (c, s) => resolve(s ?? c)),
    )
    for await (const line of createInterface({ input: child.stdout })) if (line === 'ready') break
    await new Promise((r) => setTimeout(r, wait))
    child.kill('SIGKILL')
    expect(await exited, stderr).toBe('SIGKILL')

    const lib = await Library.open(home)
    await lib.scan()
    const loras = lib.list().filter((r) => r.type === 'lora')
    expect(loras).toHaveLength(1)
    const r = loras[0]
    expect(['alpha', 'beta']).toContain(r?.name)
    // every sidecar is beside the model, under its name, with its content
    const stem = path.join(dir, r?.name ?? '')
    expect(JSON.parse(fs.readFileSync(`${stem}.civitai.info`, 'utf8'))).toMatchObject({ id: 11, modelId: 22 })
    expect(JSON.parse(fs.readFileSync(`${stem}.json`, 'utf8'))).toMatchObject({
      'activation text': 'tinystyle',
    })
    expect(fs.readFileSync(`${stem}.preview.png`, 'utf8')).toBe('PNG')
    expect(r?.civitai).toMatchObject({ versionId: 11, modelId: 22 })
    expect(fs.readdirSync(dir).filter((n) => leftoverOf(n))).toEqual([])
    expect(fs.readdirSync(dir).filter((n) => !n.startsWith(r?.name ?? ''))).toEqual([])
    expect(fs.existsSync(path.join(home, RENAME_JOURNAL))).toBe(false)
  }
})

it('start-up puts back a complete .tmp copy of a sidecar and removes an unfinished one', async () => {
  const dir = path.join(home, 'models', 'loras')
  const lib0 = await Library.open(home)
  await lib0.scan()
  const name = lib0.list()[0]?.name ?? ''
  const info = path.join(dir, `${name}.civitai.info`)
  const saved = fs.readFileSync(info, 'utf8')
  // a crash after the copy was written, before the rename (dead pid 2^22 + 1)
  fs.rmSync(info)
  fs.writeFileSync(path.join(dir, `.${name}.civitai.info.4194305.0badc0de.tmp`), saved)
  // a crash in the middle of writing another copy
  fs.writeFileSync(path.join(dir, `.${name}.json.4194305.deadbeef.tmp`), '{"activation text": "tiny')
  fs.writeFileSync(path.join(home, '.library.json.4194305.00000000.tmp'), '{"half')
  const lib = await Library.open(home)
  expect(fs.existsSync(path.join(home, '.library.json.4194305.00000000.tmp'))).toBe(false)
  await lib.scan()
  expect(fs.readFileSync(info, 'utf8')).toBe(saved)
  expect(JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8'))).toMatchObject({
    'activation text': 'tinystyle',
  })
  expect(fs.readdirSync(dir).filter((n) => leftoverOf(n))).toEqual([])
  expect(lib.list()[0]?.civitai).toMatchObject({ versionId: 11 })
})
