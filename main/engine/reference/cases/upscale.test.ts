import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../../platform/paths'
import { loadManifest } from '../manifest'
import { runReference } from '../run'
import { loadUpscalerWeights } from '../../upscale/weights'
import { caseModelFiles, sameWeights } from './upscale'

const SET = path.resolve(repoRoot(), '../shared/oracle-upscale')
const present = fs.existsSync(path.join(SET, 'manifest.json'))
if (!present) console.warn(`skipping upscaler reference tests: ${SET} is absent`)

let tmp = ''
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ref-upscale-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe.skipIf(!present)('atelier reference on the upscaler set', () => {
  it('passes every case (each model and naming, the odd size, pre/mod pad, the tiled case)', async () => {
    const results = await runReference(path.join(SET, 'manifest.json'), {
      out: path.join(tmp, 'out'),
      cacheRoot: path.join(tmp, 'cache'),
      session: { preference: 'cpu' },
    })
    const manifest = JSON.parse(fs.readFileSync(path.join(SET, 'manifest.json'), 'utf8')) as {
      cases: { name: string; expected: string[] }[]
    }
    expect(results.map((r) => r.name)).toEqual(manifest.cases.map((c) => c.name))
    for (const r of results) {
      expect(r.status, `${r.name}: ${r.message ?? ''}`).toBe('pass')
      const c = manifest.cases.find((x) => x.name === r.name)
      expect(r.checks.map((k) => k.name).sort()).toEqual([...(c?.expected ?? [])].sort())
      for (const k of r.checks) expect(k.comparison?.pass, `${r.name}/${k.name}`).toBe(true)
    }
  })

  it('every file of a model (each naming, .pth and .safetensors) holds the same canonical weights', async () => {
    const m = loadManifest(path.join(SET, 'manifest.json'))
    const seen = new Set<string>()
    for (const c of m.cases) {
      const files = caseModelFiles(m, c)
      expect(files.length, c.name).toBeGreaterThan(0)
      const key = [...files].sort().join('|')
      if (seen.has(key)) continue
      seen.add(key)
      const [first, ...rest] = files as [string, ...string[]]
      const w = await loadUpscalerWeights(first)
      for (const f of rest) expect(sameWeights(w, await loadUpscalerWeights(f)), f).toBeNull()
    }
    expect(seen.size).toBe(3)
  })

  it('recognises upscaler cases by their manifest whatever they are called', async () => {
    // A copy of the manifest with unfamiliar case names; the data files are linked, not copied.
    const dir = path.join(tmp, 'renamed')
    fs.mkdirSync(dir)
    for (const f of fs.readdirSync(SET))
      if (f !== 'manifest.json') fs.symlinkSync(path.join(SET, f), path.join(dir, f))
    const m = JSON.parse(fs.readFileSync(path.join(SET, 'manifest.json'), 'utf8')) as {
      cases: { name: string }[]
    }
    m.cases = m.cases.filter((c) => c.name === 'srvgg_x4' || c.name === 'rrdb_x2_realesrganer')
    m.cases.forEach((c, i) => (c.name = `sr_case_${i}`))
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m))
    const results = await runReference(path.join(dir, 'manifest.json'), {
      out: path.join(tmp, 'out-renamed'),
      cacheRoot: path.join(tmp, 'cache'),
      session: { preference: 'cpu' },
    })
    expect(results.map((r) => [r.name, r.status])).toEqual([
      ['sr_case_0', 'pass'],
      ['sr_case_1', 'pass'],
    ])
  })
})
