import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type * as ort from 'onnxruntime-node'
import { encodePngWithParameters } from '../main/engine/metadata'
import type { StudioEnv, StudioRequest } from '../main/engine/pipelines/generate'
import { runStudio } from '../main/engine/pipelines/generate'
import type { DiffusionModel } from '../main/engine/pipelines/types'
import { ModelSet } from '../main/engine/runtime/model-set'
import { physicalCores } from '../main/engine/runtime/providers'
import { findTokenizer } from '../main/engine/tokenizer'
import { convertCheckpoint } from '../main/engine/convert/convert'
import { repoRoot } from '../main/platform/paths'
import { ensureFullSd15 } from './fixtures/full-sd15'

/**
 * Shared by bench/img2img.ts and bench/inpaint.ts: the full-size random-weight SD 1.5 converted once
 * (cache under ~/.cache/atelier-bench/pipelines, or ATELIER_BENCH_PIPELINE_CACHE), a model wrapper
 * timing every ONNX session call, and a run of the studio pipeline split into text encoding, VAE encode,
 * each UNet step, VAE decode, and everything else (Atelier's own code: scheduler math, tensor copies,
 * masks, resizes, PNG encoding with metadata).
 */

export const log = (m: string): void => void process.stderr.write(`${m}\n`)

async function time<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  const v = await f()
  return [v, performance.now() - t0]
}

export class TimedModel implements DiffusionModel {
  readonly id: string
  textMs = 0
  encodeMs = 0
  decodeMs = 0
  unetMs: number[] = []

  constructor(private readonly inner: ModelSet) {
    this.id = inner.id
  }

  async encodeText(ids: BigInt64Array, batch: number, clipSkip?: 1 | 2): Promise<ort.Tensor> {
    const [r, ms] = await time(() => this.inner.encodeText(ids, batch, clipSkip))
    this.textMs += ms
    return r
  }

  async unet(sample: ort.Tensor, t: number, context: ort.Tensor): Promise<ort.Tensor> {
    const [r, ms] = await time(() => this.inner.unet(sample, t, context))
    this.unetMs.push(ms)
    return r
  }

  async encode(image: ort.Tensor): Promise<{ mean: ort.Tensor; std: ort.Tensor }> {
    const [r, ms] = await time(() => this.inner.encode(image))
    this.encodeMs += ms
    return r
  }

  async decode(latents: ort.Tensor): Promise<ort.Tensor> {
    const [r, ms] = await time(() => this.inner.decode(latents))
    this.decodeMs += ms
    return r
  }
}

export interface Prepared {
  set: ModelSet
  convertMs: number
  loadMs: number
  encode: (text: string) => readonly number[]
}

export async function prepareFullModel(): Promise<Prepared> {
  const ckpt = ensureFullSd15(log)
  const cacheRoot =
    process.env.ATELIER_BENCH_PIPELINE_CACHE ??
    path.join(os.homedir(), '.cache', 'atelier-bench', 'pipelines')
  log('converting (cached after the first run) ...')
  const [model, convertMs] = await time(() => convertCheckpoint(ckpt, { cacheRoot }))
  const set = new ModelSet('bench-sd15', model.paths, { preference: 'cpu' })
  log('loading sessions ...')
  const [, loadMs] = await time(() => set.load())
  const bpe =
    process.env.ATELIER_BENCH_TOKENIZER ??
    path.resolve(repoRoot(), '../shared/oracle/clip/bpe_simple_vocab_16e6.txt.gz')
  const tokenizer = await findTokenizer(fs.existsSync(bpe) ? { explicit: bpe } : {})
  return { set, convertMs, loadMs, encode: (t) => tokenizer.encode(t) }
}

const r = (ms: number): number => Math.round(ms)

/** Runs one request through the studio pipeline (+ PNG encoding) and returns the JSON report's timing part. */
export async function timedRun(
  p: Prepared,
  req: StudioRequest,
  extra: Partial<StudioEnv> = {},
): Promise<Record<string, unknown>> {
  const model = new TimedModel(p.set)
  let pngMs = 0
  let out: { width: number; height: number } | undefined
  const [, totalMs] = await time(() =>
    runStudio(req, 1, {
      model,
      encode: p.encode,
      inpaintModel: false,
      onProgress: (s) => log(`step ${s.step}/${s.total} (${r(model.unetMs.at(-1) ?? 0)} ms)`),
      onBatch: async (b) => {
        const t0 = performance.now()
        for (const img of b.images) {
          await encodePngWithParameters(img, {
            prompt: req.prompt,
            negativePrompt: req.negativePrompt,
            seed: 1,
            extra: {},
          })
          out = { width: img.width, height: img.height }
        }
        pngMs += performance.now() - t0
      },
      ...extra,
    }),
  )
  const unetTotal = model.unetMs.reduce((a, b) => a + b, 0)
  const sessions = model.textMs + model.encodeMs + unetTotal + model.decodeMs
  const otherMs = totalMs - sessions
  const sorted = [...model.unetMs].sort((a, b) => a - b)
  return {
    output: out,
    totalMs: r(totalMs),
    split: {
      textEncodingMs: r(model.textMs),
      vaeEncodeMs: r(model.encodeMs),
      unetStepsMs: model.unetMs.map(r),
      unetTotalMs: r(unetTotal),
      unetMedianStepMs: r(sorted[sorted.length >> 1] ?? 0),
      vaeDecodeMs: r(model.decodeMs),
      otherMs: r(otherMs),
      pngEncodeMs: r(pngMs),
    },
    otherPercent: +((100 * otherMs) / totalMs).toFixed(2),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  }
}

export function machine(): Record<string, unknown> {
  return {
    cpus: os.cpus().length,
    physicalCores: physicalCores(),
    cpuModel: os.cpus()[0]?.model,
    totalMemGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    loadAverage: os.loadavg().map((l) => +l.toFixed(2)),
    node: process.versions.node,
  }
}
