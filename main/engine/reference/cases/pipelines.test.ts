/**
 * The scheduler and pipeline cases of the oracle through the reference runner (the real pipelines with
 * recorded noise and the given prompt embeddings), each expected tensor within the manifest tolerance.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../../platform/paths'
import type { CaseResult } from '../run'
import { runReference } from '../run'

const manifest = path.resolve(repoRoot(), '../shared/oracle/manifest.json')
const HAVE = fs.existsSync(manifest)
if (!HAVE) console.warn(`pipeline reference cases skipped: ${manifest} not found (../shared is absent)`)

const CASES = ['schedulers', 'img2img_euler', 'img2img_ddim', 'inpaint_legacy_ddim', 'inpaint_9ch_ddim']

describe.skipIf(!HAVE)('reference cases: schedulers, img2img, inpaint', () => {
  const tmp = HAVE ? fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ref-pipelines-')) : ''
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

  let results: CaseResult[] = []
  it('runs every case', async () => {
    results = await runReference(manifest, {
      out: path.join(tmp, 'out'),
      cacheRoot: path.join(tmp, 'cache'),
      cases: CASES,
      session: { preference: 'cpu' },
    })
    expect(results.map((r) => r.name)).toEqual(CASES)
  })

  for (const name of CASES) {
    it(`${name} passes within the manifest tolerance`, () => {
      const r = results.find((x) => x.name === name)
      expect(r?.message ?? '').toBe('')
      expect(r?.status).toBe('pass')
      for (const k of r?.checks ?? []) {
        expect(k.missing ?? false, `${name}.${k.name} produced`).toBe(false)
        expect(k.comparison?.pass, `${name}.${k.name} max |diff| ${k.comparison?.maxAbs}`).toBe(true)
      }
    })
  }
})
