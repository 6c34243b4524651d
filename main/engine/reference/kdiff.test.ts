import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../cli/index'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import { strippedCopy } from './test-support'
import { compareTensors, toleranceFor } from './tolerance'

// The k-diffusion / A1111 / ComfyUI sampling set; its model is ../oracle/tiny-sd15.safetensors.
const SET = path.resolve(repoRoot(), '../shared/oracle-kdiff')
const SIBLING = path.resolve(repoRoot(), '../shared/oracle')
const present = fs.existsSync(path.join(SET, 'manifest.json')) && fs.existsSync(SIBLING)
if (!present) console.warn(`skipping oracle-kdiff reference test: ${SET} (or ${SIBLING}) is absent`)

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-kdiff-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

async function read(st: SafetensorsFile, name: string): Promise<ArrayLike<number> | BigInt64Array> {
  const dt = st.info(name).dtype
  if (dt === 'I64' || dt === 'U8') return (await st.readTyped(name)) as BigInt64Array | Uint8Array
  return st.readFloat32(name)
}

describe.skipIf(!present)('atelier reference on the oracle-kdiff set', () => {
  it('runs every case from a copy without expected tensors, and every output is within tolerance', async () => {
    const copy = path.join(tmp, 'oracle-kdiff')
    // The set names its model by a path relative to its folder (../oracle/...): keep that sibling.
    fs.symlinkSync(SIBLING, path.join(tmp, path.basename(SIBLING)))
    const m = await strippedCopy(SET, copy)
    const out = path.join(tmp, 'out')
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
    const report: string[] = []
    for (const c of m.cases) {
      const mine = await SafetensorsFile.open(path.join(out, `${c.name}.safetensors`))
      const gold = await SafetensorsFile.open(path.join(SET, c.file))
      for (const e of c.expected) {
        expect(mine.has(e), `${c.name}/${e} written`).toBe(true)
        const tol = toleranceFor(c, e, c.tensors[e]?.dtype.toUpperCase())
        const cmp = compareTensors(
          (await read(mine, e)) as Float32Array,
          (await read(gold, e)) as Float32Array,
          tol,
          { actual: mine.info(e).shape, expected: gold.info(e).shape },
        )
        if (e === 'final_latents')
          report.push(
            `${c.name}: final_latents max ${cmp.maxAbs.toExponential(2)} (atol ${tol.exact ? 0 : tol.atol})`,
          )
        expect(cmp.pass, `${c.name}/${e} max ${cmp.maxAbs}`).toBe(true)
      }
      await mine.close()
      await gold.close()
    }
    console.log(report.join('\n'))
    expect(m.cases.length).toBeGreaterThan(20)
  }, 600_000)
})
