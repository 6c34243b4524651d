import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { convertCheckpoint } from '../main/engine/convert/convert'
import type { EstimateRequest } from '../main/engine/estimate/estimate'
import { defaultCalibration, estimateRequest } from '../main/engine/estimate/estimate'
import { modelSizes } from '../main/engine/estimate/sizes'
import type { ModelSizes } from '../main/engine/estimate/sizes'
import { runStudio, withDefaults } from '../main/engine/pipelines/generate'
import { ModelSet } from '../main/engine/runtime/model-set'
import { findTokenizer } from '../main/engine/tokenizer'
import { ensureFullSd15 } from './fixtures/full-sd15'
import { ensureTinyModels } from './fixtures/tiny-models'
import { benchDir, loadAverage } from './unet-common'

/**
 * Peak memory of a generation against the pre-flight estimate (main/engine/estimate/estimate.ts). Each case
 * runs in its own process, as the generation worker does it (CPU provider, fp16 conversion-cache entry
 * through ORT's optimised-model cache, one txt2img step, VAE or TAESD-free decode), and reports the peak
 * resident set (`VmHWM`) of that process: `baseline` after imports, `loaded` after every session is
 * created, `peak` at the end. The estimate uses the conversion's own parameter counts and widths, so tiny
 * models are estimated as themselves. Prints JSON.
 *
 *   npx tsx bench/memory.ts [--cases tiny,full] [--full 512x1,512x7,768x1]
 */

const log = (m: string): void => void process.stderr.write(`${m}\n`)

interface Case {
  model: 'tiny' | 'full'
  size: number
  cfg: number
  batch: number
  lowMemory?: boolean
}

interface Measured {
  /** The UNet's optimised copy was built by this run (its first CPU session). */
  built: boolean
  baseline: number
  loaded: number
  peak: number
  sizes: ModelSizes
}

function status(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return Number(m?.[1] ?? 0) * 1024
}

async function child(c: Case): Promise<Measured> {
  const baseline = status('VmHWM')
  const file = c.model === 'tiny' ? (await ensureTinyModels()).sd15 : ensureFullSd15()
  // Tiny models (tests) convert into a temp folder; the full-size one shares the benches' cache.
  const tmp = c.model === 'tiny' ? fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-memory-')) : undefined
  const converted = await convertCheckpoint(file, {
    cacheRoot: tmp ?? benchDir('session-cache'),
    precision: 'fp16',
  })
  const sizes = modelSizes(converted.paths)
  const set = new ModelSet('memory', converted.paths, {
    preference: 'cpu',
    optimizedCache: true,
    ...(c.lowMemory ? { lowMemory: true } : {}),
  })
  if (!c.lowMemory) await set.load(['text_encoder', 'unet', 'vae_decoder'])
  const loaded = status('VmHWM')
  const built = set.graph('unet').optimized?.state === 'built'
  const tokenizer = await findTokenizer({})
  await runStudio(
    withDefaults({
      mode: 'txt2img',
      model: 'bench',
      prompt: 'a lighthouse at dusk, watercolor',
      steps: 1,
      cfgScale: c.cfg,
      sampler: 'Euler',
      width: c.size,
      height: c.size,
      batchSize: c.batch,
      seed: 1,
    }),
    1,
    { model: set, encode: (t) => tokenizer.encode(t), inpaintModel: false },
  )
  const peak = status('VmHWM')
  await set.release()
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  return { built, baseline, loaded, peak, sizes }
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

const gib = (b: number): number => +(b / 2 ** 30).toFixed(3)

async function main(): Promise<void> {
  const ci = process.argv.indexOf('--child')
  if (ci >= 0) {
    const m = await child(JSON.parse(process.argv[ci + 1] ?? '{}') as Case)
    process.stdout.write(`${JSON.stringify(m)}\n`)
    return
  }
  const which = arg('cases', 'tiny,full').split(',')
  // Full-size cases as <size>x<cfg>: CFG 1 runs the UNet on one latent, any other CFG on two.
  const full = arg('full', '512x1,512x7,768x1').split(',')
  const cases: Case[] = []
  if (which.includes('tiny'))
    for (const size of [256, 512]) cases.push({ model: 'tiny', size, cfg: 7, batch: 1 })
  if (which.includes('full'))
    for (const f of full) {
      const [size, cfg] = f.split('x').map(Number)
      cases.push({ model: 'full', size: size ?? 512, cfg: cfg ?? 1, batch: 1 })
    }
  const load0 = loadAverage()
  const self = fileURLToPath(import.meta.url)
  const rows: Record<string, unknown>[] = []
  for (const c of cases) {
    log(`memory: ${JSON.stringify(c)}…`)
    const outText = execFileSync(
      process.execPath,
      [...process.execArgv, self, '--child', JSON.stringify(c)],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 1 << 20,
      },
    )
    const m = JSON.parse(outText.trim().split('\n').pop() ?? '{}') as Measured
    const req: EstimateRequest = {
      family: 'sd-1',
      mode: 'txt2img',
      width: c.size,
      height: c.size,
      steps: 1,
      cfgScale: c.cfg,
      sampler: 'Euler',
      batchSize: c.batch,
      batchCount: 1,
      lowMemory: c.lowMemory ?? false,
      loaded: false,
      sizes: m.sizes,
      ...(m.built ? { firstLoad: true } : {}),
    }
    const e = estimateRequest(req, defaultCalibration('sd-1'), { totalBytes: os.totalmem() })
    const row = {
      case: c,
      first_load: m.built,
      baseline_gib: gib(m.baseline),
      loaded_gib: gib(m.loaded),
      peak_gib: gib(m.peak),
      estimated_peak_gib: gib(e.peakBytes),
      error_pct: +((100 * (e.peakBytes - m.peak)) / m.peak).toFixed(1),
      params: m.sizes.params,
    }
    log(`memory: ${JSON.stringify(row)}`)
    rows.push(row)
  }
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'memory',
        provider: 'cpu',
        note: 'peak = VmHWM of a process that loads the model (optimised-model cache) and runs one txt2img step',
        cores: os.cpus().length,
        totalmem_gib: gib(os.totalmem()),
        rows,
        load_average: { before: load0, after: loadAverage() },
      },
      null,
      2,
    )}\n`,
  )
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
