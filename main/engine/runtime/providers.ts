import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

/**
 * Execution provider choice, in one place. Order for `auto`: CUDA (when its provider library is
 * installed beside the binding), DirectML on Windows, CoreML on macOS, WebGPU (Linux where a GPU device node
 * exists, Windows; tried with a real adapter request), CPU always last. A provider that fails to start is remembered for the process and skipped with its
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

/**
 * GPU device nodes on Linux: DRM render nodes (Mesa, AMD, Intel, NVIDIA open driver), NVIDIA's proprietary
 * nodes, WSL2's /dev/dxg. Without one, the only Vulkan device Dawn can find is a software one (Mesa's
 * lavapipe ships with mesa-vulkan-drivers on most desktop distributions; Dawn accepts it from Mesa 23 on),
 * which runs the UNet several times slower than the CPU provider.
 */
export function linuxGpuDeviceNodes(dev = '/dev'): string[] {
  const list = (dir: string): string[] => {
    try {
      return fs.readdirSync(dir)
    } catch {
      return []
    }
  }
  return [
    ...list(path.join(dev, 'dri'))
      .filter((n) => /^renderD\d+$/.test(n))
      .map((n) => path.join(dev, 'dri', n)),
    ...list(dev)
      .filter((n) => /^nvidia\d+$/.test(n) || n === 'dxg')
      .map((n) => path.join(dev, n)),
  ]
}

export const NO_GPU_DEVICE =
  'no GPU device on this machine (no /dev/dri/renderD*, /dev/nvidia*, /dev/dxg): WebGPU would run on a ' +
  'software Vulkan driver (lavapipe), slower than the CPU provider; choose WebGPU in Settings to use it anyway'

/** The providers to try, in order, with the reasons others were left out. CPU is always last. */
export function providerCandidates(
  preference: ProviderPreference = 'auto',
  platform: NodeJS.Platform = process.platform,
  /** Linux GPU device nodes (injected by tests). */
  gpuNodes: () => string[] = linuxGpuDeviceNodes,
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
    // a probe session (webgpu.ts) and falls back to CPU with ORT's reason ("No supported adapters"). On
    // Linux `auto` first wants a GPU device node, so a software Vulkan driver is never chosen for the user.
    if (platform === 'linux') consider('webgpu', gpuNodes().length > 0, NO_GPU_DEVICE)
    else if (platform !== 'darwin') consider('webgpu', true, '')
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
