import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../cli/index'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { strippedCopy } from './test-support'
import { repoRoot } from '../../platform/paths'
import { parsePythonJson } from './manifest'
import { runReference } from './run'
import { compareTensors, toleranceFor } from './tolerance'

const ORACLE = path.resolve(repoRoot(), '../shared/oracle')
const present = fs.existsSync(path.join(ORACLE, 'manifest.json'))
if (!present) console.warn(`skipping reference tests: ${ORACLE} is absent`)

const MINE = ['tokenizer', 'text_encoder', 'vae_encode', 'vae_decode']

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ref-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe('manifest parsing', () => {
  it('reads Python JSON (bare -Infinity / NaN) without touching strings', () => {
    const v = parsePythonJson('{"a": -Infinity, "b": "x NaN \\" Infinity", "c": [NaN, Infinity]}') as {
      a: number
      b: string
      c: (number | null)[]
    }
    expect(v.a).toBe(-Infinity)
    expect(v.b).toBe('x NaN " Infinity')
    expect(v.c).toEqual([null, Infinity])
  })

  it('applies the README tolerance rules', () => {
    const c = loadManifestCase({
      tolerance: { atol: 1e-4, rtol: 1e-4, final_latents: { atol: 0.01, rtol: 1e-3 } },
    })
    expect(toleranceFor(c, 'last_hidden_state')).toEqual({ atol: 1e-4, rtol: 1e-4 })
    expect(toleranceFor(c, 'final_latents')).toEqual({ atol: 0.01, rtol: 1e-3 })
    expect(toleranceFor(c, 'step_latents')).toEqual({ atol: 0.01, rtol: 1e-3 })
    expect(toleranceFor(c, 'img2img_timesteps')).toEqual({ atol: 1e-3, rtol: 0 })
    expect(toleranceFor(c, 'ids', 'INT64')).toEqual({ exact: true })
    expect(compareTensors([1, Number.NaN], [1, 2], { atol: 1, rtol: 0 }).pass).toBe(false)
  })
})

function loadManifestCase(extra: Record<string, unknown>): Parameters<typeof toleranceFor>[0] {
  return {
    name: 'x',
    file: 'x.safetensors',
    tensors: {},
    given: [],
    expected: [],
    trace: [],
    tolerance: {},
    ...extra,
  } as Parameters<typeof toleranceFor>[0]
}

describe.skipIf(!present)('atelier reference on the oracle set', () => {
  it('passes every case this engine owns, within tolerance', async () => {
    const results = await runReference(path.join(ORACLE, 'manifest.json'), {
      out: path.join(tmp, 'out-full'),
      cases: MINE,
      cacheRoot: path.join(tmp, 'cache'),
      session: { preference: 'cpu' },
    })
    for (const r of results) {
      expect(r.status, `${r.name}: ${r.message ?? ''}`).toBe('pass')
      for (const k of r.checks) expect(k.comparison?.pass, `${r.name}/${k.name}`).toBe(true)
    }
    expect(results.map((r) => r.name)).toEqual(MINE)
  })

  it('works on a copy with expected and trace tensors removed, and the outputs match the goldens', async () => {
    const copy = path.join(tmp, 'stripped')
    const m = await strippedCopy(ORACLE, copy)

    const out = path.join(tmp, 'out-stripped')
    const code = await runCli([
      'reference',
      path.join(copy, 'manifest.json'),
      '--out',
      out,
      '--cache',
      path.join(tmp, 'cache'),
      '--quiet',
      ...MINE.flatMap((c) => ['--case', c]),
    ])
    expect(code).toBe(0)

    for (const c of m.cases.filter((x) => MINE.includes(x.name))) {
      const mine = await SafetensorsFile.open(path.join(out, `${c.name}.safetensors`))
      const gold = await SafetensorsFile.open(path.join(ORACLE, c.file))
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

  it('exits nonzero and names the problem for an unknown case', async () => {
    const code = await runCli([
      'reference',
      path.join(ORACLE, 'manifest.json'),
      '--out',
      path.join(tmp, 'x'),
      '--case',
      'nope',
    ])
    expect(code).toBe(1)
  })
})
