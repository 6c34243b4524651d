import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { GraphBuilder, onnx } from '../../model-formats/onnx/builder'
import { f16ToF32, f32ToF16 } from '../../model-formats/safetensors'
import { maxAbsDiff } from '../reference/tolerance'
import { toFp16Compute } from './fp16'
import { computeModeFor } from './session'
import { rewriteForWebGpu } from './webgpu-rewrite'
import { probeValues } from './webgpu'

/**
 * The fp16 compute pass on a small UNet-like graph: fp16 weights behind Casts (as our conversions store
 * them), a fp32 sinusoidal timestep path, Conv -> GroupNorm -> SiLU -> MatMul + time embedding -> LayerNorm
 * -> attention. Both forms run on the CPU provider: 'native' with fp16 tensors, 'emulate' with fp32 tensors
 * rounded to fp16 where the fp16 graph stores one.
 */

const C = 8
const HW = 4

function f16Weight(g: GraphBuilder, name: string, dims: number[], seed: number, scale: number): string {
  const n = dims.reduce((a, b) => a * b, 1)
  const h = f32ToF16(probeValues(n, seed).map((v) => v * scale))
  const init = g.initializer(name, 'float16', dims, new Uint8Array(h.buffer))
  return g.op('Cast', [init], { to: 1 })
}

function unetLike(): Uint8Array {
  const g = new GraphBuilder('unet_like')
  const x = g.input('sample', 'float32', [1, C, HW, HW])
  const t = g.input('timestep', 'float32', [1])
  // fp32 region: t * freqs -> sin, cos (from a graph input, before any fp16 op).
  const freqs = g.constFloat(
    Array.from({ length: C / 2 }, (_, i) => Math.exp((-Math.log(10000) * i) / (C / 2))),
    [1, C / 2],
  )
  const args = g.op('Mul', [g.op('Unsqueeze', [t, g.constInt64([1])]), freqs])
  const temb = g.op('Concat', [g.op('Sin', [args]), g.op('Cos', [args])], { axis: 1 })
  const tproj = g.op('MatMul', [temb, f16Weight(g, 'time_w', [C, C], 7, 0.5)])

  const conv = g.op(
    'Conv',
    [x, f16Weight(g, 'conv_w', [C, C, 3, 3], 1, 0.3), f16Weight(g, 'conv_b', [C], 2, 0.1)],
    {
      kernel_shape: [3, 3],
      pads: [1, 1, 1, 1],
    },
  )
  const gn = g.op(
    'GroupNormalization',
    [conv, f16Weight(g, 'gn_s', [C], 3, 1), f16Weight(g, 'gn_b', [C], 4, 0.2)],
    {
      num_groups: 2,
      epsilon: { float: 1e-5 },
    },
  )
  const silu = g.op('Mul', [gn, g.op('Sigmoid', [gn])])
  const h = g.op('Add', [silu, g.op('Reshape', [tproj, g.constInt64([1, C, 1, 1])])])
  // [1, C, H, W] -> [1, HW, C] tokens, LayerNorm, self-attention, back.
  const tokens = g.op('Transpose', [g.op('Reshape', [h, g.constInt64([1, C, HW * HW])])], { perm: [0, 2, 1] })
  const ln = g.op(
    'LayerNormalization',
    [tokens, f16Weight(g, 'ln_s', [C], 5, 1), f16Weight(g, 'ln_b', [C], 6, 0.1)],
    {
      axis: -1,
      epsilon: { float: 1e-5 },
    },
  )
  // A Linear weight as getLinearT stores it: Transpose of the fp16 weight's Cast.
  const q = g.op('MatMul', [ln, g.op('Transpose', [f16Weight(g, 'wq', [C, C], 8, 0.4)], { perm: [1, 0] })])
  const k = g.op('MatMul', [ln, f16Weight(g, 'wk', [C, C], 9, 0.4)])
  const v = g.op('MatMul', [ln, f16Weight(g, 'wv', [C, C], 10, 0.4)])
  const a = g.op('MultiHeadAttention', [q, k, v], { num_heads: 2 }, { domain: 'com.microsoft' })
  const out = g.op('Add', [tokens, a])
  g.output(out, 'float32', [1, HW * HW, C], 'eps')
  g.output(temb, 'float32', [1, C], 'temb')
  return g.encode()
}

function feeds(): Record<string, ort.Tensor> {
  return {
    sample: new ort.Tensor('float32', probeValues(C * HW * HW, 11), [1, C, HW, HW]),
    timestep: new ort.Tensor('float32', Float32Array.of(999), [1]),
  }
}

async function run(model: Uint8Array): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], logSeverityLevel: 3 })
  try {
    expect(s.inputMetadata.map((m) => (m.isTensor ? m.type : ''))).toEqual(['float32', 'float32'])
    const r = await s.run(feeds())
    return Object.fromEntries(Object.entries(r).map(([k, t]) => [k, t.data as Float32Array]))
  } finally {
    await s.release()
  }
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0)
}

describe('toFp16Compute', () => {
  it('fp16 ops, fp32 islands and the fp32 timestep region; fp32 inputs and outputs', () => {
    const r = toFp16Compute(unetLike(), { mode: 'native' })
    expect(r.fp16).toMatchObject({ Conv: 1, MatMul: 4, MultiHeadAttention: 1, Sigmoid: 1 })
    // Islands, and the timestep path that never met an fp16 op (Mul, Sin, Cos, Concat) compute in fp32.
    expect(r.fp32).toMatchObject({ GroupNormalization: 1, LayerNormalization: 1, Sin: 1, Cos: 1, Concat: 1 })
    const m = onnx.ModelProto.decode(r.model)
    const outs = m.graph?.output?.map((o) => o.type?.tensorType?.elemType)
    expect(outs).toEqual([onnx.TensorProto.DataType.FLOAT, onnx.TensorProto.DataType.FLOAT])
    // fp16 weights feed fp16 ops as stored (also through a Transpose): no fp16 op reads a Cast to fp32.
    const inits = new Set(m.graph?.initializer?.filter((i) => i.dataType === 10).map((i) => i.name))
    const upcasts = new Set(
      m.graph?.node
        ?.filter((n) => n.opType === 'Cast' && inits.has(n.input?.[0] ?? ''))
        .flatMap((n) => n.output ?? []),
    )
    expect(upcasts.size).toBeGreaterThan(0)
    // Only the fp32 islands read them (their scale and bias).
    expect(m.graph?.node?.filter((n) => n.input?.some((i) => upcasts.has(i))).map((n) => n.opType)).toEqual([
      'GroupNormalization',
      'LayerNormalization',
    ])
  })

  it('native and emulated fp16 both stay within fp16 error of fp32 (CPU provider)', async () => {
    const model = unetLike()
    const fp32 = await run(model)
    const native = await run(toFp16Compute(model, { mode: 'native' }).model)
    const emulated = await run(toFp16Compute(model, { mode: 'emulate' }).model)
    const scale = maxAbs(fp32.eps as Float32Array)
    const dNative = maxAbsDiff(native.eps as Float32Array, fp32.eps as Float32Array)
    const dEmu = maxAbsDiff(emulated.eps as Float32Array, fp32.eps as Float32Array)
    // fp16 is visibly not fp32 (unit roundoff 4.9e-4), and stays within a few dozen roundoffs of it.
    for (const d of [dNative, dEmu]) {
      expect(d).toBeGreaterThan(1e-5 * scale)
      expect(d).toBeLessThan(2e-2 * scale)
    }
    // The timestep embedding is fp32 in both.
    expect(maxAbsDiff(native.temb as Float32Array, fp32.temb as Float32Array)).toBeLessThan(1e-6)
    expect(maxAbsDiff(emulated.temb as Float32Array, fp32.temb as Float32Array)).toBeLessThan(1e-6)
  })

  it('emulation rounds every stored value to fp16 (and onnxruntime keeps the Cast pairs)', async () => {
    const g = new GraphBuilder('round')
    const x = g.input('x', 'float32', [4])
    // A 1x1 single-channel Conv of weight 1 (an fp16 op), then x3.
    const x4 = g.op('Reshape', [x, g.constInt64([1, 1, 1, 4])])
    const conv = g.op('Conv', [x4, g.constFloat([1], [1, 1, 1, 1])], { kernel_shape: [1, 1] })
    const y = g.op('Mul', [conv, g.constFloat([3])])
    g.output(y, 'float32', [1, 1, 1, 4], 'y')
    const values = Float32Array.of(1.0001, Math.PI, 70000, 1e-8)
    const emulated = toFp16Compute(g.encode(), { mode: 'emulate' }).model
    const s = await ort.InferenceSession.create(emulated, {
      executionProviders: ['cpu'],
      logSeverityLevel: 3,
    })
    const r = await s.run({ x: new ort.Tensor('float32', values, [4]) })
    await s.release()
    const round = (v: Float32Array): Float32Array => f16ToF32(f32ToF16(v))
    // Conv input rounded, then x3 and rounded again; 70000 overflows fp16 as on a GPU.
    const want = round(round(values).map((v) => v * 3))
    expect(Array.from(r.y?.data as Float32Array)).toEqual(Array.from(want))
    expect(want[2]).toBe(Infinity)
  })

  it('a -1e9 constant (the causal mask) stays finite in fp16', async () => {
    const g = new GraphBuilder('mask')
    const x = g.input('x', 'float32', [2])
    g.output(
      g.op('MatMul', [g.op('Unsqueeze', [x, g.constInt64([0])]), g.constFloat([1, -1e9, 0, 1], [2, 2])]),
      'float32',
      [1, 2],
      'y',
    )
    for (const mode of ['native', 'emulate'] as const) {
      const s = await ort.InferenceSession.create(toFp16Compute(g.encode(), { mode }).model, {
        executionProviders: ['cpu'],
        logSeverityLevel: 3,
      })
      const r = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 0), [2]) })
      await s.release()
      expect(Array.from(r.y?.data as Float32Array)).toEqual([1, -65504])
    }
  })
})

describe('computeModeFor', () => {
  it('fp16 only on GPU providers and for the graphs that allow it; the CPU stays fp32', () => {
    const fp16 = { precision: 'fp16' as const }
    expect(computeModeFor('cuda', fp16, 'unet')).toBe('native')
    expect(computeModeFor('dml', fp16, 'text_encoder_2')).toBe('native')
    expect(computeModeFor('coreml', fp16, 'unet')).toBe('native')
    expect(computeModeFor('cpu', fp16, 'unet')).toBe('fp32')
    expect(computeModeFor('cuda', fp16, 'vae_decoder')).toBe('fp32')
    expect(computeModeFor('cuda', fp16, 'vae_encoder')).toBe('fp32')
    expect(computeModeFor('cuda', fp16, undefined)).toBe('fp32')
    expect(computeModeFor('cuda', {}, 'unet')).toBe('fp32')
    // WebGPU before (or without) a shader-f16 adapter: fp32.
    expect(computeModeFor('webgpu', fp16, 'unet')).toBe('fp32')
    // The oracle's CPU check of the fp16 graphs.
    expect(computeModeFor('cpu', { ...fp16, cpuFp16: 'emulate' }, 'unet')).toBe('emulate')
    expect(computeModeFor('cpu', { cpuFp16: 'emulate' }, 'unet')).toBe('fp32')
  })
})

describe('fp16 graphs and the WebGPU attention rewrite', () => {
  it('the MatMul/Softmax form of attention keeps softmax in fp32 inside an fp16 graph', async () => {
    const native = toFp16Compute(unetLike(), { mode: 'native' }).model
    const r = rewriteForWebGpu(native, { instanceNorm: true, conv: true, attention: true })
    expect(r.rewritten.MultiHeadAttention).toBe(1)
    const m = onnx.ModelProto.decode(r.model)
    const softmax = m.graph?.node?.find((n) => n.opType === 'Softmax')
    const castIn = m.graph?.node?.find(
      (n) => n.output?.includes(softmax?.input?.[0] ?? '') && n.opType === 'Mul',
    )
    expect(castIn).toBeDefined()
    const a = await run(native)
    const b = await run(r.model)
    expect(maxAbsDiff(a.eps as Float32Array, b.eps as Float32Array)).toBeLessThan(2e-2)
  })
})
