import path from 'node:path'
import { repoRoot } from '../../platform/paths'
import { runTsxChild } from '../../platform/tsx-child'

/**
 * `atelier reference <set> --provider webgpu` in a child process whose environment alone points Vulkan at a
 * software driver (software-vulkan.ts): the WebGPU oracle tests' one way to run a set.
 */

/** The oracle sets under ../shared that the WebGPU runs cover (each has a manifest.json). */
export const ORACLE_SETS = [
  'oracle',
  'oracle-sdxl',
  'oracle-upscale',
  'oracle-ipadapter',
  'oracle-kdiff',
  'oracle-addons',
] as const

export interface ReferenceChildResult {
  code: number | null
  out: string
  err: string
  seconds: number
  /** The CLI's result rows (PASS / FAIL lines of its table). */
  rows: string[]
  /** Set where ORT found no WebGPU adapter: its reason. */
  noAdapter?: string
}

export async function referenceOnWebGpu(opts: {
  env: NodeJS.ProcessEnv
  manifest: string
  out: string
  cache: string
  cases?: string[]
  extra?: string[]
}): Promise<ReferenceChildResult> {
  const args = [
    'reference',
    opts.manifest,
    '--provider',
    'webgpu',
    '--out',
    opts.out,
    '--cache',
    opts.cache,
    ...(opts.cases ?? []).flatMap((c) => ['--case', c]),
    ...(opts.extra ?? []),
  ]
  const t0 = performance.now()
  const { code, out, err } = await runTsxChild(path.join(repoRoot(), 'main/cli/main.ts'), args, opts.env)
  const skipped = /provider webgpu skipped: (.*)/.exec(err)
  return {
    code,
    out,
    err,
    seconds: (performance.now() - t0) / 1000,
    rows: out.split('\n').filter((l) => /\b(PASS|FAIL)\b/.test(l)),
    ...(skipped ? { noAdapter: skipped[1] ?? '' } : {}),
  }
}
