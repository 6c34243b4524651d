import fs from 'node:fs'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { CivitaiFixtureServer, makeFixtureModels } from '../../../e2e/fixtures/remote'
import { cliRun, envScope, type CliRun } from '../testing'
import { tempDir, tinyCheckpoint, tinyLora } from '../../library/test-support'

/** Runs `atelier library …` in-process with ATELIER_HOME set. */
async function cli(home: string, ...args: string[]): Promise<CliRun> {
  const env = envScope()
  env.set('ATELIER_HOME', home)
  try {
    return await cliRun(['library', ...args])
  } finally {
    env.restore()
  }
}

let home: string
beforeEach(async () => {
  home = await tempDir('atelier-cli-lib-')
})
afterEach(async () => {
  await fs.promises.rm(home, { recursive: true, force: true })
})

describe('atelier library', () => {
  it('scan, list --json, rename, rm and doctor', async () => {
    const models = path.join(home, 'models')
    await tinyCheckpoint(path.join(models, 'checkpoints', 'base.safetensors'), 'sd-1', { seed: 1 })
    await tinyLora(path.join(models, 'loras', 'style.safetensors'), 'sdxl', { seed: 2 })
    const webui = path.join(home, 'webui')
    await tinyLora(path.join(webui, 'models', 'Lora', 'inplace.safetensors'), 'sd-1', { seed: 3 })

    const scan = await cli(home, 'scan', webui)
    expect(scan.code).toBe(0)
    expect(scan.err).toContain('a1111 layout')
    expect(scan.out).toMatch(/^3 models \(3 new, 0 gone\); hashed 3, unchanged 0; \d+ ms\n$/)
    expect((await cli(home, 'scan')).out).toMatch(/hashed 0, unchanged 3/)

    const list = await cli(home, 'list', '--json')
    const rows = JSON.parse(list.out) as Array<Record<string, unknown>>
    expect(rows.map((r) => [r.name, r.type, r.family])).toEqual([
      ['base', 'checkpoint', 'sd-1'],
      ['inplace', 'lora', 'sd-1'],
      ['style', 'lora', 'sdxl'],
    ])
    for (const r of rows) {
      expect(r.sha256).toMatch(/^[0-9a-f]{64}$/)
      expect(fs.existsSync(String(r.path))).toBe(true)
    }
    const loras = JSON.parse(
      (await cli(home, 'list', '--json', '--type', 'loras', '--family', 'sdxl')).out,
    ) as unknown[]
    expect(loras).toHaveLength(1)
    expect((await cli(home, 'list', '--type', 'unicorn')).err).toMatch(/unknown type "unicorn"/)
    const table = (await cli(home, 'list')).out
    expect(table.split('\n')[0]).toMatch(/^TYPE\s+NAME\s+BASE\s+SIZE\s+SOURCE\s+HASH\s+ID$/)
    expect(table).toMatch(/lora\s+style\s+sdxl\s+/)

    const ren = await cli(home, 'rename', 'style', 'style v2')
    expect(ren.out).toBe('Renamed style.safetensors to style v2.safetensors\n')
    expect(fs.existsSync(path.join(models, 'loras', 'style v2.safetensors'))).toBe(true)

    const rm = await cli(home, 'rm', 'inplace', '--trash')
    expect(rm.code).toBe(0)
    expect(rm.out).toMatch(/^Moved inplace\.safetensors to .*trash/)
    expect(fs.existsSync(path.join(webui, 'models', 'Lora', 'inplace.safetensors'))).toBe(false)
    expect((await cli(home, 'rm', 'nothing-like-this')).err).toMatch(
      /No model named or with id "nothing-like-this"/,
    )

    expect(await cli(home, 'doctor')).toMatchObject({ code: 0, out: 'All 2 models look fine.\n' })
    fs.rmSync(path.join(models, 'checkpoints', 'base.safetensors'))
    const doc = await cli(home, 'doctor', '--json')
    expect(doc.code).toBe(1)
    const report = JSON.parse(doc.out) as { ok: boolean; issues: Array<{ kind: string; name: string }> }
    expect(report.ok).toBe(false)
    expect(report.issues.map((i) => `${i.kind}:${i.name}`)).toEqual(['missing:base'])
  })
})

describe('atelier library match (Civitai fixture)', () => {
  let server: CivitaiFixtureServer
  let fixtureDir: string
  beforeAll(async () => {
    fixtureDir = await tempDir('atelier-cli-civ-')
    server = new CivitaiFixtureServer({ models: await makeFixtureModels(fixtureDir) })
    await server.start()
  })
  afterAll(async () => {
    await server.close()
    await fs.promises.rm(fixtureDir, { recursive: true, force: true })
  })

  it('identifies a local copy of a Civitai file by hash', async () => {
    const src = path.join(fixtureDir, 'tinyStyleLora_v1.safetensors')
    const dst = path.join(home, 'models', 'loras', 'renamed-by-me.safetensors')
    fs.mkdirSync(path.dirname(dst), { recursive: true })
    fs.copyFileSync(src, dst)
    await tinyLora(path.join(home, 'models', 'loras', 'unknown.safetensors'), 'sd-1', { seed: 9 })
    expect((await cli(home, 'scan')).code).toBe(0)
    const m = await cli(home, 'match', '--civitai-url', server.url, '--json')
    expect(m.err).toBe('')
    expect(JSON.parse(m.out)).toMatchObject({ looked: 2, matched: 1 })
    const rows = JSON.parse((await cli(home, 'list', '--json', '--source', 'civitai')).out) as Array<
      Record<string, unknown>
    >
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ name: 'renamed-by-me', verified: 'verified', source: 'civitai' })
    expect(fs.existsSync(dst.replace(/\.safetensors$/, '.civitai.info'))).toBe(true)
    expect(server.log.some((r) => r.method === 'POST' && r.url === '/api/v1/model-versions/by-hash')).toBe(
      true,
    )
  })
})
