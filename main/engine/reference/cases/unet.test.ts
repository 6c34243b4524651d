import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../../platform/paths'
import { runReference } from '../run'

const ORACLE = path.resolve(repoRoot(), '../shared/oracle')
const present = fs.existsSync(path.join(ORACLE, 'manifest.json'))
if (!present) console.warn(`skipping the unet reference case: ${ORACLE} is absent`)

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ref-unet-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe.skipIf(!present)('reference case unet', () => {
  it('eps, lora_eps, inpaint_eps and odd_eps pass within the case tolerance', async () => {
    const [r] = await runReference(path.join(ORACLE, 'manifest.json'), {
      out: path.join(tmp, 'out'),
      cases: ['unet'],
      cacheRoot: path.join(tmp, 'cache'),
      session: { preference: 'cpu' },
    })
    expect(r?.status, r?.message).toBe('pass')
    const checked = Object.fromEntries((r?.checks ?? []).map((k) => [k.name, k.comparison?.pass]))
    expect(checked).toEqual({ eps: true, inpaint_eps: true, lora_eps: true, odd_eps: true })
    for (const k of r?.checks ?? []) expect(k.tolerance).toEqual({ atol: 2e-4, rtol: 1e-3 })
  })
})
