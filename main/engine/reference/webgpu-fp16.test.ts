import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../platform/paths'
import { lastJsonLine, runTsxChild } from '../../platform/tsx-child'
import { lavapipeEnv } from '../runtime/software-vulkan'
import { ORACLE_SETS, referenceOnWebGpu } from './webgpu-child'

/**
 * The fp16 GPU graphs (fp16.ts) on a WebGPU adapter that has `shader-f16`: Mesa's lavapipe, a software
 * Vulkan driver (software-vulkan.ts), in child processes. `atelier reference --provider webgpu --precision
 * fp16` must pass every case of every oracle set under the fp16 rule of FP16.md (tensors the fp16 graphs
 * computed) and the fp32 tolerances (everything else: the VAE, upscalers, schedules). Skips with the reason
 * where lavapipe or the sets are absent, or where its adapter does not come up or has no shader-f16.
 */

const SHARED = path.resolve(repoRoot(), '../shared')

const lvp = lavapipeEnv()
const present = ORACLE_SETS.filter((s) => fs.existsSync(path.join(SHARED, s, 'manifest.json')))

/** The adapter's answer to the WebGPU probe (webgpu.ts), asked in a child with lavapipe's environment. */
async function probe(env: NodeJS.ProcessEnv) {
  const script = path.join(repoRoot(), 'main/engine/runtime/webgpu.child.ts')
  const r = await runTsxChild(script, ['probe'], env)
  return (
    lastJsonLine<{ f16?: boolean; f16Reason?: string; noAdapter?: string }>(r.out) ?? {
      noAdapter: `probe child failed: ${r.err.slice(-500)}`,
    }
  )
}

const skip = await (async () => {
  if ('reason' in lvp) return lvp.reason
  if (present.length === 0) return `no oracle set under ${SHARED}`
  const p = await probe(lvp.env)
  if (p.noAdapter !== undefined) return `no WebGPU adapter on lavapipe (${p.noAdapter})`
  if (!p.f16) return `the lavapipe adapter runs no fp16 (${p.f16Reason ?? '?'})`
  return undefined
})()
if (skip) console.warn(`skipping the fp16 WebGPU oracle run: ${skip}`)

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-webgpu-ref16-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe.skipIf(skip !== undefined)('oracle sets under fp16 compute on WebGPU (lavapipe)', () => {
  for (const set of present) {
    it(`${set}: every case`, { timeout: 3_600_000 }, async () => {
      if ('reason' in lvp) return
      const r = await referenceOnWebGpu({
        env: lvp.env,
        manifest: path.join(SHARED, set, 'manifest.json'),
        out: path.join(tmp, set),
        cache: path.join(tmp, 'cache'),
        extra: ['--precision', 'fp16'],
      })
      console.log(`${set} on WebGPU fp16 (lavapipe): ${r.seconds.toFixed(0)} s\n${r.out}`)
      expect(r.noAdapter).toBeUndefined()
      expect(r.code, `${r.out}\n${r.err.slice(-3000)}`).toBe(0)
      expect(r.rows.filter((l) => /\bFAIL\b/.test(l))).toEqual([])
      expect(r.out).toMatch(/ 0 fail, 0 error, 0 written, 0 skipped;/)
      // The fp16 graphs really ran (upscalers have none: they stay fp32).
      if (set !== 'oracle-upscale') expect(r.rows.some((l) => /fp16 rule:/.test(l))).toBe(true)
    })
  }
})
