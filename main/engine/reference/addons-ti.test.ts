/**
 * `atelier reference` on the textual-inversion cases of the add-on set (ti_files, ti_prompts, ti_chunk_quirk):
 * every expected tensor within tolerance, also from a copy whose expected and trace tensors are removed (its
 * outputs are then compared here). The set's checkpoint is its sibling `../oracle/tiny-sd15.safetensors`.
 */
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

const SHARED = path.resolve(repoRoot(), '../shared')
const ADDONS = path.join(SHARED, 'oracle-addons')
const present =
  fs.existsSync(path.join(ADDONS, 'manifest.json')) &&
  fs.existsSync(path.join(SHARED, 'oracle', 'tiny-sd15.safetensors'))
if (!present)
  console.warn(`skipping textual-inversion reference tests: ${ADDONS} or its sibling oracle/ is absent`)

const CASES = ['ti_files', 'ti_prompts', 'ti_chunk_quirk']

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ref-ti-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe.skipIf(!present)('atelier reference: textual-inversion cases of the add-on set', () => {
  it('passes every ti_* case, every expected tensor', async () => {
    const m = loadManifest(path.join(ADDONS, 'manifest.json'))
    const results = await runReference(m.path, {
      out: path.join(tmp, 'out-full'),
      cases: CASES,
      cacheRoot: path.join(tmp, 'cache'),
      session: { preference: 'cpu' },
    })
    expect(results.map((r) => r.name)).toEqual(CASES)
    for (const r of results) {
      expect(r.status, `${r.name}: ${r.message ?? ''}`).toBe('pass')
      const c = m.cases.find((x) => x.name === r.name)
      expect(r.checks.map((k) => k.name).sort(), r.name).toEqual([...(c?.expected ?? [])].sort())
    }
  })

  it('runs from a stripped copy; its outputs match the originals', async () => {
    const root = path.join(tmp, 'shared-copy')
    fs.mkdirSync(root)
    fs.symlinkSync(path.join(SHARED, 'oracle'), path.join(root, 'oracle'))
    const copy = path.join(root, 'oracle-addons')
    const m = await strippedCopy(ADDONS, copy)
    const out = path.join(tmp, 'out-stripped')
    const args = [
      'reference',
      path.join(copy, 'manifest.json'),
      '--out',
      out,
      '--cache',
      path.join(tmp, 'cache'),
    ]
    const code = await runCli([...args, '--quiet', ...CASES.flatMap((c) => ['--case', c])])
    expect(code).toBe(0)
    for (const name of CASES) {
      const c = m.cases.find((x) => x.name === name)
      if (!c) throw new Error(`no case ${name}`)
      const mine = await SafetensorsFile.open(path.join(out, `${name}.safetensors`))
      const ref = await SafetensorsFile.open(path.join(ADDONS, c.file))
      try {
        for (const t of c.expected) {
          const tol = toleranceFor(c, t, c.tensors[t]?.dtype.toUpperCase())
          const a = mine.info(t).dtype === 'I64' ? await mine.readTyped(t) : await mine.readFloat32(t)
          const b = ref.info(t).dtype === 'I64' ? await ref.readTyped(t) : await ref.readFloat32(t)
          expect(compareTensors(a as Float32Array, b as Float32Array, tol).pass, `${name}/${t}`).toBe(true)
        }
      } finally {
        await mine.close()
        await ref.close()
      }
    }
  })
})
