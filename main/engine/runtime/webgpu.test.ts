import { spawn } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { softwareVulkanEnv } from './software-vulkan'

/**
 * onnxruntime's WebGPU provider on SwiftShader, in child processes that get the Vulkan environment (nothing
 * in this process changes): the three ORT 1.30 kernel bugs of webgpu-rewrite.ts on minimal models, and the
 * fallback of `auto` when no adapter comes up. Skips with the reason where SwiftShader is not installed.
 */

const CHILD = path.join(import.meta.dirname, 'webgpu.child.ts')

function runChild(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    c.stdout.on('data', (d: Buffer) => (out += d.toString()))
    c.stderr.on('data', (d: Buffer) => (err += d.toString()))
    c.on('error', reject)
    c.on('exit', (code) => resolve({ out, err, code }))
  })
}

function lastJson<T>(out: string): T {
  const line = out
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop()
  if (!line) throw new Error(`no JSON from the child: ${out}`)
  return JSON.parse(line) as T
}

const vk = softwareVulkanEnv()
if ('reason' in vk) console.warn(`skipping WebGPU kernel tests: ${vk.reason}`)

describe.skipIf('reason' in vk)('WebGPU provider on SwiftShader', () => {
  it('the rewritten MultiHeadAttention, InstanceNormalization and Conv match CPU', async (ctx) => {
    if ('reason' in vk) return
    const r = await runChild([], vk.env)
    expect(r.code, r.err).toBe(0)
    const res = lastJson<{
      noAdapter?: string
      probe: { attentionOk: boolean; attentionMaxDiff: number }
      results: { name: string; provider: string; raw: number; ours: number }[]
    }>(r.out)
    if (res.noAdapter) {
      console.warn(`skipping WebGPU kernel tests: no WebGPU adapter (${res.noAdapter})`)
      ctx.skip()
      return
    }
    for (const x of res.results) {
      console.log(
        `${x.name}: ORT WebGPU as is ${x.raw.toExponential(2)}, rewritten ${x.ours.toExponential(2)} (vs CPU)`,
      )
      expect(x.provider).toBe('webgpu')
      expect(x.ours, x.name).toBeLessThan(x.name.startsWith('Conv') ? 1e-4 : 1e-5)
    }
    // The probe decides the attention rewrite: it must agree with the raw kernel's error.
    const mha = res.results[0] as { raw: number }
    expect(res.probe.attentionOk).toBe(mha.raw < 1e-4)
  })

  it('auto falls back to CPU with the adapter failure as the reason when Vulkan has no device', async () => {
    if ('reason' in vk) return
    const r = await runChild(['fallback'], { ...vk.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' })
    expect(r.code, r.err).toBe(0)
    const res = lastJson<{ provider: string; skips: { provider: string; reason: string }[] }>(r.out)
    expect(res.provider).toBe('cpu')
    const webgpu = res.skips.find((s) => s.provider === 'webgpu')
    expect(webgpu?.reason).toMatch(/adapter/i)
  })
})
