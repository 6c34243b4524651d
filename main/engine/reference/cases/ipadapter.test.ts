import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../../cli/index'
import { SafetensorsFile, writeSafetensors } from '../../../model-formats/safetensors'
import type { TensorToWrite } from '../../../model-formats/safetensors'
import { repoRoot } from '../../../platform/paths'
import { loadManifest } from '../manifest'
import { runReference } from '../run'
import { compareTensors, toleranceFor } from '../tolerance'
import { scaleOfName } from './ipadapter'

const SET = path.resolve(repoRoot(), '../shared/oracle-ipadapter')
const present =
  fs.existsSync(path.join(SET, 'manifest.json')) &&
  fs.existsSync(path.resolve(repoRoot(), '../shared/oracle/tiny-sd15.safetensors'))
if (!present) console.warn(`skipping the IP-Adapter reference cases: ${SET} (or ../shared/oracle) is absent`)

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ref-ip-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe('IP-Adapter case helpers', () => {
  it('reads the scale out of eps_scale_* names', () => {
    expect(scaleOfName('eps_scale_1_0')).toBe(1)
    expect(scaleOfName('eps_scale_0_5')).toBe(0.5)
    expect(scaleOfName('eps_scale_0_25')).toBe(0.25)
    expect(scaleOfName('eps_scale_0_0')).toBe(0)
    expect(scaleOfName('eps_scale_2')).toBe(2)
    expect(scaleOfName('eps_scale_m0_5')).toBe(-0.5)
    expect(scaleOfName('eps_text_only')).toBeUndefined()
  })
})

describe.skipIf(!present)('atelier reference on the IP-Adapter set', () => {
  it('passes every case within its tolerance', async () => {
    const results = await runReference(path.join(SET, 'manifest.json'), {
      out: path.join(tmp, 'out'),
      cacheRoot: path.join(tmp, 'cache'),
      session: { preference: 'cpu' },
    })
    const m = loadManifest(path.join(SET, 'manifest.json'))
    expect(results.map((r) => r.name)).toEqual(m.cases.map((c) => c.name))
    for (const r of results) {
      expect(r.status, `${r.name}: ${r.message ?? ''}`).toBe('pass')
      const def = m.cases.find((c) => c.name === r.name)
      expect(r.checks.map((k) => k.name).sort()).toEqual([...(def?.expected ?? [])].sort())
      for (const k of r.checks)
        expect(k.comparison?.pass, `${r.name}/${k.name} ${k.comparison?.maxAbs}`).toBe(true)
    }
  })

  it('works from a copy with the expected and trace tensors removed (CLI), and its outputs match the goldens', async () => {
    const copy = path.join(tmp, 'stripped')
    fs.mkdirSync(copy)
    const m = loadManifest(path.join(SET, 'manifest.json'))
    fs.copyFileSync(m.path, path.join(copy, 'manifest.json'))
    const caseFiles = new Set(m.cases.map((c) => c.file))
    for (const name of fs.readdirSync(SET))
      if (!caseFiles.has(name) && name !== 'manifest.json')
        fs.symlinkSync(path.join(SET, name), path.join(copy, name))
    // the checkpoint lives in a sibling set, named relative to the manifest
    fs.symlinkSync(path.resolve(SET, '../oracle'), path.join(tmp, 'oracle'))
    for (const c of m.cases) {
      const st = await SafetensorsFile.open(path.join(SET, c.file))
      const keep: Record<string, TensorToWrite> = {}
      for (const g of c.given) {
        const info = st.info(g)
        keep[g] = { dtype: info.dtype, shape: info.shape, data: await st.readRaw(g) }
      }
      await st.close()
      await writeSafetensors(path.join(copy, c.file), keep)
    }
    const out = path.join(tmp, 'out-stripped')
    const code = await runCli([
      'reference',
      path.join(copy, 'manifest.json'),
      '--out',
      out,
      '--cache',
      path.join(tmp, 'cache'),
      '--quiet',
    ])
    expect(code).toBe(0)
    for (const c of m.cases) {
      const mine = await SafetensorsFile.open(path.join(out, `${c.name}.safetensors`))
      const gold = await SafetensorsFile.open(path.join(SET, c.file))
      for (const e of c.expected) {
        expect(mine.has(e), `${c.name}/${e} written`).toBe(true)
        const tol = toleranceFor(c, e, c.tensors[e]?.dtype.toUpperCase())
        const cmp = compareTensors(await mine.readFloat32(e), await gold.readFloat32(e), tol, {
          actual: mine.info(e).shape,
          expected: gold.info(e).shape,
        })
        expect(cmp.pass, `${c.name}/${e} max ${cmp.maxAbs}`).toBe(true)
      }
      await mine.close()
      await gold.close()
    }
  })
})
