import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

/**
 * Execution provider choice, in one place. Order for `auto`: CUDA (when its provider library is
 * installed beside the binding), DirectML on Windows, CoreML on macOS, WebGPU (Linux, Windows; tried with a
 * real adapter request), CPU always last. A provider that fails to start is remembered for the process and skipped with its
 * reason, so the next model does not pay for the failed attempt again.
 */

export const PROVIDERS = ['cuda', 'dml', 'coreml', 'webgpu', 'cpu'] as const
export type ProviderName = (typeof PROVIDERS)[number]
export type ProviderPreference = 'auto' | ProviderName

export function isProviderPreference(s: string): s is ProviderPreference {
  return s === 'auto' || (PROVIDERS as readonly string[]).includes(s)
}

/** Why a provider was skipped, for logs and the UI ("CUDA: provider library not installed"). */
export interface ProviderSkip {
  provider: ProviderName
  reason: string
}

const failed = new Map<ProviderName, string>()

export function markProviderFailed(p: ProviderName, reason: string): void {
  if (p !== 'cpu') failed.set(p, reason)
}

export function providerFailure(p: ProviderName): string | undefined {
  return failed.get(p)
}

/** Forget remembered failures (tests; after the user installs a driver). */
export function resetProviderFailures(): void {
  failed.clear()
}

function ortBinDir(): string | undefined {
  try {
    // .../onnxruntime-node/dist/index.js -> .../onnxruntime-node/bin/napi-v6/<platform>/<arch>
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node')
    const dir = path.join(path.dirname(path.dirname(entry)), 'bin', 'napi-v6', process.platform, process.arch)
    return fs.existsSync(dir) ? dir : undefined
  } catch {
    return undefined
  }
}

function cudaLibraryPresent(): boolean {
  const dir = ortBinDir()
  if (!dir) return false
  const name =
    process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so'
  return fs.existsSync(path.join(dir, name))
}

/** The providers to try, in order, with the reasons others were left out. CPU is always last. */
export function providerCandidates(
  preference: ProviderPreference = 'auto',
  platform: NodeJS.Platform = process.platform,
): { order: ProviderName[]; skipped: ProviderSkip[] } {
  const skipped: ProviderSkip[] = []
  const order: ProviderName[] = []
  const consider = (p: ProviderName, available: boolean, why: string): void => {
    const f = failed.get(p)
    if (f) skipped.push({ provider: p, reason: f })
    else if (!available) skipped.push({ provider: p, reason: why })
    else order.push(p)
  }
  if (preference === 'cpu') return { order: ['cpu'], skipped }
  if (preference !== 'auto') {
    consider(preference, true, '')
  } else {
    if (platform === 'linux' || platform === 'win32')
      consider('cuda', cudaLibraryPresent(), 'the CUDA provider library is not installed')
    if (platform === 'win32') consider('dml', true, '')
    if (platform === 'darwin') consider('coreml', true, '')
    // Whether an adapter exists is known only by asking for one: openSession's WebGPU attempt starts with
    // a probe session (webgpu.ts) and falls back to CPU with ORT's reason ("No supported adapters").
    if (platform !== 'darwin') consider('webgpu', true, '')
  }
  order.push('cpu')
  return { order, skipped }
}

let physical: number | undefined

/** Physical CPU cores (ORT's intra-op threads work best at one per core, not per hyperthread). */
export function physicalCores(): number {
  if (physical !== undefined) return physical
  const logical = Math.max(1, os.availableParallelism?.() ?? os.cpus().length)
  let n = 0
  try {
    if (process.platform === 'linux') {
      const ids = new Set<string>()
      let phys = '0'
      for (const line of fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n')) {
        const [k, v] = line.split(':').map((s) => s.trim())
        if (k === 'physical id') phys = v ?? '0'
        if (k === 'core id') ids.add(`${phys}:${v}`)
      }
      n = ids.size
    } else if (process.platform === 'darwin') {
      n = Number(execFileSync('sysctl', ['-n', 'hw.physicalcpu'], { encoding: 'utf8' }).trim())
    }
  } catch {
    n = 0
  }
  physical = n > 0 && n <= logical ? n : logical
  return physical
}
