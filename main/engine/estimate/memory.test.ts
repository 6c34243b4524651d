/**
 * The peak-memory estimate against a measured peak: the tiny SD 1.5 generated for tests, one txt2img step
 * at 256² and 512² in a fresh process (bench/memory.ts --child: the generation worker's session config, peak
 * resident set from /proc/self/status VmHWM), estimated from the conversion's own parameter counts and
 * widths. The full-size figures come from `npx tsx bench/memory.ts`.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../../platform/paths'
import { defaultCalibration, estimateRequest } from './estimate'
import type { ModelSizes } from './sizes'

const LINUX = fs.existsSync('/proc/self/status')
if (!LINUX) console.warn('peak-memory test skipped: no /proc/self/status (VmHWM) on this system')

function measure(size: number): { peak: number; sizes: ModelSizes } {
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(repoRoot(), 'bench', 'memory.ts'),
      '--child',
      JSON.stringify({ model: 'tiny', size, cfg: 7, batch: 1 }),
    ],
    { encoding: 'utf8', cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 },
  )
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as { peak: number; sizes: ModelSizes }
}

describe('what would fit', () => {
  const req = {
    family: 'sd-1' as const,
    mode: 'txt2img' as const,
    width: 2048,
    height: 2048,
    steps: 20,
    cfgScale: 7,
    sampler: 'Euler a',
    batchSize: 1,
    batchCount: 1,
    lowMemory: false,
    loaded: true,
  }
  const cal = defaultCalibration('sd-1')

  it('offers draft decode when the VAE decode is what does not fit, and says so for TAESD', () => {
    const full = estimateRequest(req, cal, { totalBytes: 64 * 2 ** 30 })
    const draft = estimateRequest({ ...req, draftDecode: true }, cal, { totalBytes: 64 * 2 ** 30 })
    // 2048² decodes at full resolution: TAESD's 64 channels hold half the VAE's 128.
    expect(draft.peakBytes).toBeLessThan(full.peakBytes)
    const between = (full.peakBytes + draft.peakBytes) / 2 + 1.5 * 2 ** 30
    const tight = estimateRequest(req, cal, { totalBytes: between })
    expect(tight.fits).toBe(false)
    expect(tight.suggestion).toEqual({ draftDecode: true })
    expect(estimateRequest({ ...req, draftDecode: true }, cal, { totalBytes: between }).fits).toBe(true)
  })
})

describe.skipIf(!LINUX)('peak-memory estimate (tiny SD 1.5, measured in a fresh process)', () => {
  it('is within 25 % of the measured peak at 256² and 512², and grows with the image', () => {
    const peaks: number[] = []
    const estimates: number[] = []
    for (const size of [256, 512]) {
      const m = measure(size)
      expect(m.sizes.unetChannels).toBe(32)
      const e = estimateRequest(
        {
          family: 'sd-1',
          mode: 'txt2img',
          width: size,
          height: size,
          steps: 1,
          cfgScale: 7,
          sampler: 'Euler',
          batchSize: 1,
          batchCount: 1,
          lowMemory: false,
          loaded: false,
          sizes: m.sizes,
        },
        defaultCalibration('sd-1'),
        { totalBytes: os.totalmem() },
      )
      peaks.push(m.peak)
      estimates.push(e.peakBytes)
      expect(e.peakBytes / m.peak, `${size}²: estimated ${e.peakBytes}, measured ${m.peak}`).toBeGreaterThan(
        0.75,
      )
      expect(e.peakBytes / m.peak, `${size}²: estimated ${e.peakBytes}, measured ${m.peak}`).toBeLessThan(
        1.25,
      )
    }
    // The activations' share: 4x the pixels cost more in both.
    expect(peaks[1]).toBeGreaterThan(peaks[0] as number)
    expect(estimates[1]).toBeGreaterThan(estimates[0] as number)
  }, 900_000)
})
