import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { runReference } from '../main/engine/reference/run'
import { testProvider } from '../main/engine/runtime/provider-check'
import type { ProviderName } from '../main/engine/runtime/providers'
import { openSession } from '../main/engine/runtime/session'
import { webGpuProbe } from '../main/engine/runtime/webgpu'
import { convertCheckpoint } from '../main/engine/convert/convert'
import { repoRoot } from '../main/platform/paths'
import { ensureFullSd15 } from './fixtures/full-sd15'
import { ensureFullSdxl } from './fixtures/full-sdxl'
import { benchDir, loadAverage, median } from './unet-common'

/**
 * GPU numbers on a machine with a GPU (bench/gpu.sh runs this): for each provider in `--providers`
 * (default cuda,webgpu)
 * - `test`: the Settings "Test" graph (does the provider open, its time);
 * - `oracle`: every case of every ../shared/oracle* set through `atelier reference` on that provider, in
 *   fp32 and in fp16 compute (the fp16 rule of engine/reference/tolerance.ts for what fp16 graphs
 *   produced): pass/fail counts, failing cases, seconds;
 * - `step`: one UNet evaluation, SD 1.5 at 512x512 batch 2 and SDXL at 1024x1024 batch 2 (random-weight
 *   full-size checkpoints from bench/fixtures): fp32 (fp32 weights, fp32 compute) and fp16 (fp16 weights,
 *   the fp16 compute graph of runtime/fp16.ts): session creation and the median of `--runs` evaluations
 *   after one warm-up; `compute` says what actually ran (a provider without fp16 support runs fp32).
 * Prints JSON.
 *
 *   npx tsx bench/gpu.ts [--providers cuda,webgpu] [--parts test,oracle,step] [--runs 5]
 */

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

const providers = arg('providers', 'cuda,webgpu').split(',') as ProviderName[]
const parts = arg('parts', 'test,oracle,step').split(',')
const runs = Number(arg('runs', '5'))
const SETS = ['oracle', 'oracle-sdxl', 'oracle-upscale', 'oracle-ipadapter', 'oracle-kdiff', 'oracle-addons']

function rand(n: number, seed: number): Float32Array {
  let x = seed >>> 0
  return Float32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    return (x / 2 ** 32) * 2 - 1
  })
}

async function oracle(provider: ProviderName, precision: 'fp32' | 'fp16') {
  const out: Record<string, unknown> = {}
  for (const set of SETS) {
    const manifest = path.resolve(repoRoot(), '../shared', set, 'manifest.json')
    const t0 = performance.now()
    try {
      const results = await runReference(manifest, {
        out: path.join(benchDir('gpu'), `ref-${provider}-${precision}-${set}`),
        cacheRoot: path.join(benchDir('gpu'), 'cache'),
        session: { preference: provider, precision },
      })
      out[set] = {
        pass: results.filter((r) => r.status === 'pass').length,
        fail: results.filter((r) => r.status === 'fail' || r.status === 'error').map((r) => r.name),
        skipped: results.filter((r) => r.status === 'skipped').length,
        seconds: (performance.now() - t0) / 1000,
      }
    } catch (err) {
      out[set] = { error: err instanceof Error ? err.message : String(err) }
    }
  }
  return out
}

async function step(provider: ProviderName, family: 'sd15' | 'sdxl', precision: 'fp32' | 'fp16') {
  const file = family === 'sd15' ? ensureFullSd15() : ensureFullSdxl().file
  const converted = await convertCheckpoint(file, {
    cacheRoot: path.join(benchDir('gpu'), 'cache'),
    precision,
  })
  const unet = converted.paths.unet as string
  const [lat, ctxDim] = family === 'sd15' ? [64, 768] : [128, 2048]
  const t0 = performance.now()
  const opened = await openSession(unet, { preference: provider, precision }, 'unet')
  const createMs = performance.now() - t0
  try {
    const s = opened.session
    const feeds: Record<string, ort.Tensor> = {
      sample: new ort.Tensor('float32', rand(2 * 4 * lat * lat, 1), [2, 4, lat, lat]),
      timestep: new ort.Tensor('float32', Float32Array.from([500]), [1]),
      encoder_hidden_states: new ort.Tensor('float32', rand(2 * 77 * ctxDim, 2), [2, 77, ctxDim]),
    }
    if (s.inputNames.includes('text_embeds')) {
      feeds.text_embeds = new ort.Tensor('float32', rand(2 * 1280, 3), [2, 1280])
      feeds.time_ids = new ort.Tensor(
        'float32',
        Float32Array.from([1024, 1024, 0, 0, 1024, 1024, 1024, 1024, 0, 0, 1024, 1024]),
        [2, 6],
      )
    }
    await s.run(feeds)
    const times: number[] = []
    for (let i = 0; i < runs; i++) {
      const t = performance.now()
      await s.run(feeds)
      times.push(performance.now() - t)
    }
    return {
      provider: opened.provider,
      compute: opened.compute,
      skipped: opened.skipped,
      createMs,
      stepMsMedian: median(times),
      stepsMs: times,
    }
  } finally {
    await opened.session.release()
  }
}

async function main(): Promise<void> {
  const result: Record<string, unknown> = { loadAverage: loadAverage(), runs }
  for (const p of providers) {
    const r: Record<string, unknown> = {}
    if (parts.includes('test')) r.test = await testProvider(p)
    if (parts.includes('oracle'))
      for (const precision of ['fp32', 'fp16'] as const) r[`oracle_${precision}`] = await oracle(p, precision)
    if (p === 'webgpu') r.webgpuAdapter = await webGpuProbe().catch((err: unknown) => String(err))
    if (parts.includes('step'))
      for (const family of ['sd15', 'sdxl'] as const)
        for (const precision of ['fp32', 'fp16'] as const) {
          const key = `${family === 'sd15' ? 'sd15_512_b2' : 'sdxl_1024_b2'}_${precision}`
          try {
            r[key] = await step(p, family, precision)
          } catch (err) {
            r[key] = { error: err instanceof Error ? err.message : String(err) }
          }
        }
    result[p] = r
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
}

void main()
