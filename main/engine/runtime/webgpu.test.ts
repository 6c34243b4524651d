import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { TsxChildResult } from '../../platform/tsx-child'
import { lastJsonLine, runTsxChild } from '../../platform/tsx-child'
import { linuxGpuDeviceNodes } from './providers'
import { lavapipeEnv, softwareVulkanEnv } from './software-vulkan'

/**
 * onnxruntime's WebGPU provider on software Vulkan, in child processes that get the Vulkan environment
 * (nothing in this process changes): the three ORT 1.30 kernel bugs of webgpu-rewrite.ts on minimal models
 * on SwiftShader (no shader-f16) and on Mesa's lavapipe (shader-f16: the fp16 graphs), and the fallback when
 * no adapter comes up. Skips with the reason where a driver is not installed.
 */

const CHILD = path.join(import.meta.dirname, 'webgpu.child.ts')

function runChild(args: string[], env: NodeJS.ProcessEnv): Promise<TsxChildResult> {
  return runTsxChild(CHILD, args, env)
}

function lastJson<T>(out: string): T {
  const v = lastJsonLine<T>(out)
  if (v === undefined) throw new Error(`no JSON from the child: ${out}`)
  return v
}

const vk = softwareVulkanEnv()
if ('reason' in vk) console.warn(`skipping WebGPU kernel tests on SwiftShader: ${vk.reason}`)
const lvp = lavapipeEnv()
if ('reason' in lvp) console.warn(`skipping WebGPU fp16 kernel tests on lavapipe: ${lvp.reason}`)

interface KernelRun {
  noAdapter?: string
  probe: { attentionOk: boolean; attentionMaxDiff: number; f16: boolean; f16Reason?: string }
  results: { name: string; provider: string; compute?: string; raw: number; ours: number }[]
}

/** The kernel models on one adapter; undefined (after ctx.skip) where no adapter comes up. */
async function kernels(env: NodeJS.ProcessEnv, label: string, ctx: { skip: () => void }) {
  const r = await runChild([], env)
  expect(r.code, r.err).toBe(0)
  const res = lastJson<KernelRun>(r.out)
  if (res.noAdapter) {
    console.warn(`skipping WebGPU kernel tests on ${label}: no WebGPU adapter (${res.noAdapter})`)
    ctx.skip()
    return undefined
  }
  for (const x of res.results) {
    console.log(
      `${label}: ${x.name}: ORT WebGPU as is ${x.raw.toExponential(2)}, rewritten ${x.ours.toExponential(2)} (vs CPU)`,
    )
    expect(x.provider).toBe('webgpu')
    const fp16 = x.name.endsWith('fp16 graph')
    // fp16: a 3x3 conv over 9 channels of values in [-2, 2) sums 81 products; fp16 rounding of inputs,
    // weights and output is a few 1e-2 here, the kernel bug several units.
    expect(x.ours, x.name).toBeLessThan(fp16 ? 0.25 : x.name.startsWith('Conv') ? 1e-4 : 1e-5)
    if (fp16) expect(x.compute).toBe('native')
  }
  // The probe decides the attention rewrite: it must agree with the raw kernel's error.
  const mha = res.results[0] as { raw: number }
  expect(res.probe.attentionOk).toBe(mha.raw < 1e-4)
  return res
}

describe.skipIf('reason' in lvp)('WebGPU provider on lavapipe (shader-f16)', () => {
  it('the fp16 graph of a 9-channel Conv is rewritten too and matches CPU', async (ctx) => {
    if ('reason' in lvp) return
    const res = await kernels(lvp.env, 'lavapipe', ctx)
    if (!res) return
    if (!res.probe.f16) {
      console.warn(
        `skipping the fp16 kernel test: the lavapipe adapter runs no fp16 (${res.probe.f16Reason})`,
      )
      ctx.skip()
      return
    }
    const conv16 = res.results.find((x) => x.name.endsWith('fp16 graph'))
    expect(conv16?.raw, 'the raw fp16 kernel is wrong by units (the bug this guards)').toBeGreaterThan(1)
  })
})

describe.skipIf('reason' in vk)('WebGPU provider on SwiftShader', () => {
  it('the rewritten MultiHeadAttention, InstanceNormalization and Conv match CPU', async (ctx) => {
    if ('reason' in vk) return
    const res = await kernels(vk.env, 'SwiftShader', ctx)
    // SwiftShader has no shader-f16: its graphs run fp32.
    if (res) expect(res.probe.f16).toBe(false)
  })

  it('a WebGPU choice falls back to CPU with the adapter failure as the reason when Vulkan has no device', async () => {
    if ('reason' in vk) return
    const noDevice = { ...vk.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' }
    const r = await runChild(['fallback', 'webgpu'], noDevice)
    expect(r.code, r.err).toBe(0)
    const res = lastJson<{ provider: string; skips: { provider: string; reason: string }[] }>(r.out)
    expect(res.provider).toBe('cpu')
    expect(res.skips.find((s) => s.provider === 'webgpu')?.reason).toMatch(/adapter/i)
    // auto: the same adapter request where a GPU device node exists; without one WebGPU is not tried.
    const a = await runChild(['fallback', 'auto'], noDevice)
    expect(a.code, a.err).toBe(0)
    const auto = lastJson<{ provider: string; skips: { provider: string; reason: string }[] }>(a.out)
    expect(auto.provider).toBe('cpu')
    expect(auto.skips.find((s) => s.provider === 'webgpu')?.reason).toMatch(
      linuxGpuDeviceNodes().length > 0 ? /adapter/i : /no GPU device/,
    )
  })
})
