import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { Fp32Weights } from '../main/engine/graphs/fp32-weights'
import { buildUnet } from '../main/engine/graphs/unet'
import { sessionOptions } from '../main/engine/runtime/session'
import { convertCheckpoint } from '../main/engine/convert/convert'
import type { ConvertedModel } from '../main/engine/convert/convert'
import { onnx } from '../main/model-formats/onnx/builder'
import { ensureFullSd15, FULL_SD15, fullSd15Path, writeSd15 } from './fixtures/full-sd15'
import { benchDir, loadAverage, unetWeightsFromCheckpoint } from './unet-common'

/**
 * Session creation of the full-size SD 1.5 UNet (random weights, bench/fixtures/full-sd15.ts) on the CPU
 * provider, for each way of storing its weights, beside a "plain export" peer built in the same run:
 *
 * - `peer`: what `torch.onnx.export` of the fp32 module gives (unfused attention, GroupNorm as
 *   InstanceNorm, GEGLU as MatMul + Split, fp32 initializers, Linear weights stored transposed).
 * - `fp16`: the conversion cache's fp16 entry (weights hard-linked into the checkpoint, a Cast per weight
 *   folded into fp32 copies while the session is created): what every session paid before.
 * - `fp32`: the fp32 entry (weights cast once at conversion): what CPU sessions use now.
 * - `ort-optimized`: ORT's own optimised model, saved once (`optimizedModelFilePath` with external
 *   initializers) from the fp16 graph, loaded instead of it.
 *
 * Each is timed cold (its files dropped from the page cache first, `dd iflag=nocache`) and warm (created
 * again right after); a first and second UNet run (batch 1, 64x64 latents) show that no work was deferred
 * to the first run. Warm switch: two converted models A and B (the same architecture, other seeds), B
 * loaded while A is released, beside the time to read B's weight bytes from disk (cold) and from the page
 * cache. Disk use is stated per entry. Prints JSON. Run alone: every session is 3-5 GiB.
 *
 *   npx tsx bench/session.ts [--options peer,fp16,fp32,ort-optimized] [--no-switch] [--no-runs]
 */

const log = (m: string): void => void process.stderr.write(`${m}\n`)

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

/** Files a graph reads: the model file and every external-data file it names. */
function graphFiles(modelPath: string): string[] {
  const m = onnx.ModelProto.decode(fs.readFileSync(modelPath))
  const dir = path.dirname(modelPath)
  const files = new Set<string>([modelPath])
  for (const t of m.graph?.initializer ?? [])
    for (const e of t.externalData ?? [])
      if (e.key === 'location' && e.value) files.add(path.join(dir, e.value))
  return [...files]
}

function bytesOf(files: string[]): number {
  return files.reduce((a, f) => a + fs.statSync(f).size, 0)
}

/** Drops the files from the page cache (GNU dd: iflag=nocache with count=0 advises the whole file). */
function dropCache(files: string[]): void {
  // Dirty pages (a file written moments ago) cannot be dropped: write them back first.
  execFileSync('sync')
  for (const f of files) execFileSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' })
}

function readAll(files: string[]): number {
  const t = performance.now()
  const buf = new Uint8Array(16 << 20)
  for (const f of files) {
    const fd = fs.openSync(f, 'r')
    try {
      while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
    } finally {
      fs.closeSync(fd)
    }
  }
  return (performance.now() - t) / 1000
}

const s1 = (x: number): number => +x.toFixed(2)

interface Timed {
  create_s: number
  first_run_s?: number
  second_run_s?: number
  rss_gib: number
}

async function create(modelPath: string, runs: boolean): Promise<Timed> {
  const t = performance.now()
  const sess = await ort.InferenceSession.create(modelPath, sessionOptions('cpu'))
  const createS = (performance.now() - t) / 1000
  const out: Timed = { create_s: s1(createS), rss_gib: s1(process.memoryUsage().rss / 2 ** 30) }
  if (runs) {
    const feeds = {
      sample: new ort.Tensor('float32', new Float32Array(4 * 64 * 64).fill(0.1), [1, 4, 64, 64]),
      timestep: new ort.Tensor('float32', Float32Array.of(500), [1]),
      encoder_hidden_states: new ort.Tensor('float32', new Float32Array(77 * 768).fill(0.01), [1, 77, 768]),
    }
    const r: number[] = []
    for (let i = 0; i < 2; i++) {
      const t1 = performance.now()
      await sess.run(feeds)
      r.push((performance.now() - t1) / 1000)
    }
    out.first_run_s = s1(r[0] as number)
    out.second_run_s = s1(r[1] as number)
  }
  await sess.release()
  return out
}

/** The plain-export peer: torch.onnx.export's graph forms and fp32 initializers (Linear stored transposed). */
async function peerGraph(file: string): Promise<string> {
  const dir = benchDir('session-peer')
  const modelPath = path.join(dir, 'model.onnx')
  if (fs.existsSync(modelPath)) return modelPath
  const base = await unetWeightsFromCheckpoint(file, dir)
  const w = new Fp32Weights(new Map(base.names().map((n) => [n, base.source(n)])), dir, {
    transposeLinear: true,
  })
  const { graph } = buildUnet(w, { attention: 'unfused', groupNorm: 'instance', geglu: 'split' })
  fs.writeFileSync(`${modelPath}.tmp`, graph.encode())
  w.close()
  fs.renameSync(`${modelPath}.tmp`, modelPath)
  return modelPath
}

/** ORT's optimised form of a graph, saved once beside a copy of nothing (its initializers in one file). */
async function ortOptimized(from: string): Promise<{ path: string; build_s?: number }> {
  const dir = benchDir('session-ort-optimized')
  const modelPath = path.join(dir, 'model.onnx')
  if (fs.existsSync(modelPath)) return { path: modelPath }
  const t = performance.now()
  const sess = await ort.InferenceSession.create(from, {
    ...sessionOptions('cpu'),
    optimizedModelFilePath: modelPath,
    extra: {
      session: {
        optimized_model_external_initializers_file_name: 'weights.bin',
        optimized_model_external_initializers_min_size_in_bytes: '1024',
      },
    },
  })
  await sess.release()
  return { path: modelPath, build_s: s1((performance.now() - t) / 1000) }
}

async function converted(file: string, precision: 'fp16' | 'fp32', cacheRoot: string) {
  const t = performance.now()
  const c = await convertCheckpoint(file, { cacheRoot, precision })
  return { c, s: (performance.now() - t) / 1000 }
}

function secondCheckpoint(): string {
  const file = fullSd15Path().replace(/\.safetensors$/, '-b.safetensors')
  if (!fs.existsSync(file)) {
    log(`session: writing a second random SD 1.5 (seed 2) to ${file}`)
    writeSd15(file, FULL_SD15, 2)
  }
  return file
}

async function main(): Promise<void> {
  const options = arg('options', 'peer,fp16,fp32,ort-optimized').split(',')
  const runs = !process.argv.includes('--no-runs')
  const doSwitch = !process.argv.includes('--no-switch')
  const load0 = loadAverage()
  const fileA = ensureFullSd15()
  const cacheRoot = benchDir('session-cache')
  const out: Record<string, unknown> = {
    bench: 'session',
    model: 'random full-size SD 1.5 UNet (fp16 checkpoint, 860M parameters)',
    provider: 'cpu',
    cores: os.cpus().length,
    totalmem_gib: s1(os.totalmem() / 2 ** 30),
  }
  const unet: Record<string, unknown> = {}
  const entries: Record<string, ConvertedModel> = {}
  for (const p of ['fp16', 'fp32'] as const) {
    const { c, s } = await converted(fileA, p, cacheRoot)
    entries[p] = c
    log(`session: ${p} entry ${c.cached ? 'cached' : `converted in ${s.toFixed(1)} s`}`)
    if (!c.cached) unet[`convert_${p}_s`] = s1(s)
  }
  const paths: Record<string, () => Promise<string>> = {
    peer: () => peerGraph(fileA),
    fp16: async () => (entries.fp16 as ConvertedModel).paths.unet,
    fp32: async () => (entries.fp32 as ConvertedModel).paths.unet,
    'ort-optimized': async () => {
      const o = await ortOptimized((entries.fp16 as ConvertedModel).paths.unet)
      if (o.build_s !== undefined) unet.ort_optimized_build_s = o.build_s
      return o.path
    },
  }
  for (const name of options) {
    const get = paths[name]
    if (!get) throw new Error(`unknown option ${name} (have ${Object.keys(paths).join(', ')})`)
    const modelPath = await get()
    const files = graphFiles(modelPath)
    // Disk each option adds beyond the checkpoint itself (fp16 entries only hard-link it).
    const own = files.filter((f) => !/checkpoint(-\d+)?\.safetensors$/.test(f))
    dropCache(files)
    log(`session: ${name} cold…`)
    const cold = await create(modelPath, runs)
    log(`session: ${name} cold ${JSON.stringify(cold)}; warm…`)
    const warm = await create(modelPath, false)
    unet[name] = {
      cold,
      warm_create_s: warm.create_s,
      reads_bytes: bytesOf(files),
      extra_disk_bytes: bytesOf(own),
    }
  }
  out.unet = unet

  if (doSwitch) {
    // Two cached fp32 entries; B loaded while A is released (what ActiveModel.use does).
    const fileB = secondCheckpoint()
    const b = await converted(fileB, 'fp32', cacheRoot)
    const a = entries.fp32 as ConvertedModel
    const filesB = graphFiles(b.c.paths.unet)
    const sw: Record<string, unknown> = { bytes: bytesOf(filesB) }
    for (const state of ['cold', 'warm'] as const) {
      const sa = await ort.InferenceSession.create(a.paths.unet, sessionOptions('cpu'))
      if (state === 'cold') dropCache(filesB)
      else readAll(filesB)
      const t = performance.now()
      await sa.release()
      const sb = await ort.InferenceSession.create(b.c.paths.unet, sessionOptions('cpu'))
      sw[`${state}_switch_s`] = s1((performance.now() - t) / 1000)
      await sb.release()
      if (state === 'cold') dropCache(filesB)
      sw[`${state}_read_s`] = s1(readAll(filesB))
      log(`session: switch ${state} ${JSON.stringify(sw)}`)
    }
    sw.disk_read_mb_s = s1((sw.bytes as number) / 1e6 / (sw.cold_read_s as number))
    out.warm_switch = sw
  }
  out.load_average = { before: load0, after: loadAverage() }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
