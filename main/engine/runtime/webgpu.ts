import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { GraphBuilder } from '../../model-formats/onnx/builder'
import { f16ToF32, f32ToF16 } from '../../model-formats/safetensors'
import type { RewriteResult } from './webgpu-rewrite'
import { mayNeedRewrite, rewriteForWebGpu } from './webgpu-rewrite'

/**
 * What a session on onnxruntime's WebGPU provider needs beyond its options: the load-time rewrites of
 * webgpu-rewrite.ts, decided once per process by a probe on the adapter ORT opens.
 *
 * The probe is also the adapter check of `auto`: it creates a WebGPU session for a one-node graph, which
 * fails with ORT's "No supported adapters" where Dawn finds none (no Vulkan loader, no driver), instead of
 * guessing from files on disk.
 */

export interface WebGpuProbe {
  /** The adapter runs MultiHeadAttention's flash-attention path correctly (max |diff| vs exact < 1e-4). */
  attentionOk: boolean
  attentionMaxDiff: number
  /**
   * fp16 kernels run on the adapter (`shader-f16`): an fp16 MatMul session opens with CPU fallback
   * disabled and computes the right numbers. SwiftShader has no `shader-f16`.
   */
  f16: boolean
  /** Why f16 is false (ORT's message, or the wrong result). */
  f16Reason?: string
  ms: number
}

let probe: Promise<WebGpuProbe> | undefined
let probed: WebGpuProbe | undefined

/** Whether the probed WebGPU adapter runs fp16 graphs (false before the probe has run). */
export function webGpuHasF16(): boolean {
  return probed?.f16 === true
}

/** A [2, 8] x [8, 4] fp16 MatMul (all values small integers: exact in fp16). */
export function f16ProbeModel(): Uint8Array {
  const g = new GraphBuilder('webgpu_f16_probe')
  const a = g.input('a', 'float16', [2, 8])
  const b = g.input('b', 'float16', [8, 4])
  g.output(g.op('MatMul', [a, b]), 'float16', [2, 4], 'out')
  return g.encode()
}

async function probeF16(): Promise<{ f16: boolean; f16Reason?: string }> {
  let session: ort.InferenceSession | undefined
  try {
    session = await ort.InferenceSession.create(f16ProbeModel(), {
      executionProviders: ['webgpu'],
      logSeverityLevel: 4, // the expected failure on adapters without shader-f16 is not an error to log
      // Every node on WebGPU or no session: an fp16 kernel the adapter lacks would land on the CPU.
      extra: { session: { disable_cpu_ep_fallback: '1' } },
    })
    const av = Float32Array.from({ length: 16 }, (_, i) => (i % 5) - 2)
    const bv = Float32Array.from({ length: 32 }, (_, i) => (i % 3) - 1)
    const r = await session.run(
      {
        a: new ort.Tensor('float16', f32ToF16(av), [2, 8]),
        b: new ort.Tensor('float16', f32ToF16(bv), [8, 4]),
      },
      { logSeverityLevel: 4 },
    )
    const got = f16ToF32(r.out?.data as Uint16Array)
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 4; j++) {
        let want = 0
        for (let k = 0; k < 8; k++) want += (av[i * 8 + k] as number) * (bv[k * 4 + j] as number)
        if (got[i * 4 + j] !== want)
          return { f16: false, f16Reason: `fp16 MatMul gave ${got[i * 4 + j]}, not ${want}` }
      }
    return { f16: true }
  } catch (err) {
    const s = err instanceof Error ? err.message : String(err)
    return { f16: false, f16Reason: (s.split('\n').find((l) => l.trim()) ?? s).trim().slice(0, 300) }
  } finally {
    await session?.release()
  }
}

const PROBE_SEQ = 32 // the shortest query length ORT 1.30 sends to its flash-attention prefill shader
const PROBE_HEAD = 8

/** softmax(q k^T / sqrt(d)) v for one head, [S, d] row-major, in float64. */
export function referenceAttention(q: Float32Array, k: Float32Array, v: Float32Array, s: number, d: number) {
  const out = new Float32Array(s * d)
  const scale = 1 / Math.sqrt(d)
  const row = new Float64Array(s)
  for (let i = 0; i < s; i++) {
    let max = -Infinity
    for (let j = 0; j < s; j++) {
      let dot = 0
      for (let c = 0; c < d; c++) dot += (q[i * d + c] as number) * (k[j * d + c] as number)
      row[j] = dot * scale
      max = Math.max(max, row[j] as number)
    }
    let sum = 0
    for (let j = 0; j < s; j++) sum += row[j] = Math.exp((row[j] as number) - max)
    for (let c = 0; c < d; c++) {
      let acc = 0
      for (let j = 0; j < s; j++) acc += (row[j] as number) * (v[j * d + c] as number)
      out[i * d + c] = acc / sum
    }
  }
  return out
}

/** Deterministic values in [-2, 2) (a small LCG; the probe must not depend on Math.random). */
export function probeValues(n: number, seed: number): Float32Array {
  let x = seed >>> 0
  return Float32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    return (x / 2 ** 32) * 4 - 2
  })
}

/** A one-head MultiHeadAttention model over [1, s, d] query/key/value. */
export function attentionProbeModel(s = PROBE_SEQ, d = PROBE_HEAD): Uint8Array {
  const g = new GraphBuilder('webgpu_probe')
  const dims = [1, s, d]
  const q = g.input('q', 'float32', dims)
  const k = g.input('k', 'float32', dims)
  const v = g.input('v', 'float32', dims)
  const o = g.op('MultiHeadAttention', [q, k, v], { num_heads: 1 }, { domain: 'com.microsoft' })
  g.output(o, 'float32', dims, 'out')
  return g.encode()
}

async function runProbe(): Promise<WebGpuProbe> {
  const t0 = performance.now()
  const s = PROBE_SEQ
  const d = PROBE_HEAD
  const session = await ort.InferenceSession.create(attentionProbeModel(s, d), {
    executionProviders: ['webgpu'],
    logSeverityLevel: 3,
  })
  try {
    const [q, k, v] = [1, 2, 3].map((seed) => probeValues(s * d, seed)) as [
      Float32Array,
      Float32Array,
      Float32Array,
    ]
    const t = (x: Float32Array): ort.Tensor => new ort.Tensor('float32', x, [1, s, d])
    const r = await session.run({ q: t(q), k: t(k), v: t(v) })
    const got = r.out?.data as Float32Array
    const want = referenceAttention(q, k, v, s, d)
    let max = 0
    for (let i = 0; i < want.length; i++)
      max = Math.max(max, Math.abs((got[i] as number) - (want[i] as number)))
    if (Number.isNaN(max)) max = Infinity
    const f16 = await probeF16()
    return { attentionOk: max < 1e-4, attentionMaxDiff: max, ...f16, ms: performance.now() - t0 }
  } finally {
    await session.release()
  }
}

/** The process-wide probe (first call opens a WebGPU session: this is where a missing adapter throws). */
export function webGpuProbe(): Promise<WebGpuProbe> {
  probe ??= runProbe().then(
    (p) => (probed = p),
    (err: unknown) => {
      probe = undefined
      throw err
    },
  )
  return probe
}

/** Forget the probe (tests). */
export function resetWebGpuProbe(): void {
  probe = undefined
  probed = undefined
}

export interface WebGpuModel {
  model: string | Uint8Array
  /** Extra session options (where external weights live when the model is passed as rewritten bytes). */
  options: ort.InferenceSession.SessionOptions
  rewrite?: RewriteResult
}

/**
 * The model as the WebGPU session should load it: rewritten where needed (see webgpu-rewrite.ts), else
 * unchanged. Rewritten bytes keep loading their external weights from the original file's folder.
 */
export async function webGpuModel(model: string | Uint8Array): Promise<WebGpuModel> {
  const p = await webGpuProbe()
  const opts = { instanceNorm: true, conv: true, attention: !p.attentionOk }
  const bytes = typeof model === 'string' ? fs.readFileSync(model) : model
  if (!mayNeedRewrite(bytes, opts)) return { model, options: {} }
  const rewrite = rewriteForWebGpu(bytes, opts)
  if (Object.keys(rewrite.rewritten).length === 0) return { model, options: {}, rewrite }
  const options: ort.InferenceSession.SessionOptions =
    typeof model === 'string'
      ? {
          extra: {
            session: { model_external_initializers_file_folder_path: path.dirname(path.resolve(model)) },
          },
        }
      : {}
  return { model: rewrite.model, options, rewrite }
}
