import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../../platform/paths'
import { softwareVulkanEnv } from '../runtime/software-vulkan'

/**
 * The oracle sets on onnxruntime's WebGPU provider, through SwiftShader (software Vulkan) in a child process
 * whose environment alone gets VK_ICD_FILENAMES: `atelier reference --provider webgpu` must pass every case
 * it runs. CI runs each set's model cases (text encoders, UNets, VAEs, upscalers, image encoder: every graph
 * kind the pipelines use; SwiftShader takes minutes per set for the multi-step pipeline cases, see README);
 * ATELIER_WEBGPU_ORACLE=all runs every case. Skips with the reason where SwiftShader or the sets are absent,
 * or where no WebGPU adapter comes up.
 */

const SHARED = path.resolve(repoRoot(), '../shared')
const ALL = process.env.ATELIER_WEBGPU_ORACLE === 'all'

/** Per set: the cases CI runs (undefined: all). */
const SETS: Record<string, string[] | undefined> = {
  oracle: ['text_encoder', 'unet', 'vae_decode'],
  'oracle-sdxl': ['text_encoders', 'unet'],
  'oracle-upscale': ['rrdb_x4_odd', 'srvgg_x4'],
  'oracle-ipadapter': ['image_encoder'],
  // A1111 / ComfyUI sampling (fractional t, [cond, uncond] batches, img2img with VAE posterior noise) and
  // LyCORIS / embeddings. The CI subset costs about 3 CPU-minutes of SwiftShader (README, GPU).
  'oracle-kdiff': ['sigmas', 'a1111_txt2img_euler', 'a1111_img2img_dpmpp_2m_karras'],
  'oracle-addons': ['adapter_locon_cp', 'ti_prompts'],
}

const vk = softwareVulkanEnv()
const present = Object.keys(SETS).filter((s) => fs.existsSync(path.join(SHARED, s, 'manifest.json')))
const skip = 'reason' in vk ? vk.reason : present.length === 0 ? `no oracle set under ${SHARED}` : undefined
if (skip) console.warn(`skipping the WebGPU oracle run: ${skip}`)

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-webgpu-ref-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

function reference(env: NodeJS.ProcessEnv, set: string, cases: string[] | undefined) {
  const args = [
    '--import',
    'tsx',
    path.join(repoRoot(), 'main/cli/main.ts'),
    'reference',
    path.join(SHARED, set, 'manifest.json'),
    '--provider',
    'webgpu',
    '--out',
    path.join(tmp, set),
    '--cache',
    path.join(tmp, 'cache'),
    ...(cases ?? []).flatMap((c) => ['--case', c]),
  ]
  return new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
    const c = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    c.stdout.on('data', (d: Buffer) => (out += d.toString()))
    c.stderr.on('data', (d: Buffer) => (err += d.toString()))
    c.on('error', reject)
    c.on('exit', (code) => resolve({ code, out, err }))
  })
}

describe.skipIf(skip !== undefined)('oracle sets on WebGPU (SwiftShader)', () => {
  for (const set of present) {
    it(
      `${set}: ${ALL || !SETS[set] ? 'every case' : (SETS[set] ?? []).join(', ')}`,
      { timeout: 3_600_000 },
      async (ctx) => {
        if ('reason' in vk) return
        const t0 = performance.now()
        const r = await reference(vk.env, set, ALL ? undefined : SETS[set])
        const s = ((performance.now() - t0) / 1000).toFixed(0)
        if (/provider webgpu skipped/.test(r.err)) {
          console.warn(`skipping ${set} on WebGPU: no adapter (${/skipped: (.*)/.exec(r.err)?.[1] ?? ''})`)
          ctx.skip()
          return
        }
        console.log(`${set} on WebGPU (SwiftShader): ${s} s\n${r.out}`)
        expect(r.code, `${r.out}\n${r.err.slice(-3000)}`).toBe(0)
        const rows = r.out.split('\n').filter((l) => /\b(PASS|FAIL)\b/.test(l))
        expect(rows.length).toBeGreaterThan(0)
        expect(rows.filter((l) => /\bFAIL\b/.test(l))).toEqual([])
      },
    )
  }
})
