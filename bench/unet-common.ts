import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import type { UnetConfig } from '../main/engine/graphs/unet-config'
import { CheckpointWeights, sourcesFromFile } from '../main/engine/graphs/weights'
import { GraphBuilder } from '../main/model-formats/onnx/builder'
import { mapLdmUnetKeys } from '../main/engine/convert/ldm-unet-keys'
import { readHeader } from '../main/model-formats/safetensors'

/** Shared pieces of the UNet benches: weights from the full-size checkpoint, FLOP count, the ceiling. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

export function benchDir(name: string): string {
  const dir = path.join(os.homedir(), '.cache', 'atelier-bench', name)
  fs.mkdirSync(dir, { recursive: true })
  return dir
}

/** ORT only reads external data inside the model's folder: hard-link the checkpoint there (no copy). */
export function linkInto(dir: string, file: string): string {
  const name = path.basename(file)
  const target = path.join(dir, name)
  if (!fs.existsSync(target)) {
    try {
      fs.linkSync(file, target)
    } catch {
      fs.symlinkSync(file, target)
    }
  }
  return name
}

/** The UNet of an LDM single-file checkpoint as external-data weights pointing into the file. */
export async function unetWeightsFromCheckpoint(file: string, modelDir: string): Promise<CheckpointWeights> {
  const header = await readHeader(file)
  const { map } = mapLdmUnetKeys(header.tensors.keys())
  const inverse = new Map<string, string>()
  for (const [canonical, ldm] of map) inverse.set(ldm, canonical)
  const sources = sourcesFromFile(file, header.tensors.entries(), (k) => inverse.get(k))
  return new CheckpointWeights(sources, { modelDir, locate: (f) => linkInto(modelDir, f) })
}

export interface FlopCount {
  total: number
  conv: number
  linear: number
  attention: number
}

/**
 * Multiply-accumulates x 2 of one UNet evaluation, walking the same structure as the graph: every conv
 * (Cout*Cin*k*k*Hout*Wout), every Linear / 1x1 projection (in*out*tokens) and the two attention products
 * (S*L*C each). Norms, activations, adds and the time MLP (< 0.01 %) are not counted.
 */
export function unetFlops(cfg: UnetConfig, batch: number, h0: number, w0: number, ctxLen: number): FlopCount {
  let conv = 0
  let linear = 0
  let attention = 0
  const k3 = (ci: number, co: number, h: number, w: number): number => ci * co * 9 * h * w
  const resnet = (ci: number, co: number, h: number, w: number): void => {
    conv += k3(ci, co, h, w) + k3(co, co, h, w) + (ci !== co ? ci * co * h * w : 0)
  }
  const transformer = (c: number, h: number, w: number): void => {
    const s = h * w
    // proj_in, proj_out, attn1 q/k/v/out, attn2 q/out, GEGLU (c -> 8c, 4c -> c)
    linear += (2 + 4 + 2 + 12) * c * c * s + 2 * cfg.crossAttentionDim * c * ctxLen
    attention += 2 * s * s * c + 2 * s * ctxLen * c
  }
  const ch = cfg.blockOutChannels
  const levels = ch.length
  let h = h0
  let w = w0
  let c = ch[0] as number
  conv += k3(cfg.inChannels, c, h, w)
  const skips = [c]
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < cfg.layersPerBlock; j++) {
      resnet(c, ch[i] as number, h, w)
      c = ch[i] as number
      if (cfg.downAttention[i]) transformer(c, h, w)
      skips.push(c)
    }
    if (i < levels - 1) {
      h = Math.ceil(h / 2)
      w = Math.ceil(w / 2)
      conv += k3(c, c, h, w)
      skips.push(c)
    }
  }
  resnet(c, c, h, w)
  if (cfg.midAttention) transformer(c, h, w)
  resnet(c, c, h, w)
  const sizes: [number, number][] = []
  for (let i = 0, hh = h0, ww = w0; i < levels; i++, hh = Math.ceil(hh / 2), ww = Math.ceil(ww / 2))
    sizes.push([hh, ww])
  for (let i = 0; i < levels; i++) {
    const co = ch[levels - 1 - i] as number
    for (let j = 0; j <= cfg.layersPerBlock; j++) {
      resnet(c + (skips.pop() as number), co, h, w)
      c = co
      if (cfg.upAttention[i]) transformer(c, h, w)
    }
    if (i < levels - 1) {
      ;[h, w] = sizes[levels - 2 - i] as [number, number]
      conv += k3(c, c, h, w)
    }
  }
  conv += k3(c, cfg.outChannels, h, w)
  const f = (x: number): number => 2 * batch * x
  return { total: f(conv + linear + attention), conv: f(conv), linear: f(linear), attention: f(attention) }
}

/**
 * The machine's fp32 GEMM ceiling through ORT: an n x n x n MatMul (2 n^3 FLOP). `measure()` times one run;
 * the UNet bench calls it between UNet runs so both see the same load from other processes.
 */
export class MatmulCeiling {
  private constructor(
    readonly n: number,
    private readonly sess: ort.InferenceSession,
    private readonly feeds: Record<string, ort.Tensor>,
  ) {}

  static async open(opts: ort.InferenceSession.SessionOptions, n = 4096): Promise<MatmulCeiling> {
    const g = new GraphBuilder('matmul')
    const a = g.input('a', 'float32', [n, n])
    const b = g.input('b', 'float32', [n, n])
    g.output(g.op('MatMul', [a, b]), 'float32', [n, n], 'c')
    const sess = await ort.InferenceSession.create(g.encode(), opts)
    const data = new Float32Array(n * n).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5)
    const feeds = { a: new ort.Tensor('float32', data, [n, n]), b: new ort.Tensor('float32', data, [n, n]) }
    await sess.run(feeds)
    return new MatmulCeiling(n, sess, feeds)
  }

  /** GFLOP/s of one run, by wall time and by CPU time of this process (all threads). */
  async measure(): Promise<{ wall: number; cpu: number }> {
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    await this.sess.run(this.feeds)
    const wall = (performance.now() - t0) / 1000
    const c = process.cpuUsage(c0)
    const flop = 2 * this.n ** 3
    return { wall: flop / wall / 1e9, cpu: flop / ((c.user + c.system) / 1e6) / 1e9 }
  }

  async release(): Promise<void> {
    await this.sess.release()
  }
}

export function loadAverage(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100)
}
