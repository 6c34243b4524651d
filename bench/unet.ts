import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { buildUnet } from '../main/engine/graphs/unet'
import type { UnetBuildOptions } from '../main/engine/graphs/unet'
import { sessionOptions } from '../main/engine/runtime/session'
import { ensureFullSd15 } from './fixtures/full-sd15'
import {
  benchDir,
  loadAverage,
  MatmulCeiling,
  median,
  unetFlops,
  unetWeightsFromCheckpoint,
} from './unet-common'

/**
 * One SD 1.5 UNet evaluation at 512x512 (latent 64x64), batch 2 (CFG), 77 context tokens, fp32 on the CPU
 * provider: median of `--runs` (default 3) after `--warmup` (default 2), achieved GFLOP/s against the FLOP
 * count of the architecture, and the machine's ceiling (a 4096^3 fp32 MatMul through ORT, timed right
 * before and after every UNet run so that both see the same load; `of_ceiling_paired_median` is the median
 * of those per-run ratios; `of_ceiling_cpu_time_median` does the same with CPU seconds of the process, which
 * other processes' load disturbs less, though thread-pool spinning counts as work). Graph variants are compared with `--variants a,b` (see VARIANTS). Prints JSON.
 *
 *   npx tsx bench/unet.ts [--variants export,default] [--threads N] [--runs 3] [--warmup 2] [--size 64]
 */

const VARIANTS: Record<string, UnetBuildOptions> = {
  // What a plain PyTorch export gives: unfused attention, GroupNorm as Reshape/InstanceNorm/Reshape, GEGLU
  // as one MatMul + Split.
  export: { attention: 'unfused', groupNorm: 'instance', geglu: 'split' },
  'export+mha': { attention: 'mha', groupNorm: 'instance', geglu: 'split' },
  'native-gn': { attention: 'mha', groupNorm: 'native', geglu: 'sliced' },
  // The defaults of buildUnet.
  default: {},
  'conv-ff': { geglu: 'conv' },
  'conv-ff+gemm': { geglu: 'conv', linear: 'gemm' },
  gemm: { linear: 'gemm' },
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

/** Seconds per run by op type from the newest ORT profile in dir (kernel time of the node events). */
function profileByOp(dir: string, runs: number): Record<string, number> {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('profile') && f.endsWith('.json'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)
  const newest = files[0]
  if (!newest) return {}
  const events = JSON.parse(fs.readFileSync(newest, 'utf8')) as {
    cat?: string
    name?: string
    dur?: number
    args?: { op_name?: string }
  }[]
  const by: Record<string, number> = {}
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time')) continue
    const op = e.args?.op_name ?? '?'
    by[op] = (by[op] ?? 0) + (e.dur ?? 0) / 1e6 / runs
  }
  for (const f of files) fs.rmSync(f)
  return Object.fromEntries(
    Object.entries(by)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => [k, +v.toFixed(3)]),
  )
}

async function main(): Promise<void> {
  const variants = arg('variants', 'export,default').split(',')
  const runs = Number(arg('runs', '3'))
  const warmup = Number(arg('warmup', '2'))
  const size = Number(arg('size', '64'))
  const batch = Number(arg('batch', '2'))
  const profile = process.argv.includes('--profile')
  const ctxLen = 77
  const file = ensureFullSd15()
  const opts = sessionOptions('cpu', { threads: Number(arg('threads', '0')) || undefined })
  const log = (m: string): void => void process.stderr.write(`${m}\n`)
  const results: Record<string, unknown>[] = []
  let flops = 0
  const ceiling = await MatmulCeiling.open(opts)
  const ceilings: number[] = []
  const cpuCeilings: number[] = []
  for (const name of variants) {
    const v = VARIANTS[name]
    if (!v) throw new Error(`unknown variant ${name} (have ${Object.keys(VARIANTS).join(', ')})`)
    const dir = benchDir(`unet-${name}`)
    const w = await unetWeightsFromCheckpoint(file, dir)
    const t0 = performance.now()
    const { graph, config } = buildUnet(w, v)
    const modelPath = path.join(dir, 'model.onnx')
    fs.writeFileSync(modelPath, graph.encode())
    w.close()
    const buildS = (performance.now() - t0) / 1000
    const count = unetFlops(config, batch, size, size, ctxLen)
    flops = count.total
    const t1 = performance.now()
    const profilePrefix = path.join(dir, 'profile')
    const sess = await ort.InferenceSession.create(
      modelPath,
      profile ? { ...opts, enableProfiling: true, profileFilePrefix: profilePrefix } : opts,
    )
    const loadS = (performance.now() - t1) / 1000
    const feeds = {
      sample: new ort.Tensor(
        'float32',
        new Float32Array(batch * 4 * size * size).map((_, i) => Math.sin(i)),
        [batch, 4, size, size],
      ),
      timestep: new ort.Tensor('float32', Float32Array.of(500), [1]),
      encoder_hidden_states: new ort.Tensor(
        'float32',
        new Float32Array(batch * ctxLen * config.crossAttentionDim).map((_, i) => Math.cos(i)),
        [batch, ctxLen, config.crossAttentionDim],
      ),
    }
    const times: number[] = []
    const cpuTimes: number[] = []
    const ratios: number[] = []
    const cpuRatios: number[] = []
    let finite = true
    for (let i = 0; i < warmup + runs; i++) {
      const before = i >= warmup ? await ceiling.measure() : undefined
      const c0 = process.cpuUsage()
      const t = performance.now()
      const out = await sess.run(feeds)
      const s = (performance.now() - t) / 1000
      const cu = process.cpuUsage(c0)
      const cpu = (cu.user + cu.system) / 1e6
      finite &&= (out.eps?.data as Float32Array).every(Number.isFinite)
      if (before) {
        const after = await ceiling.measure()
        ceilings.push(before.wall, after.wall)
        cpuCeilings.push(before.cpu, after.cpu)
        times.push(s)
        cpuTimes.push(cpu)
        ratios.push(count.total / s / 1e9 / ((before.wall + after.wall) / 2))
        cpuRatios.push(count.total / cpu / 1e9 / ((before.cpu + after.cpu) / 2))
      }
      log(`${name}: run ${i + 1}/${warmup + runs} ${s.toFixed(2)} s${i < warmup ? ' (warm-up)' : ''}`)
    }
    let byOp: Record<string, number> | undefined
    if (profile) {
      sess.endProfiling()
      byOp = profileByOp(dir, runs + warmup)
    }
    await sess.release()
    const med = median(times)
    results.push({
      variant: name,
      options: v,
      nodes: graph.nodeCount,
      build_s: +buildS.toFixed(2),
      session_create_s: +loadS.toFixed(2),
      runs_s: times.map((t) => +t.toFixed(3)),
      median_s: +med.toFixed(3),
      gflops: +(count.total / med / 1e9).toFixed(1),
      best_gflops: +(count.total / Math.min(...times) / 1e9).toFixed(1),
      of_ceiling_paired_median: +median(ratios).toFixed(3),
      cpu_s: cpuTimes.map((t) => +t.toFixed(2)),
      gflops_per_cpu_s: +(count.total / median(cpuTimes) / 1e9).toFixed(1),
      of_ceiling_cpu_time_median: +median(cpuRatios).toFixed(3),
      finite,
      ...(byOp ? { profile_s_per_run_by_op: byOp } : {}),
      load_average: loadAverage(),
    })
  }
  await ceiling.release()
  const ceilingMedian = median(ceilings)
  const out = {
    bench: 'unet',
    checkpoint: file,
    shape: { batch, latent: [size, size], context: ctxLen },
    threads: opts.intraOpNumThreads,
    flops: {
      total: flops,
      tflop: +(flops / 1e12).toFixed(3),
      method:
        'sum of 2 x MACs of every conv, Linear/1x1 projection and attention product; norms/activations not counted',
    },
    ceiling: {
      what: `${ceiling.n}^3 fp32 MatMul through ORT, one run before and one after every timed UNet run`,
      gflops_median: +ceilingMedian.toFixed(1),
      gflops_max: +Math.max(...ceilings).toFixed(1),
      gflops_per_cpu_s_median: +median(cpuCeilings).toFixed(1),
      runs: ceilings.map((c) => +c.toFixed(1)),
    },
    results: results.map((r) => ({
      ...r,
      of_ceiling: +((r.gflops as number) / ceilingMedian).toFixed(3),
    })),
    load_average: loadAverage(),
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
}

await main()
