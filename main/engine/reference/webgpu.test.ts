import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../platform/paths'
import { softwareVulkanEnv } from '../runtime/software-vulkan'
import { ORACLE_SETS, referenceOnWebGpu } from './webgpu-child'

/**
 * Every case of every oracle set on onnxruntime's WebGPU provider, through SwiftShader (software Vulkan) in
 * child processes whose environment alone gets VK_ICD_FILENAMES: `atelier reference --provider webgpu` must
 * pass each case within its fp32 tolerance. One test per set, so vitest reports (and times) them apart.
 * Skips with the reason where SwiftShader or the sets are absent, or where no WebGPU adapter comes up.
 */

const SHARED = path.resolve(repoRoot(), '../shared')

const vk = softwareVulkanEnv()
const present = ORACLE_SETS.filter((s) => fs.existsSync(path.join(SHARED, s, 'manifest.json')))
const skip = 'reason' in vk ? vk.reason : present.length === 0 ? `no oracle set under ${SHARED}` : undefined
if (skip) console.warn(`skipping the WebGPU oracle run: ${skip}`)

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-webgpu-ref-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe.skipIf(skip !== undefined)('oracle sets on WebGPU (SwiftShader)', () => {
  for (const set of present) {
    it(`${set}: every case`, { timeout: 3_600_000 }, async (ctx) => {
      if ('reason' in vk) return
      const r = await referenceOnWebGpu({
        env: vk.env,
        manifest: path.join(SHARED, set, 'manifest.json'),
        out: path.join(tmp, set),
        cache: path.join(tmp, 'cache'),
      })
      if (r.noAdapter !== undefined) {
        console.warn(`skipping ${set} on WebGPU: no adapter (${r.noAdapter})`)
        ctx.skip()
        return
      }
      console.log(`${set} on WebGPU (SwiftShader): ${r.seconds.toFixed(0)} s\n${r.out}`)
      expect(r.code, `${r.out}\n${r.err.slice(-3000)}`).toBe(0)
      expect(r.rows.length).toBeGreaterThan(0)
      expect(r.rows.filter((l) => /\bFAIL\b/.test(l))).toEqual([])
      expect(r.out).toMatch(/ 0 fail, 0 error, 0 written, 0 skipped;/)
    })
  }
})
