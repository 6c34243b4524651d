import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { calibrate } from '../main/engine/estimate/calibrate'
import type { EstimateRequest } from '../main/engine/estimate/estimate'
import { defaultCalibration, estimateRequest } from '../main/engine/estimate/estimate'
import { modelSizes } from '../main/engine/estimate/sizes'
import { runStudio, withDefaults } from '../main/engine/pipelines/generate'
import { ModelSet } from '../main/engine/runtime/model-set'
import { writeRandomTaesd } from '../main/engine/taesd/fixture'
import { TaesdModel } from '../main/engine/taesd/model'
import { findTokenizer } from '../main/engine/tokenizer'
import { convertCheckpoint } from '../main/engine/convert/convert'
import { PreviewClock } from '../main/services/generation/previews'
import { ensureFullSd15 } from './fixtures/full-sd15'
import { fullSdxlPath } from './fixtures/full-sdxl'
import { benchDir, loadAverage } from './unet-common'

/**
 * Estimates against measured runs on the random full-size SD 1.5 (CPU provider, fp16 cache entry through the
 * optimised-model cache, as generation opens it), all in one process:
 *
 * 1. calibration (bench of its own: session creation, one text encoding, UNet at 32x32 latents, VAE decode);
 * 2. a txt2img at `--size` (default 512) with `--steps` (default 4) steps at CFG 1 — the cost of a 4-step
 *    LCM / Lightning / Turbo run (one UNet evaluation per step) — estimated, then measured twice: with the
 *    linear latent previews, and with TAESD previews (random full-width TAESD, 64 channels) on the
 *    preview clock; their difference per step is the TAESD preview overhead;
 * 3. the same request at 20 steps, CFG 7, Euler a (two evaluations per step) — estimated, and measured
 *    only with `--full` (about 10x longer).
 *
 * Peak memory is the process's VmHWM. `sdxl`: the 1024² estimates, and why no SDXL run is measured here.
 *
 * Prints JSON. Run alone: the sessions need about 5 GiB.
 *
 *   npx tsx bench/estimate.ts [--size 512] [--steps 4] [--full]
 */

const log = (m: string): void => void process.stderr.write(`${m}\n`)

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

const r2 = (x: number): number => +x.toFixed(2)

/** Peak resident set of this process so far (Linux VmHWM; current RSS elsewhere). */
function peakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
    if (m) return Number(m[1]) * 1024
  } catch {
    // not Linux
  }
  return process.memoryUsage().rss
}

/**
 * SDXL: estimates of a 1024² 20-step Euler a CFG 7 job (normal and low-memory mode) on this machine's SD 1.5
 * speed scaled by FLOPs (no SDXL calibration here). Measured only where the random full-size SDXL fixture
 * exists (`bench/fixtures/full-sdxl.ts`, 6.9 GB) and the machine has the memory: its UNet alone is 10.3 GB in
 * fp32, 18.5 GB while the first session folds the fp16 weights.
 */
function sdxlSection(): Record<string, unknown> {
  const req: EstimateRequest = {
    family: 'sdxl',
    mode: 'txt2img',
    width: 1024,
    height: 1024,
    steps: 20,
    cfgScale: 7,
    sampler: 'Euler a',
    batchSize: 1,
    batchCount: 1,
    lowMemory: false,
    loaded: false,
  }
  const cal = defaultCalibration('sdxl')
  const memory = { totalBytes: os.totalmem() }
  const e = estimateRequest(req, cal, memory)
  const lean = estimateRequest({ ...req, lowMemory: true }, cal, memory)
  const first = estimateRequest({ ...req, firstLoad: true }, cal, memory)
  const have = fs.existsSync(fullSdxlPath())
  return {
    request: '1024x1024, 20 steps, Euler a, CFG 7',
    estimated_peak_gib: r2(e.peakBytes / 2 ** 30),
    estimated_first_load_peak_gib: r2(first.peakBytes / 2 ** 30),
    estimated_low_memory_peak_gib: r2(lean.peakBytes / 2 ** 30),
    fits: e.fits,
    suggestion: e.suggestion ?? null,
    measured: null,
    why_not_measured: have
      ? 'the fixture exists, but a measured SDXL run is not part of this bench yet'
      : `no random full-size SDXL fixture at ${fullSdxlPath()} (generating it writes 6.9 GB; its first fp32 ` +
        `session needs ~${r2(first.peakBytes / 2 ** 30)} GiB of ${r2(os.totalmem() / 2 ** 30)} GiB)`,
  }
}

async function main(): Promise<void> {
  const size = Number(arg('size', '512'))
  const steps = Number(arg('steps', '4'))
  const full = process.argv.includes('--full')
  const load0 = loadAverage()
  const file = ensureFullSd15()
  // As generation opens it: the fp16 entry through ORT's optimised-model cache.
  const converted = await convertCheckpoint(file, { cacheRoot: benchDir('session-cache'), precision: 'fp16' })
  const sizes = modelSizes(converted.paths)
  const tokenizer = await findTokenizer({})
  const set = new ModelSet('bench', converted.paths, { preference: 'cpu', optimizedCache: true })
  log('estimate: calibrating…')
  const cal = await calibrate(set, 'sd-1')
  log(`estimate: calibration ${JSON.stringify(cal)}`)

  const taesdFile = path.join(benchDir('taesd'), 'taesd-random.safetensors')
  if (!fs.existsSync(taesdFile)) await writeRandomTaesd(taesdFile, { width: 64, seed: 1 })
  const taesd = await TaesdModel.load(taesdFile)

  const base: EstimateRequest = {
    family: 'sd-1',
    mode: 'txt2img',
    width: size,
    height: size,
    steps,
    cfgScale: 1,
    sampler: 'Euler a',
    batchSize: 1,
    batchCount: 1,
    lowMemory: false,
    loaded: true,
    sizes,
  }
  const memory = { totalBytes: os.totalmem() }

  const run = async (
    req: EstimateRequest,
    preview: 'approx' | 'taesd' | 'none',
  ): Promise<{ seconds: number; stepMs: number[]; previews: number; previewMs: number }> => {
    const clock = new PreviewClock(preview === 'taesd' ? 'taesd' : 'approx')
    const stepMs: number[] = []
    let last = performance.now()
    const t0 = performance.now()
    await runStudio(
      withDefaults({
        mode: 'txt2img',
        model: 'bench',
        prompt: 'a lighthouse at dusk, watercolor',
        steps: req.steps,
        cfgScale: req.cfgScale,
        sampler: req.sampler,
        width: req.width,
        height: req.height,
        seed: 1,
      }),
      1,
      {
        model: set,
        encode: (t) => tokenizer.encode(t),
        inpaintModel: false,
        onProgress: async (p) => {
          if (preview === 'taesd' && clock.due(p.step, p.total))
            await clock.time(() => taesd.previewPng(p.latents, p.shape.width, p.shape.height))
          const now = performance.now()
          stepMs.push(now - last)
          last = now
        },
      },
    )
    return {
      seconds: (performance.now() - t0) / 1000,
      stepMs,
      previews: clock.count,
      previewMs: clock.totalMs,
    }
  }

  const out: Record<string, unknown> = {
    bench: 'estimate',
    model: 'random full-size SD 1.5, fp16 cache entry through the optimised-model cache, CPU provider',
    cores: os.cpus().length,
    calibration: cal,
  }
  const cases: Record<string, unknown>[] = []
  const measure = async (label: string, req: EstimateRequest, preview: 'none' | 'taesd'): Promise<number> => {
    const e = estimateRequest(req, cal, memory)
    log(`estimate: ${label}: estimated ${e.seconds.toFixed(1)} s; running…`)
    const m = await run(req, preview)
    const stepS = m.stepMs.map((x) => x / 1000)
    cases.push({
      case: label,
      estimated_s: r2(e.seconds),
      measured_s: r2(m.seconds),
      error_pct: r2((100 * (e.seconds - m.seconds)) / m.seconds),
      estimated_step_s: r2(e.stepSeconds),
      measured_step_s: stepS.map(r2),
      estimated_peak_gib: r2(e.peakBytes / 2 ** 30),
      measured_peak_gib: r2(peakRss() / 2 ** 30),
      ...(preview === 'taesd' ? { taesd_previews: m.previews, taesd_preview_ms_total: r2(m.previewMs) } : {}),
    })
    log(`estimate: ${label}: measured ${m.seconds.toFixed(1)} s`)
    return m.seconds
  }
  const plain = await measure(
    `${size}px ${steps} steps CFG 1 (few-step cost), linear previews off`,
    base,
    'none',
  )
  const withTaesd = await measure(`${size}px ${steps} steps CFG 1, TAESD previews`, base, 'taesd')
  out.taesd_preview_overhead_per_step_s = r2((withTaesd - plain) / steps)
  out.taesd_preview_overhead_pct = r2((100 * (withTaesd - plain)) / plain)
  // One TAESD preview decode at this size, alone.
  const z = new Float32Array(4 * (size / 8) ** 2).map((_, i) => Math.sin(i))
  await taesd.previewPng(z, size / 8, size / 8)
  const t = performance.now()
  await taesd.previewPng(z, size / 8, size / 8)
  out.taesd_preview_decode_s = r2((performance.now() - t) / 1000)

  const euler20: EstimateRequest = { ...base, steps: 20, cfgScale: 7, sampler: 'Euler a' }
  const e20 = estimateRequest(euler20, cal, memory)
  const eFew = estimateRequest(base, cal, memory)
  out.few_step_vs_20_step = {
    few_step_measured_s: r2(plain),
    few_step_estimated_s: r2(eFew.seconds),
    euler_a_20_estimated_s: r2(e20.seconds),
    ...(full
      ? { euler_a_20_measured_s: r2(await measure(`${size}px 20 steps CFG 7 Euler a`, euler20, 'none')) }
      : {}),
  }
  out.cases = cases
  out.sdxl = sdxlSection()
  out.load_average = { before: load0, after: loadAverage() }
  await taesd.release()
  await set.release()
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
