import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { lavapipeEnv, softwareVulkanEnv } from '../../engine/runtime/software-vulkan'
import { lastJsonLine, runTsxChild } from '../../platform/tsx-child'

/**
 * The Settings execution provider reaches generation: the same txt2img job run with `cpu` and with `webgpu`
 * opens its sessions on that provider, the service reports it (the status bar's source) and the PNG's
 * infotext says `Execution provider: ...`. WebGPU comes from SwiftShader in a child process's environment.
 */

// Seeded tiny models written by the tests themselves (bench/fixtures/tiny-models.ts; no ../shared needed).
const tiny = await ensureTinyModels()
const TINY = tiny.sd15
const BPE = tiny.tokenizer
// Only a missing software Vulkan (SwiftShader) may skip this: a machine resource, not reference data.
const vk = softwareVulkanEnv()
const skip = 'reason' in vk ? vk.reason : undefined
if (skip) console.warn(`skipping the provider-setting generation test: ${skip}`)
// Mesa's lavapipe: a WebGPU adapter with shader-f16 (the fp16 setting's GPU path) without a GPU.
const lvp = lavapipeEnv()
if ('reason' in lvp) console.warn(`skipping the fp16 WebGPU generation test: ${lvp.reason}`)

interface Run {
  provider: string
  state: string
  error?: { message: string }
  engine?: { preference: string; provider: string; fallbackReason?: string; compute?: string }
  params?: { settings: Record<string, string> }
  statuses: string[]
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-provider-'))
// A test that times out leaves its child running (a slow SwiftShader run): stop every one still alive.
const running = new Set<ChildProcess>()
afterAll(() => {
  for (const c of running) c.kill('SIGKILL')
  fs.rmSync(tmp, { recursive: true, force: true })
})

async function child(env: NodeJS.ProcessEnv, providers: string[]): Promise<Run[]> {
  const script = path.join(import.meta.dirname, 'provider.child.ts')
  const r = await runTsxChild(script, [tmp, TINY, BPE, ...providers], env, (c) => {
    running.add(c)
    c.on('exit', () => running.delete(c))
  })
  const runs = lastJsonLine<Run[]>(r.out)
  if (r.code !== 0 || !runs) throw new Error(`child exited ${r.code}: ${r.err.slice(-2000)}`)
  return runs
}

describe.skipIf(skip !== undefined)('execution provider setting', () => {
  it('cpu and webgpu settings run generation on that provider and say so', { timeout: 900_000 }, async () => {
    if ('reason' in vk) return
    const r = await child(vk.env, ['cpu', 'webgpu'])
    for (const [i, p] of ['cpu', 'webgpu'].entries()) {
      const run = r[i] as Run
      expect(run.state, run.error?.message).toBe('done')
      expect(run.engine).toMatchObject({ preference: p, provider: p })
      expect(run.params?.settings['Execution provider']).toBe(p)
      // fp16 is the default setting, but the CPU computes fp32 and SwiftShader has no shader-f16.
      expect(run.params?.settings['Compute precision']).toBe('fp32')
    }
  })

  it(
    'a provider that does not start falls back to CPU with the reason, shown once',
    { timeout: 900_000 },
    async () => {
      if ('reason' in vk) return
      const r = await child({ ...vk.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' }, ['webgpu', 'webgpu'])
      const [first, second] = r as [Run, Run]
      expect(first.state, first.error?.message).toBe('done')
      expect(first.engine?.provider).toBe('cpu')
      expect(first.engine?.fallbackReason).toMatch(/^webgpu: .*adapter/i)
      expect(first.params?.settings['Execution provider']).toBe('cpu')
      // The reason is a job status line the first time only; the status bar keeps showing it.
      const said = (x: Run): boolean => x.statuses.some((m) => /WEBGPU unavailable/.test(m))
      expect(said(first)).toBe(true)
      expect(said(second)).toBe(false)
      expect(second.engine?.fallbackReason).toMatch(/^webgpu: /)
    },
  )
})

describe.skipIf('reason' in lvp)('compute precision on a WebGPU adapter with shader-f16 (lavapipe)', () => {
  it(
    'fp16 runs the fp16 graphs on WebGPU and says so; fp32 runs fp32 there',
    { timeout: 900_000 },
    async (ctx) => {
      if ('reason' in lvp) return
      const [half, full] = await child(lvp.env, ['webgpu:fp16', 'webgpu:fp32'])
      if (half?.engine?.provider === 'cpu' && /adapter/i.test(half.engine.fallbackReason ?? '')) {
        console.warn(`skipping: lavapipe gave no WebGPU adapter (${half.engine.fallbackReason})`)
        ctx.skip()
        return
      }
      expect(half?.state, half?.error?.message).toBe('done')
      expect(half?.engine).toMatchObject({ preference: 'webgpu', provider: 'webgpu', compute: 'fp16' })
      expect(half?.params?.settings['Execution provider']).toBe('webgpu')
      expect(half?.params?.settings['Compute precision']).toBe('fp16')
      expect(full?.state, full?.error?.message).toBe('done')
      expect(full?.engine).toMatchObject({ provider: 'webgpu', compute: 'fp32' })
      expect(full?.params?.settings['Compute precision']).toBe('fp32')
    },
  )
})

describe('compute precision setting', () => {
  it(
    'reaches the sessions: the CPU stays fp32; with the CPU fp16 check on, fp16 runs the fp16 UNet graph',
    { timeout: 900_000 },
    async () => {
      const [cpu] = await child(process.env, ['cpu:fp16'])
      expect(cpu?.state, cpu?.error?.message).toBe('done')
      expect(cpu?.engine?.compute).toBe('fp32')
      expect(cpu?.params?.settings['Compute precision']).toBe('fp32')
      // ATELIER_CPU_FP16=emulate stands in for a GPU provider: the setting then picks the graph.
      const [half, full] = await child({ ...process.env, ATELIER_CPU_FP16: 'emulate' }, [
        'cpu:fp16',
        'cpu:fp32',
      ])
      expect(half?.state, half?.error?.message).toBe('done')
      expect(half?.engine?.compute).toBe('fp16 (emulated on CPU)')
      expect(half?.params?.settings['Compute precision']).toBe('fp16 (emulated on CPU)')
      expect(full?.state, full?.error?.message).toBe('done')
      expect(full?.params?.settings['Compute precision']).toBe('fp32')
    },
  )
})
