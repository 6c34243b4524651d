/**
 * Pre-flight estimates: the FLOP model against the benches' count, the shape of the estimate (steps, CFG,
 * samplers, img2img strength, hires, memory and its suggestions), calibration cached in the data folder,
 * and the estimate against a measured run of the tiny SD 1.5 through the CLI (within generous bounds: a
 * shared 2-core machine).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { FULL_SD15 } from '../../../bench/fixtures/full-sd15'
import { unetFlops as benchUnetFlops } from '../../../bench/unet-common'
import { runCli } from '../../cli/index'
import type { Calibration } from '../../engine/estimate/estimate'
import { estimateRequest, unetFlops, vaeDecodeFlops, weightBytes } from '../../engine/estimate/estimate'
import { EventBus } from '../events'
import { GalleryStore } from '../generation/gallery'
import { readImageParameters } from '../generation/parameters'
import { createResolvers } from '../generation/resolve'
import { GenerationService } from '../generation/service'
import { JobManager } from '../jobs'

// Seeded tiny models written by the tests themselves (bench/fixtures/tiny-models.ts; no ../shared needed).
const tiny = await ensureTinyModels()
const TINY = tiny.sd15
const BPE = tiny.tokenizer

const CAL: Calibration = {
  unetSeconds: 1,
  decodeSeconds: 0.5,
  textSeconds: 0.1,
  loadSeconds: 10,
  memoryFactor: 1,
  measured: true,
}
const BASE = {
  family: 'sd-1' as const,
  mode: 'txt2img' as const,
  width: 512,
  height: 512,
  steps: 20,
  cfgScale: 7,
  sampler: 'Euler a',
  batchSize: 1,
  batchCount: 1,
  lowMemory: false,
  loaded: true,
}
const MEM = { totalBytes: 24 * 2 ** 30 }

describe('estimate model', () => {
  it('counts SD 1.5 UNet FLOPs as bench/unet-common does', () => {
    const u = FULL_SD15.unet
    const cfg = {
      inChannels: 4,
      outChannels: 4,
      blockOutChannels: u.channels,
      layersPerBlock: 2,
      downAttention: [true, true, true, false],
      upAttention: [false, true, true, true],
      midAttention: true,
      crossAttentionDim: 768,
      timeProjDim: 320,
      timeEmbedDim: 1280,
      heads: 8,
    }
    const bench = benchUnetFlops(cfg, 2, 64, 64, 77).total
    expect(Math.abs(unetFlops('sd-1', 2, 64, 64) - bench) / bench).toBeLessThan(0.01)
    // SDXL at 1024² is several times SD 1.5 at 512² (about 6x in published counts).
    const ratio = unetFlops('sdxl', 1, 128, 128) / unetFlops('sd-1', 1, 64, 64)
    expect(ratio).toBeGreaterThan(4)
    expect(ratio).toBeLessThan(9)
    expect(vaeDecodeFlops(1, 64, 64)).toBeGreaterThan(2e12)
  })

  it('scales with steps, CFG, second-order samplers, strength and hires', () => {
    const e20 = estimateRequest(BASE, CAL, MEM)
    const e40 = estimateRequest({ ...BASE, steps: 40 }, CAL, MEM)
    expect(e40.breakdown.sampling / e20.breakdown.sampling).toBeCloseTo(2, 6)
    const noCfg = estimateRequest({ ...BASE, cfgScale: 1 }, CAL, MEM)
    expect(noCfg.stepSeconds / e20.stepSeconds).toBeCloseTo(0.5, 6)
    expect(estimateRequest({ ...BASE, sampler: 'DPM++ SDE Karras' }, CAL, MEM).stepSeconds).toBeCloseTo(
      2 * e20.stepSeconds,
      6,
    )
    const i2i = estimateRequest({ ...BASE, mode: 'img2img', strength: 0.5 }, CAL, MEM)
    expect(i2i.stepsRun).toBe(10)
    expect(i2i.breakdown.encode).toBeGreaterThan(0)
    const hires = estimateRequest({ ...BASE, hires: { scale: 2 } }, CAL, MEM)
    expect(hires.seconds).toBeGreaterThan(e20.seconds * 2)
    // The calibrated UNet second at the reference size (32x32 latents, batch 1) drives the step time.
    expect(e20.stepSeconds).toBeCloseTo((2 * unetFlops('sd-1', 1, 64, 64)) / unetFlops('sd-1', 1, 32, 32), 6)
    const loading = estimateRequest({ ...BASE, loaded: false }, CAL, MEM)
    expect(loading.seconds - e20.seconds).toBeCloseTo(10, 6)
  })

  it('warns when a request will not fit and offers low-memory mode or a smaller size', () => {
    const sd = estimateRequest(BASE, CAL, MEM)
    expect(sd.fits).toBe(true)
    expect(sd.peakBytes).toBeGreaterThan(weightBytes('sd-1', false))
    const xl = { ...BASE, family: 'sdxl' as const, width: 1024, height: 1024 }
    const tight = estimateRequest(xl, CAL, { totalBytes: 16 * 2 ** 30 })
    expect(tight.fits).toBe(false)
    expect(tight.suggestion).toEqual({ lowMemory: true })
    const small = estimateRequest({ ...xl, width: 2048, height: 2048, lowMemory: true }, CAL, {
      totalBytes: 8 * 2 ** 30,
    })
    expect(small.fits).toBe(false)
    expect(small.suggestion?.width).toBeLessThan(2048)
    expect(small.suggestion?.width).toBe(small.suggestion?.height)
    const check = estimateRequest(
      { ...xl, lowMemory: true, width: small.suggestion?.width ?? 0, height: small.suggestion?.height ?? 0 },
      CAL,
      { totalBytes: 8 * 2 ** 30 },
    )
    expect(check.fits).toBe(true)
  })
})

describe('estimate through the CLI (tiny SD 1.5)', () => {
  let tmp = ''
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-estimate-'))
  })
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

  it('calibrates once (cached in the data folder) and stays within bounds of a measured run', async () => {
    const out: string[] = []
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out.push(String(s))
      return true
    })
    const args = [
      '--model',
      TINY,
      '--prompt',
      'a cat',
      '--steps',
      '6',
      '--width',
      '256',
      '--height',
      '256',
      '--seed',
      '1',
      '--home',
      path.join(tmp, 'home'),
      '--cache',
      path.join(tmp, 'cache'),
      '--tokenizer',
      BPE,
      '--quiet',
    ]
    let measured = 0
    try {
      expect(await runCli(['txt2img', ...args, '--estimate', '--calibrate'])).toBe(0)
      expect(fs.existsSync(path.join(tmp, 'home', 'calibration.json'))).toBe(true)
      out.length = 0
      expect(await runCli(['txt2img', ...args, '--estimate'])).toBe(0)
      const t0 = performance.now()
      expect(await runCli(['txt2img', ...args, '--out', path.join(tmp, 'o.png')])).toBe(0)
      measured = (performance.now() - t0) / 1000
    } finally {
      spy.mockRestore()
    }
    const text = out.join('')
    expect(text).toMatch(/Estimate: .* for 256x256 sd-1 on cpu\n/)
    expect(text).not.toMatch(/uncalibrated/)
    expect(text).toMatch(/6 steps x /)
    const m = /Estimate: (\d+(?:\.\d+)?) s/.exec(text)
    const estimated = Number(m?.[1])
    expect(estimated).toBeGreaterThan(0)
    // A real run also starts a worker, hashes and tokenizes: generous bounds on a shared machine.
    expect(estimated / measured).toBeGreaterThan(0.1)
    expect(estimated / measured).toBeLessThan(10)
  }, 300_000)

  it('the service estimates a request; the first generation calibrates this machine for later estimates', async () => {
    const bus = new EventBus()
    const jobs = new JobManager(bus)
    const calibrationFile = path.join(tmp, 'svc', 'calibration.json')
    const service = new GenerationService({
      bus,
      jobs,
      gallery: new GalleryStore(path.join(tmp, 'svc', 'outputs'), readImageParameters),
      resolvers: createResolvers({ roots: [] }),
      cacheRoot: path.join(tmp, 'svc', 'cache'),
      calibrationFile,
      appVersion: 'test',
      tokenizer: BPE,
    })
    try {
      const req = {
        mode: 'txt2img' as const,
        model: TINY,
        prompt: 'a cat',
        steps: 3,
        width: 64,
        height: 64,
        seed: 2,
      }
      const before = await service.estimate(req)
      expect(before).toMatchObject({ calibrated: false, family: 'sd-1', width: 64, height: 64, fits: true })
      const done = new Promise<void>((resolve) =>
        bus.subscribe((e) => {
          if (e.name === 'generate:finished') resolve()
        }),
      )
      await service.start(req)
      await done
      expect(fs.existsSync(calibrationFile)).toBe(true)
      const after = await service.estimate(req)
      expect(after.calibrated).toBe(true)
      expect(after.stepsRun).toBe(3)
      expect(after.seconds).toBeGreaterThan(0)
    } finally {
      jobs.dispose()
      await service.dispose()
    }
  }, 300_000)
})
