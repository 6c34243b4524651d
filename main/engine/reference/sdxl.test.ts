/**
 * `atelier reference` on the SDXL golden set: every case (tokenizer, text_encoders, unet with its LoRA and
 * odd size, vae_encode, vae_decode, schedulers, img2img_euler) passes, also from a copy whose expected and
 * trace tensors are removed (the outputs are then compared here).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../cli/index'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { strippedCopy } from './test-support'
import { repoRoot } from '../../platform/paths'
import { loadManifest } from './manifest'
import { runReference } from './run'
import { compareTensors, toleranceFor } from './tolerance'

const SDXL = path.resolve(repoRoot(), '../shared/oracle-sdxl')
const present = fs.existsSync(path.join(SDXL, 'manifest.json'))
if (!present) console.warn(`skipping SDXL reference tests: ${SDXL} is absent`)

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ref-sdxl-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe.skipIf(!present)('atelier reference on the SDXL set', () => {
  it('passes every case, every expected tensor within tolerance', async () => {
    const m = loadManifest(path.join(SDXL, 'manifest.json'))
    const results = await runReference(m.path, {
      out: path.join(tmp, 'out-full'),
      cacheRoot: path.join(tmp, 'cache'),
      session: { preference: 'cpu' },
    })
    expect(results.map((r) => r.name)).toEqual(m.cases.map((c) => c.name))
    for (const r of results) {
      expect(r.status, `${r.name}: ${r.message ?? ''}`).toBe('pass')
      const c = m.cases.find((x) => x.name === r.name)
      expect(r.checks.map((k) => k.name).sort(), r.name).toEqual([...(c?.expected ?? [])].sort())
      for (const k of r.checks) expect(k.comparison?.pass, `${r.name}/${k.name}`).toBe(true)
    }
  })

  it('runs from a copy with the expected and trace tensors removed', async () => {
    const copy = path.join(tmp, 'stripped')
    const m = await strippedCopy(SDXL, copy)
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
      const gold = await SafetensorsFile.open(path.join(SDXL, c.file))
      for (const e of c.expected) {
        expect(mine.has(e), `${c.name}/${e} written`).toBe(true)
        const tol = toleranceFor(c, e, c.tensors[e]?.dtype.toUpperCase())
        const a = mine.info(e).dtype === 'I64' ? await mine.readTyped(e) : await mine.readFloat32(e)
        const b = gold.info(e).dtype === 'I64' ? await gold.readTyped(e) : await gold.readFloat32(e)
        const cmp = compareTensors(a as Float32Array, b as Float32Array, tol, {
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
