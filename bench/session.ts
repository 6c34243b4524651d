import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { Fp32Weights } from '../main/engine/graphs/fp32-weights'
import { buildUnet } from '../main/engine/graphs/unet'
import { ActiveModel, ModelSet } from '../main/engine/runtime/model-set'
import type { Component } from '../main/engine/runtime/model-set'
import { optimizedBytesUnder } from '../main/engine/runtime/optimized-cache'
import { openSession, sessionOptions } from '../main/engine/runtime/session'
import type { SessionConfig } from '../main/engine/runtime/session'
import { convertCheckpoint } from '../main/engine/convert/convert'
import type { ConvertedModel } from '../main/engine/convert/convert'
import { onnx } from '../main/model-formats/onnx/builder'
import { ensureFullSd15, FULL_SD15, fullSd15Path, writeSd15 } from './fixtures/full-sd15'
import { benchDir, loadAverage, unetWeightsFromCheckpoint } from './unet-common'

/**
 * Session creation of the full-size SD 1.5 (random weights, bench/fixtures/full-sd15.ts) on the CPU provider,
 * as generation opens it, beside a "plain export" peer and a disk-read baseline, all in one run:
 *
 * - `peer`: what `torch.onnx.export` of the fp32 UNet gives (unfused attention, GroupNorm as
 *   InstanceNorm, GEGLU as MatMul + Split, fp32 initializers, Linear weights stored transposed).
 * - `app`: what generation does now: the fp16 conversion-cache entry (weights hard-linked into the
 *   checkpoint) opened through ORT's optimised-model cache (main/engine/runtime/optimized-cache.ts). The
 *   first session of a graph builds the optimised copy (`build_s`, its bytes); later ones load it.
 * - `fp16`, `fp32` (with `--options`): the entries opened directly, as before the cache.
 *
 * UNet cold (its files dropped from the page cache first, `dd iflag=nocache`) and warm (created again right
 * after), each beside `read_s`: the time to read the same bytes in the same page-cache state, so "bounded by
 * disk" can be checked. Warm switch: two cached models A and B (same architecture, other seeds), the whole
 * set a txt2img job loads (text encoder, UNet, VAE decoder) switched A -> B -> A the way the generation
 * worker does (release the old set, load the new one), with the target's files in the page cache (`warm`)
 * and dropped from it (`cold`), each beside the time to read the target's bytes in that state. Wall and CPU
 * seconds both: on a loaded machine the wall time is mostly waiting for a core, the CPU time is the work.
 * The optimised copy's weights are memory-mapped, so a cold session is created before all its bytes are
 * read: the first run pays the rest (`first_run_s` with `--runs`). Disk use is stated per option. Prints
 * JSON. Run alone: every session is 3-5 GiB.
 *
 *   npx tsx bench/session.ts [--options peer,app,fp16,fp32] [--no-switch] [--runs]
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

/** CPU seconds (user + system) of this process since `from`. */
function cpuSince(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from)
  return (u.user + u.system) / 1e6
}

/** Reads every byte of the files (the disk-read baseline): wall and CPU seconds. */
function readTimed(files: string[]): { wall: number; cpu: number } {
  const c = process.cpuUsage()
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
  return { wall: (performance.now() - t) / 1000, cpu: cpuSince(c) }
}

function readAll(files: string[]): number {
  return readTimed(files).wall
}

const s1 = (x: number): number => +x.toFixed(2)

interface Timed {
  create_s: number
  create_cpu_s: number
  first_run_s?: number
  second_run_s?: number
  rss_gib: number
}

const unetFeeds = (): Record<string, ort.Tensor> => ({
  sample: new ort.Tensor('float32', new Float32Array(4 * 64 * 64).fill(0.1), [1, 4, 64, 64]),
  timestep: new ort.Tensor('float32', Float32Array.of(500), [1]),
  encoder_hidden_states: new ort.Tensor('float32', new Float32Array(77 * 768).fill(0.01), [1, 77, 768]),
})

/** Creates (and optionally runs twice) a UNet session the way `open` opens it, then releases it. */
async function timed(open: () => Promise<ort.InferenceSession>, runs: boolean): Promise<Timed> {
  const c = process.cpuUsage()
  const t = performance.now()
  const sess = await open()
  const createS = (performance.now() - t) / 1000
  const out: Timed = {
    create_s: s1(createS),
    create_cpu_s: s1(cpuSince(c)),
    rss_gib: s1(process.memoryUsage().rss / 2 ** 30),
  }
  if (runs) {
    const r: number[] = []
    for (let i = 0; i < 2; i++) {
      const t1 = performance.now()
      await sess.run(unetFeeds())
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

/** The generation worker's session config on the CPU (optimised-model cache on). */
const APP: SessionConfig = { preference: 'cpu', optimizedCache: true }
const SWITCHED: readonly Component[] = ['text_encoder', 'unet', 'vae_decoder']

/** Opens a graph through the cache once (building its optimised copy if missing); returns how. */
async function ensureOptimized(modelPath: string): Promise<{ build_s?: number; dir: string }> {
  const t = performance.now()
  const o = await openSession(modelPath, APP)
  await o.session.release()
  const use = o.optimized
  if (!use || use.state === 'skipped')
    throw new Error(`optimised-model cache not used: ${JSON.stringify(use)}`)
  return { dir: use.dir, ...(use.state === 'built' ? { build_s: s1((performance.now() - t) / 1000) } : {}) }
}

/** Every file a loaded set reads: the optimised copies of its graphs. */
async function optimizedFilesOf(
  c: ConvertedModel,
): Promise<{ files: string[]; built: Record<string, number> }> {
  const files: string[] = []
  const built: Record<string, number> = {}
  for (const g of SWITCHED) {
    const o = await ensureOptimized(c.paths[g])
    if (o.build_s !== undefined) built[g] = o.build_s
    files.push(...graphFiles(path.join(o.dir, 'model.onnx')))
  }
  return { files, built }
}

async function main(): Promise<void> {
  const options = arg('options', 'peer,app').split(',')
  const runs = process.argv.includes('--runs')
  const doSwitch = !process.argv.includes('--no-switch')
  const load0 = loadAverage()
  const fileA = ensureFullSd15()
  const cacheRoot = benchDir('session-cache')
  const out: Record<string, unknown> = {
    bench: 'session',
    model: 'random full-size SD 1.5 (fp16 checkpoint; UNet 860M parameters)',
    provider: 'cpu',
    ort: ort.env.versions.common,
    cores: os.cpus().length,
    totalmem_gib: s1(os.totalmem() / 2 ** 30),
  }
  const unet: Record<string, unknown> = {}
  const entries: Partial<Record<'fp16' | 'fp32', ConvertedModel>> = {}
  const entry = async (p: 'fp16' | 'fp32'): Promise<ConvertedModel> => {
    const have = entries[p]
    if (have) return have
    const { c, s } = await converted(fileA, p, cacheRoot)
    log(`session: ${p} entry ${c.cached ? 'cached' : `converted in ${s.toFixed(1)} s`}`)
    if (!c.cached) unet[`convert_${p}_s`] = s1(s)
    entries[p] = c
    return c
  }
  for (const name of options) {
    let modelPath: string
    let open: () => Promise<ort.InferenceSession>
    let extra: Record<string, unknown> = {}
    if (name === 'peer' || name === 'fp16' || name === 'fp32') {
      modelPath = name === 'peer' ? await peerGraph(fileA) : (await entry(name)).paths.unet
      open = () => ort.InferenceSession.create(modelPath, sessionOptions('cpu'))
    } else if (name === 'app') {
      const src = (await entry('fp16')).paths.unet
      const o = await ensureOptimized(src)
      if (o.build_s !== undefined) extra = { build_s: o.build_s }
      modelPath = path.join(o.dir, 'model.onnx')
      open = async () => {
        const s = await openSession(src, APP)
        if (s.optimized?.state !== 'loaded')
          throw new Error(`expected a cached load: ${JSON.stringify(s.optimized)}`)
        return s.session
      }
    } else throw new Error(`unknown option ${name} (have peer, app, fp16, fp32)`)
    const files = graphFiles(modelPath)
    // Disk each option adds beyond the checkpoint itself (fp16 entries only hard-link it).
    const own = files.filter((f) => !/checkpoint(-\d+)?\.safetensors$/.test(f))
    dropCache(files)
    log(`session: ${name} cold…`)
    const cold = await timed(open, runs)
    dropCache(files)
    const coldRead = readTimed(files)
    log(`session: ${name} cold ${JSON.stringify(cold)}; warm…`)
    const warm = await timed(open, false)
    const warmRead = readTimed(files)
    unet[name] = {
      ...extra,
      cold,
      cold_read_s: s1(coldRead.wall),
      warm_create_s: warm.create_s,
      warm_create_cpu_s: warm.create_cpu_s,
      warm_read_s: s1(warmRead.wall),
      warm_read_cpu_s: s1(warmRead.cpu),
      reads_bytes: bytesOf(files),
      extra_disk_bytes: bytesOf(own),
    }
  }
  out.unet = unet

  if (doSwitch) {
    // Two cached models, switched the way the generation worker does (ActiveModel: release, then load).
    const a = await entry('fp16')
    const b = (await converted(secondCheckpoint(), 'fp16', cacheRoot)).c
    const fa = await optimizedFilesOf(a)
    const fb = await optimizedFilesOf(b)
    const sw: Record<string, unknown> = {
      graphs: SWITCHED,
      bytes_per_model: bytesOf(fb.files),
      ...(Object.keys(fa.built).length || Object.keys(fb.built).length
        ? { optimised_copy_build_s: { a: fa.built, b: fb.built } }
        : {}),
      optimised_disk_bytes_per_model: optimizedBytesUnder(b.dir),
    }
    const active = new ActiveModel()
    const setOf = (c: ConvertedModel, id: string): ModelSet => new ModelSet(id, c.paths, APP)
    await (await active.use(setOf(a, 'A'))).load(SWITCHED)
    for (const state of ['warm', 'cold'] as const) {
      const legs: Record<string, number>[] = []
      for (const [id, c, files] of [
        ['B', b, fb.files],
        ['A', a, fa.files],
      ] as const) {
        if (state === 'cold') dropCache(files)
        else readAll(files)
        const cpu0 = process.cpuUsage()
        const t = performance.now()
        const set = await active.use(setOf(c, id))
        await set.load(SWITCHED)
        const switchS = (performance.now() - t) / 1000
        const switchCpu = cpuSince(cpu0)
        for (const g of SWITCHED)
          if (set.graph(g).optimized?.state !== 'loaded')
            throw new Error(`${id} ${g}: ${JSON.stringify(set.graph(g).optimized)}`)
        // The baseline: the same bytes read in the same page-cache state.
        await active.release()
        if (state === 'cold') dropCache(files)
        const read = readTimed(files)
        await (await active.use(setOf(c, id))).load(SWITCHED)
        legs.push({
          [`to_${id}_s`]: s1(switchS),
          cpu_s: s1(switchCpu),
          read_s: s1(read.wall),
          read_cpu_s: s1(read.cpu),
        })
        log(`session: switch ${state} -> ${id}: ${switchS.toFixed(2)} s (read ${read.wall.toFixed(2)} s)`)
      }
      sw[state] = legs
    }
    await active.release()
    out.warm_switch = sw
  }
  out.load_average = { before: load0, after: loadAverage() }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
