import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { ModelSet } from '../main/engine/runtime/model-set'
import { physicalCores } from '../main/engine/runtime/providers'
import { convertCheckpoint } from '../main/engine/convert/convert'
import type { ConvertProgress } from '../main/engine/convert/convert'
import { openCheckpointSource } from '../main/engine/convert/source'
import { applyLoras } from '../main/engine/lora/variant'
import { f32ToF16, writeSafetensors } from '../main/model-formats/safetensors'
import type { TensorToWrite } from '../main/model-formats/safetensors'
import { ensureFullSd15 } from './fixtures/full-sd15'

/**
 * Full-size SD 1.5 (random weights, fp16 file): conversion time and cache hit, CLIP text encoder and VAE
 * decode at 512x512 (median ms, CPU, fp32 compute), and the time from "LoRA multiplier changed" to sessions
 * ready, against loading the unchanged graphs. Prints one JSON object.
 *
 *   npx tsx bench/text-encoder-vae.ts [--runs N] [--vae-runs N] [--lora-rank R] [--skip-lora] [--skip-merge] [--lora-step]
 */

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : def
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

async function time<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  const v = await f()
  return [v, Math.round(performance.now() - t0)]
}

const log = (m: string): void => void process.stderr.write(`${m}\n`)

/** A kohya LoRA over every attention/proj/ff layer of the UNet and every TE attention/MLP layer. */
async function writeFullLora(ckpt: string, file: string, rank: number): Promise<number> {
  const src = await openCheckpointSource(ckpt)
  const tensors: Record<string, TensorToWrite> = {}
  let seed = 7
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff - 0.5
  }
  const add = (prefix: string, map: Map<string, { shape: number[] }> | undefined, re: RegExp): void => {
    for (const [name, s] of map ?? []) {
      if (!re.test(name)) continue
      const mod = `${prefix}${name.slice(0, -'.weight'.length).replace(/\./g, '_')}`
      const [out = 0, inp = 0, ...k] = s.shape
      const down = new Float32Array(rank * inp * k.reduce((a, b) => a * b, 1)).map(() => rand() * 0.02)
      const up = new Float32Array(out * rank).map(() => rand() * 0.02)
      tensors[`${mod}.lora_down.weight`] = { dtype: 'F16', shape: [rank, inp, ...k], data: f32ToF16(down) }
      tensors[`${mod}.lora_up.weight`] = {
        dtype: 'F16',
        shape: [out, rank, ...k.map(() => 1)],
        data: f32ToF16(up),
      }
      tensors[`${mod}.alpha`] = { dtype: 'F16', shape: [], data: f32ToF16(Float32Array.from([rank / 2])) }
    }
  }
  add(
    'lora_unet_',
    src.components.unet,
    /(attn[12]\.to_(q|k|v|out\.0)|proj_(in|out)|ff\.net\.(0\.proj|2))\.weight$/,
  )
  add('lora_te_', src.components.text_encoder, /(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight$/)
  await writeSafetensors(file, tensors, { ss_base_model_version: 'sd_v1', ss_network_dim: String(rank) })
  return Object.keys(tensors).length / 3
}

async function main(): Promise<void> {
  const runs = arg('runs', 10)
  const vaeRuns = arg('vae-runs', 3)
  const rank = arg('lora-rank', 32)
  const ckpt = ensureFullSd15(log)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-bench-te-vae-'))
  const cacheRoot = path.join(work, 'cache')
  const session = { preference: 'cpu' as const }
  const result: Record<string, unknown> = {
    machine: {
      cpus: os.cpus().length,
      physicalCores: physicalCores(),
      loadAverage: os.loadavg().map((l) => +l.toFixed(2)),
    },
    checkpoint: { file: ckpt, bytes: fs.statSync(ckpt).size },
  }
  try {
    // Conversion: hash (first time only) + graphs pointing into the hard-linked checkpoint.
    const phase: Record<string, number> = {}
    let last = performance.now()
    let cur: string | undefined
    const onProgress = (p: ConvertProgress): void => {
      if (p.phase !== cur) {
        const now = performance.now()
        if (cur) phase[cur] = Math.round(now - last)
        cur = p.phase
        last = now
      }
    }
    const [model, firstMs] = await time(() => convertCheckpoint(ckpt, { cacheRoot, onProgress }))
    if (cur) phase[cur] = Math.round(performance.now() - last)
    const [, hitMs] = await time(() => convertCheckpoint(ckpt, { cacheRoot }))
    const onnxBytes = Object.values(model.manifest.graphs).reduce(
      (a, g) => a + fs.statSync(path.join(model.dir, g?.model ?? '')).size,
      0,
    )
    result.conversion = { firstMs, phasesMs: phase, cacheHitMs: hitMs, graphBytes: onnxBytes }
    log(`converted: ${JSON.stringify(result.conversion)}`)

    // Text encoder: batch 1 and the CFG batch of 2, 77 tokens.
    const set = new ModelSet('bench', model.paths, session)
    const [, teLoad] = await time(() => set.load(['text_encoder']))
    const ids = new BigInt64Array(2 * 77).fill(49407n)
    ids.set([49406n, 320n, 1125n, 539n, 320n, 2368n, 49407n], 0)
    ids.set([49406n, 49407n], 77)
    const te: Record<string, number> = { loadMs: teLoad }
    for (const batch of [1, 2]) {
      const times: number[] = []
      for (let i = 0; i < runs + 1; i++) {
        const [, ms] = await time(() => set.encodeText(ids.subarray(0, batch * 77), batch))
        if (i > 0) times.push(ms)
      }
      te[`batch${batch}MedianMs`] = median(times)
    }
    await set.release(['text_encoder'])
    result.textEncoder = te
    log(`text encoder: ${JSON.stringify(te)}`)

    // VAE decode at 512x512 (latents 64x64).
    const [, vaeLoad] = await time(() => set.load(['vae_decoder']))
    const z = new ort.Tensor(
      'float32',
      new Float32Array(4 * 64 * 64).map((_, i) => Math.sin(i) * 0.5),
      [1, 4, 64, 64],
    )
    const vt: number[] = []
    for (let i = 0; i < vaeRuns; i++) vt.push((await time(() => set.decode(z)))[1])
    await set.release()
    result.vaeDecode512 = { loadMs: vaeLoad, runsMs: vt, medianMs: median(vt) }
    log(`vae decode: ${JSON.stringify(result.vaeDecode512)}`)

    if (!process.argv.includes('--skip-lora')) {
      const lora = path.join(work, 'bench-lora.safetensors')
      const modules = await writeFullLora(ckpt, lora, rank)
      const both: ('text_encoder' | 'unet')[] = ['text_encoder', 'unet']
      const load = async (paths: Record<string, string>, inputs = {}): Promise<[ModelSet, number]> => {
        const s = new ModelSet('l', paths, session, inputs)
        const [, ms] = await time(() => s.load(both))
        return [s, ms]
      }
      const bin = (p: string): number => fs.statSync(p.replace(/\.onnx$/, '.bin')).size
      const [baseSet, unchangedLoadMs] = await load(model.paths)
      await baseSet.release()

      // branch: multipliers are inputs; a change is a new feed on the loaded sessions.
      const [b1, build1] = await time(() =>
        applyLoras(model, [{ path: lora, multiplier: 0.8 }], { cacheRoot }),
      )
      const [bset, bload] = await load(b1.paths, b1.inputs)
      const [b2, apply2] = await time(() =>
        applyLoras(model, [{ path: lora, multiplier: 0.5 }], { cacheRoot }),
      )
      const [, setMs] = await time(async () => bset.setInputs(b2.inputs))
      // One CLIP pass with each multiplier shows the session really serves both.
      const ids = new BigInt64Array(77).fill(49407n)
      ids[0] = 49406n
      bset.setInputs(b1.inputs)
      const [, teAt08] = await time(() => bset.encodeText(ids, 1))
      bset.setInputs(b2.inputs)
      const [, teAt05] = await time(() => bset.encodeText(ids, 1))
      await bset.release()
      let stepOverhead: Record<string, unknown> | undefined
      if (process.argv.includes('--lora-step')) {
        // UNet step cost with and without the branches (latent 32x32, CFG batch 2), interleaved.
        const side = arg('step-latent', 32)
        const x = new ort.Tensor(
          'float32',
          new Float32Array(2 * 4 * side * side).map((_, i) => Math.cos(i)),
          [2, 4, side, side],
        )
        const ctx = new ort.Tensor(
          'float32',
          new Float32Array(2 * 77 * 768).map((_, i) => Math.sin(i) * 0.5),
          [2, 77, 768],
        )
        const plain = new ModelSet('p', model.paths, session)
        const branched = new ModelSet('b', b1.paths, session, b1.inputs)
        await plain.load(['unet'])
        await branched.load(['unet'])
        const tp: number[] = []
        const tb: number[] = []
        for (let i = 0; i < 3; i++) {
          tp.push((await time(() => plain.unet(x, 500, ctx)))[1])
          tb.push((await time(() => branched.unet(x, 500, ctx)))[1])
        }
        await plain.release()
        await branched.release()
        stepOverhead = {
          latent: side,
          baseMs: tp,
          branchMs: tb,
          ratio: +(median(tb) / median(tp)).toFixed(3),
        }
      }
      result.loraBranch = {
        stepOverhead,
        rank,
        modules,
        layers: b1.merged,
        unchangedLoadMs,
        newLoraSetBuildMs: build1,
        newLoraSetLoadMs: bload,
        newLoraSetToReadyMs: build1 + bload,
        multiplierChangeToReadyMs: apply2 + setMs,
        textEncoderRunMs: { at08: teAt08, at05: teAt05 },
        sideFileBytes: bin(b1.paths.unet) + bin(b1.paths.text_encoder),
        baseReconverted: false,
      }
      log(`lora branch: ${JSON.stringify(result.loraBranch)}`)

      if (!process.argv.includes('--skip-merge')) {
        // merge: every multiplier writes merged layers and needs new sessions.
        const opts = { cacheRoot, mode: 'merge' as const }
        const [m1, merge1] = await time(() => applyLoras(model, [{ path: lora, multiplier: 0.8 }], opts))
        const [s1, load1] = await load(m1.paths)
        await s1.release()
        const [m2, merge2] = await time(() => applyLoras(model, [{ path: lora, multiplier: 0.5 }], opts))
        const [s2, load2] = await load(m2.paths)
        await s2.release()
        result.loraMerge = {
          unchangedLoadMs,
          firstSetMergeMs: merge1,
          firstSetLoadMs: load1,
          multiplierChangeMergeMs: merge2,
          multiplierChangeLoadMs: load2,
          multiplierChangeToReadyMs: merge2 + load2,
          sideFileBytes: bin(m2.paths.unet) + bin(m2.paths.text_encoder),
        }
        log(`lora merge: ${JSON.stringify(result.loraMerge)}`)
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
