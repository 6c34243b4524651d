import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describeArch, detectArch } from '../main/model-formats/probe/upscaler'
import { upscalerMacs } from '../main/engine/upscale/graph'
import { UpscalerModel } from '../main/engine/upscale/model'
import type { FloatImage } from '../main/engine/upscale/model'
import type { LoadedTensor, UpscalerWeights } from '../main/engine/upscale/weights'
import { enhanceUint8, planTiles } from '../main/engine/upscale/tiling'
import { physicalCores } from '../main/engine/runtime/providers'
import { sessionOptions } from '../main/engine/runtime/session'
import { MatmulCeiling } from './unet-common'
import { log, machine } from './pipeline-timing'

/**
 * Upscaler and hires-fix bench, one JSON object on stdout.
 *
 * 1. A full-size RRDBNet x4 (64 features, 23 blocks, growth 32: the Real-ESRGAN x4plus / ESRGAN topology)
 *    with random weights upscales a 512x512 picture on CPU, untiled and tiled (256 px tiles, 10 px pad),
 *    each in its own child process so peak RSS is per mode: wall time, peak RSS, the FLOP count (useful:
 *    the 512x512 forward pass; executed: including the tiles' context), achieved GFLOP/s, and the machine's
 *    fp32 GEMM ceiling (an n^3 MatMul through ORT) measured in the same run.
 * 2. Hires fix 512 -> 1024 (latent upscaler, strength 0.5) with the random full-size SD 1.5
 *    (bench/fixtures/full-sd15.ts) through the studio pipeline, split into parts (`--hires` to run it; it
 *    takes several minutes on a small CPU).
 *
 *   npx tsx bench/upscale.ts [--size 512] [--tile 256] [--tile-pad 10] [--hires | --only-hires] [--hires-steps 4]
 */

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}

const size = arg('--size', 512)
const tile = arg('--tile', 256)
const tilePad = arg('--tile-pad', 10)

function image(n: number): FloatImage {
  const data = new Float32Array(3 * n * n)
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      data[y * n + x] = x / n
      data[n * n + y * n + x] = y / n
      data[2 * n * n + y * n + x] = (x ^ y) & 16 ? 0.8 : 0.2
    }
  return { data, channels: 3, height: n, width: n }
}

/** Random full-size RRDBNet x4 weights (BasicSR init: kaiming-uniform x0.1 in the RDBs, so activations stay bounded). */
function fullRrdbWeights(seed: number, nf = 64, nb = 23, gc = 32): UpscalerWeights {
  let s = seed >>> 0 || 1
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
  const tensors = new Map<string, LoadedTensor>()
  const conv = (name: string, out: number, inp: number, gain: number): void => {
    const bound = gain * Math.sqrt(6 / (inp * 9))
    const w = new Float32Array(out * inp * 9)
    for (let i = 0; i < w.length; i++) w[i] = (rand() * 2 - 1) * bound
    tensors.set(`${name}.weight`, { shape: [out, inp, 3, 3], data: w })
    tensors.set(`${name}.bias`, { shape: [out], data: new Float32Array(out) })
  }
  conv('conv_first', nf, 3, 1)
  for (let n = 0; n < nb; n++)
    for (let m = 1; m <= 3; m++)
      for (let k = 1; k <= 5; k++) conv(`body.${n}.rdb${m}.conv${k}`, k < 5 ? gc : nf, nf + (k - 1) * gc, 0.1)
  conv('conv_body', nf, nf, 1)
  conv('conv_up1', nf, nf, 1)
  conv('conv_up2', nf, nf, 1)
  conv('conv_hr', nf, nf, 1)
  conv('conv_last', 3, nf, 1)
  const { arch, canonical } = detectArch(tensors, 'random-RRDBNet_x4.pth')
  const out = new Map<string, LoadedTensor>()
  for (const [from, to] of canonical) out.set(to, tensors.get(from) as LoadedTensor)
  return { file: 'random-RRDBNet_x4.pth', arch, tensors: out }
}

/** Child: one upscale in a fresh process (peak RSS belongs to this mode alone). */
async function child(mode: 'untiled' | 'tiled'): Promise<void> {
  const t0 = performance.now()
  const weights = fullRrdbWeights(1)
  const model = await UpscalerModel.fromWeights(weights, { preference: 'cpu' })
  const loadMs = performance.now() - t0
  const arch = weights.arch
  const img = image(size)
  const t = mode === 'tiled' ? tile : 0
  const tiles = planTiles(size, size, t, tilePad)
  const executed = tiles.reduce((s, r) => s + 2 * upscalerMacs(arch, r.py1 - r.py0, r.px1 - r.px0), 0)
  const c0 = process.cpuUsage()
  const t1 = performance.now()
  const out = await enhanceUint8(model, img, { tile: t, tilePad, prePad: 0 })
  const wallMs = performance.now() - t1
  const cpu = process.cpuUsage(c0)
  const useful = 2 * upscalerMacs(arch, size, size)
  process.stdout.write(
    JSON.stringify({
      mode,
      arch: describeArch(weights.arch),
      parameters: [...weights.tensors.values()].reduce((n, t) => n + t.data.length, 0),
      output: `${out.width}x${out.height}`,
      tiles: tiles.length,
      modelLoadMs: Math.round(loadMs),
      wallMs: Math.round(wallMs),
      cpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(1),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      gflopUseful: +(useful / 1e9).toFixed(1),
      gflopExecuted: +(executed / 1e9).toFixed(1),
      gflopsUseful: +(useful / (wallMs / 1000) / 1e9).toFixed(1),
      gflopsExecuted: +(executed / (wallMs / 1000) / 1e9).toFixed(1),
      // Per CPU-second of this process (all threads): fairer than wall time on a loaded machine.
      gflopsPerCpuSecond: +(executed / ((cpu.user + cpu.system) / 1e6) / 1e9).toFixed(1),
    }),
  )
  await model.release()
}

function runChild(mode: string): Record<string, unknown> {
  const self = fileURLToPath(import.meta.url)
  const r = spawnSync(
    process.execPath,
    [...process.execArgv, self, '--child', mode, ...process.argv.slice(2)],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  if (r.status !== 0) throw new Error(`${mode} child failed (${r.status})`)
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>
}

async function hiresBench(): Promise<Record<string, unknown>> {
  const { withDefaults } = await import('../main/engine/pipelines/generate')
  const { prepareFullModel, timedRun } = await import('./pipeline-timing')
  const steps = arg('--hires-steps', 4)
  const p = await prepareFullModel()
  try {
    const req = withDefaults({
      mode: 'txt2img',
      model: 'bench',
      prompt: 'a lighthouse at dusk',
      width: 512,
      height: 512,
      steps,
      sampler: 'Euler a',
      cfgScale: 7,
      hires: { scale: 2, upscaler: 'Latent', strength: 0.5, steps },
    })
    log('hires fix 512 -> 1024 ...')
    const run = await timedRun(p, req)
    const split = run.split as { unetStepsMs: number[] }
    const first = split.unetStepsMs.slice(0, steps)
    const second = split.unetStepsMs.slice(steps)
    return {
      params: {
        base: '512x512',
        target: '1024x1024',
        steps,
        hiresSteps: steps,
        upscaler: 'Latent',
        strength: 0.5,
        sampler: 'Euler a',
        cfg: 7,
      },
      ...run,
      parts: {
        firstPassUnetMs: first.reduce((a, b) => a + b, 0),
        secondPassUnetMs: second.reduce((a, b) => a + b, 0),
      },
    }
  } finally {
    await p.set.release()
  }
}

async function main(): Promise<void> {
  const ci = process.argv.indexOf('--child')
  if (ci >= 0) return child(process.argv[ci + 1] === 'tiled' ? 'tiled' : 'untiled')
  const threads = physicalCores()
  if (process.argv.includes('--only-hires')) {
    process.stdout.write(
      `${JSON.stringify({ bench: 'upscale', machine: machine(), hires: await hiresBench() }, null, 1)}\n`,
    )
    return
  }
  log(`GEMM ceiling (${threads} threads) ...`)
  const ceiling = await MatmulCeiling.open(sessionOptions('cpu'), 2048)
  const before = await ceiling.measure()
  log(`RRDBNet x4 ${size}x${size} untiled ...`)
  const untiled = runChild('untiled')
  log(`RRDBNet x4 ${size}x${size} tiled (${tile} px, pad ${tilePad}) ...`)
  const tiled = runChild('tiled')
  const after = await ceiling.measure()
  await ceiling.release()
  const peak = Math.max(before.wall, after.wall)
  const share = (r: Record<string, unknown>): number => +((100 * Number(r.gflopsExecuted)) / peak).toFixed(1)
  const peakCpu = Math.max(before.cpu, after.cpu)
  const shareCpu = (r: Record<string, unknown>): number =>
    +((100 * Number(r.gflopsPerCpuSecond)) / peakCpu).toFixed(1)
  const hires = process.argv.includes('--hires')
    ? await hiresBench()
    : { skipped: 'run with --hires (several minutes)' }
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'upscale',
        machine: machine(),
        threads,
        input: `${size}x${size}`,
        tiling: { tile, tilePad },
        gemmCeilingGflops: {
          n: 2048,
          wall: [+before.wall.toFixed(1), +after.wall.toFixed(1)],
          perCpuSecond: [+before.cpu.toFixed(1), +after.cpu.toFixed(1)],
        },
        untiled: { ...untiled, percentOfCeiling: share(untiled), percentOfCeilingPerCpu: shareCpu(untiled) },
        tiled: { ...tiled, percentOfCeiling: share(tiled), percentOfCeilingPerCpu: shareCpu(tiled) },
        hires,
      },
      null,
      1,
    )}\n`,
  )
}

await main()
