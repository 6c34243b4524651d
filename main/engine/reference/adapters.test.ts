import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../cli/index'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import { loadManifest } from './manifest'
import { runReference } from './run'
import { strippedCopy } from './test-support'
import { compareTensors, toleranceFor } from './tolerance'

/** The LyCORIS / DoRA / full-diff cases of ../shared/oracle-addons (A1111 and LyCORIS goldens). */

const SHARED = path.resolve(repoRoot(), '../shared')
const SET = path.join(SHARED, 'oracle-addons')
const present = fs.existsSync(path.join(SET, 'manifest.json')) && fs.existsSync(path.join(SHARED, 'oracle'))
if (!present) console.warn(`skipping LyCORIS reference tests: ${SET} or its sibling oracle/ is absent`)

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-adapters-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe.skipIf(!present)('atelier reference on oracle-addons adapter cases', () => {
  const cases = present
    ? loadManifest(path.join(SET, 'manifest.json'))
        .cases.map((c) => c.name)
        .filter((n) => n.startsWith('adapter_'))
    : []

  it('passes every adapter case (LoCon, Tucker, LoHa, LoKr, DoRA both axes, full diff)', async () => {
    expect(cases.length).toBeGreaterThanOrEqual(9)
    const results = await runReference(path.join(SET, 'manifest.json'), {
      out: path.join(tmp, 'out-full'),
      cases,
      cacheRoot: path.join(tmp, 'cache'),
      session: { preference: 'cpu' },
    })
    for (const r of results) {
      expect(r.status, `${r.name}: ${r.message ?? ''}`).toBe('pass')
      expect(r.checks.length, r.name).toBeGreaterThan(0)
      for (const k of r.checks) expect(k.comparison?.pass, `${r.name}/${k.name}`).toBe(true)
    }
    expect(results.map((r) => r.name)).toEqual(cases)
  }, 600_000)

  it('runs from a copy without expected tensors, and its outputs match the goldens', async () => {
    // The cases name the checkpoint as ../oracle/…: the copy gets a sibling oracle/ like the shared folder.
    const root = path.join(tmp, 'sets')
    fs.mkdirSync(root)
    fs.symlinkSync(path.join(SHARED, 'oracle'), path.join(root, 'oracle'))
    const copy = path.join(root, 'oracle-addons')
    const m = await strippedCopy(SET, copy)
    const out = path.join(tmp, 'out-stripped')
    const code = await runCli([
      'reference',
      path.join(copy, 'manifest.json'),
      '--out',
      out,
      '--cache',
      path.join(tmp, 'cache'),
      '--quiet',
      ...cases.flatMap((c) => ['--case', c]),
    ])
    expect(code).toBe(0)
    for (const c of m.cases.filter((x) => cases.includes(x.name))) {
      const mine = await SafetensorsFile.open(path.join(out, `${c.name}.safetensors`))
      const gold = await SafetensorsFile.open(path.join(SET, c.file))
      for (const e of c.expected) {
        expect(mine.has(e), `${c.name}/${e} written`).toBe(true)
        const cmp = compareTensors(
          await mine.readFloat32(e),
          await gold.readFloat32(e),
          toleranceFor(c, e, c.tensors[e]?.dtype.toUpperCase()),
          { actual: mine.info(e).shape, expected: gold.info(e).shape },
        )
        expect(cmp.pass, `${c.name}/${e} max ${cmp.maxAbs}`).toBe(true)
      }
      await mine.close()
      await gold.close()
    }
  }, 600_000)
})
