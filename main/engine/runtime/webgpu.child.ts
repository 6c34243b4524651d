/**
 * Child process of webgpu.test.ts (started with a software Vulkan environment, see software-vulkan.ts): runs
 * the minimal models of the three ORT 1.30 WebGPU kernel bugs (webgpu-rewrite.ts) on CPU, on WebGPU as they
 * are, and through openSession (which applies the rewrites), and prints one JSON line with the max |diff| of
 * each against CPU. Where the adapter has `shader-f16` the Conv model also runs as the fp16 graph
 * (fp16.ts) both ways. Prints {"noAdapter": reason} where WebGPU does not start.
 */
import * as ort from 'onnxruntime-node'
import { GraphBuilder } from '../../model-formats/onnx/builder'
import { maxAbsDiff } from '../reference/tolerance'
import { toFp16Compute } from './fp16'
import { openSession } from './session'
import { attentionProbeModel, probeValues, webGpuProbe } from './webgpu'

interface Case {
  name: string
  model: Uint8Array
  feeds: Record<string, ort.Tensor>
}

function t(dims: number[], seed: number, scale = 1, offset = 0): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1)
  return new ort.Tensor(
    'float32',
    probeValues(n, seed).map((x) => x * scale + offset),
    dims,
  )
}

function cases(): Case[] {
  const out: Case[] = []
  out.push({
    name: 'MultiHeadAttention q/k/v [1, 32, 8], 1 head',
    model: attentionProbeModel(32, 8),
    feeds: { q: t([1, 32, 8], 1), k: t([1, 32, 8], 2), v: t([1, 32, 8], 3) },
  })
  {
    // Two InstanceNormalizations of one shape with eps 1e-5 then 1e-6, on low-variance data.
    const g = new GraphBuilder('in')
    const dims = [1, 4, 64]
    const x = g.input('x', 'float32', dims)
    const ones = g.constFloat([1, 1, 1, 1])
    const zeros = g.constFloat([0, 0, 0, 0])
    const a = g.op('InstanceNormalization', [x, ones, zeros], { epsilon: { float: 1e-5 } })
    const b = g.op('InstanceNormalization', [g.op('Mul', [x, g.constFloat([1], [])]), ones, zeros], {
      epsilon: { float: 1e-6 },
    })
    g.output(g.op('Concat', [a, b], { axis: 1 }), 'float32', [1, 8, 64], 'out')
    out.push({
      name: 'InstanceNormalization eps 1e-5 and 1e-6 in one graph',
      model: g.encode(),
      feeds: { x: t(dims, 4, 0.01) },
    })
  }
  {
    const g = new GraphBuilder('conv')
    const x = g.input('x', 'float32', [1, 9, 8, 8])
    const w = g.constFloat(probeValues(8 * 9 * 9, 5), [8, 9, 3, 3])
    const o = g.op('Conv', [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] })
    g.output(o, 'float32', [1, 8, 8, 8], 'out')
    out.push({ name: 'Conv 3x3, 9 input channels', model: g.encode(), feeds: { x: t([1, 9, 8, 8], 6) } })
  }
  return out
}

async function run(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const r = await s.run(feeds)
  return r[s.outputNames[0] as string]?.data as Float32Array
}

/** Largest |a - b|, Infinity for NaN (so the JSON line carries a number that fails every bound). */
function maxDiff(a: Float32Array, b: Float32Array): number {
  const m = maxAbsDiff(a, b)
  return Number.isNaN(m) ? Infinity : m
}

/** `fallback <preference>` mode: open a tiny model and print the provider that opened and the skips. */
async function fallback(preference: 'auto' | 'webgpu'): Promise<void> {
  const skips: { provider: string; reason: string }[] = []
  const o = await openSession(attentionProbeModel(4, 4), {
    preference,
    onFallback: (s) => skips.push(s),
  })
  await o.session.release()
  process.stdout.write(`${JSON.stringify({ provider: o.provider, skips })}\n`)
}

async function main(): Promise<void> {
  if (process.argv[2] === 'fallback') return fallback(process.argv[3] === 'auto' ? 'auto' : 'webgpu')
  let probe
  try {
    probe = await webGpuProbe()
  } catch (err) {
    process.stdout.write(
      `${JSON.stringify({ noAdapter: err instanceof Error ? err.message.split('\n')[0] : String(err) })}\n`,
    )
    return
  }
  // `probe` mode: only the adapter probe (attention kernel, shader-f16).
  if (process.argv[2] === 'probe') {
    process.stdout.write(`${JSON.stringify(probe)}\n`)
    return
  }
  const results: { name: string; provider: string; compute?: string; raw: number; ours: number }[] = []
  for (const c of cases()) {
    const cpu = await ort.InferenceSession.create(c.model, {
      executionProviders: ['cpu'],
      logSeverityLevel: 3,
    })
    const raw = await ort.InferenceSession.create(c.model, {
      executionProviders: ['webgpu'],
      logSeverityLevel: 3,
    })
    const ours = await openSession(c.model, { preference: 'webgpu' })
    const want = await run(cpu, c.feeds)
    results.push({
      name: c.name,
      provider: ours.provider,
      raw: maxDiff(await run(raw, c.feeds), want),
      ours: maxDiff(await run(ours.session, c.feeds), want),
    })
    await Promise.all([cpu.release(), raw.release(), ours.session.release()])
    if (!probe.f16 || !c.name.startsWith('Conv')) continue
    // The fp16 graph of the same model (fp32 weights behind Clip -> Cast): raw, and as a UNet graph with
    // fp16 compute through openSession (rewritten).
    const raw16 = await ort.InferenceSession.create(toFp16Compute(c.model, { mode: 'native' }).model, {
      executionProviders: ['webgpu'],
      logSeverityLevel: 3,
    })
    const ours16 = await openSession(c.model, { preference: 'webgpu', precision: 'fp16' }, 'unet')
    results.push({
      name: `${c.name}, fp16 graph`,
      provider: ours16.provider,
      compute: ours16.compute,
      raw: maxDiff(await run(raw16, c.feeds), want),
      ours: maxDiff(await run(ours16.session, c.feeds), want),
    })
    await Promise.all([raw16.release(), ours16.session.release()])
  }
  process.stdout.write(`${JSON.stringify({ probe, results })}\n`)
}

void main()
