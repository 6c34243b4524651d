import * as ort from 'onnxruntime-node'
import { GraphBuilder } from '../../model-formats/onnx/builder'
import type { ProviderName, ProviderPreference, ProviderSkip } from './providers'
import { providerCandidates } from './providers'
import { firstUsableProvider, openSession } from './session'
import { probeValues } from './webgpu'

/**
 * Provider checks that run real work instead of looking at files: which provider a preference will open
 * (before a model is converted for it), and the Settings "Test" of one provider on a tiny graph.
 */

function firstLine(err: unknown): string {
  const s = err instanceof Error ? err.message : String(err)
  return (s.split('\n').find((l) => l.trim()) ?? s).trim().slice(0, 300)
}

/**
 * Settles the WebGPU candidate of a preference by asking for an adapter (the probe session of webgpu.ts):
 * where none comes up it is marked failed with ORT's reason, so providerCandidates (and the weight precision
 * chosen from it) no longer count on it. Returns the first provider left and the reasons others were skipped.
 */
export async function settleProvider(
  preference: ProviderPreference = 'auto',
): Promise<{ provider: ProviderName; skipped: ProviderSkip[] }> {
  const provider = await firstUsableProvider({ preference })
  return { provider, skipped: providerCandidates(preference).skipped }
}

export interface ProviderTestResult {
  /** The provider that was asked for. */
  provider: ProviderName
  /** Whether that provider opened and ran the graph (not a CPU fallback). */
  ok: boolean
  /** The provider that actually ran. */
  ran: ProviderName
  /** Session creation, then the median of 3 runs after a warm-up, in ms. */
  createMs: number
  runMs: number
  /** Max |diff| of the output against the CPU provider's. */
  maxDiff: number
  message: string
}

/**
 * The tiny graph of the Test button: conv 3x3 (8 -> 16 channels on 16x16), GroupNorm as
 * InstanceNormalization, SiLU, one-head self-attention over the 256 positions, a 1x1 conv: the ops a UNet
 * step is made of, small enough to run in milliseconds.
 */
export function testGraph(): { model: Uint8Array; feeds: Record<string, ort.Tensor> } {
  const g = new GraphBuilder('provider_test')
  const x = g.input('x', 'float32', [1, 8, 16, 16])
  const w1 = g.constFloat(
    probeValues(16 * 8 * 9, 21).map((v) => v * 0.1),
    [16, 8, 3, 3],
  )
  let h = g.op('Conv', [x, w1], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })
  const grouped = g.op('Reshape', [h, g.constInt64([0, 4, -1])])
  const normed = g.op(
    'InstanceNormalization',
    [grouped, g.constFloat([1, 1, 1, 1]), g.constFloat([0, 0, 0, 0])],
    {
      epsilon: { float: 1e-5 },
    },
  )
  h = g.op('Reshape', [normed, g.constInt64([1, 16, 16, 16])])
  h = g.op('Mul', [h, g.op('Sigmoid', [h])])
  const tokens = g.op('Transpose', [g.op('Reshape', [h, g.constInt64([1, 16, -1])])], { perm: [0, 2, 1] })
  const a = g.op(
    'MultiHeadAttention',
    [tokens, tokens, tokens],
    { num_heads: 1 },
    { domain: 'com.microsoft' },
  )
  const back = g.op('Reshape', [g.op('Transpose', [a], { perm: [0, 2, 1] }), g.constInt64([1, 16, 16, 16])])
  const w2 = g.constFloat(
    probeValues(4 * 16, 22).map((v) => v * 0.1),
    [4, 16, 1, 1],
  )
  g.output(g.op('Conv', [back, w2], { kernel_shape: [1, 1] }), 'float32', [1, 4, 16, 16], 'out')
  const feeds = { x: new ort.Tensor('float32', probeValues(8 * 16 * 16, 23), [1, 8, 16, 16]) }
  return { model: g.encode(), feeds }
}

async function timedRuns(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>) {
  const first = await s.run(feeds)
  const times: number[] = []
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now()
    await s.run(feeds)
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  return { out: first.out?.data as Float32Array, ms: times[1] as number }
}

/** Runs the test graph on exactly `provider` (a fallback to CPU counts as a failure, with its reason). */
export async function testProvider(provider: ProviderName): Promise<ProviderTestResult> {
  const { model, feeds } = testGraph()
  const skips: ProviderSkip[] = []
  const t0 = performance.now()
  let opened
  try {
    opened = await openSession(model, { preference: provider, onFallback: (s) => skips.push(s) })
  } catch (err) {
    const message = firstLine(err)
    return { provider, ok: false, ran: 'cpu', createMs: 0, runMs: 0, maxDiff: Infinity, message }
  }
  const createMs = performance.now() - t0
  const cpu = provider === 'cpu' ? opened : await openSession(model, { preference: 'cpu' })
  try {
    const mine = await timedRuns(opened.session, feeds)
    const ref = provider === 'cpu' ? mine : await timedRuns(cpu.session, feeds)
    let maxDiff = 0
    for (let i = 0; i < ref.out.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs((mine.out[i] as number) - (ref.out[i] as number)))
    if (Number.isNaN(maxDiff)) maxDiff = Infinity
    const ran = opened.provider
    const skip = skips.find((s) => s.provider === provider)
    const ok = ran === provider && maxDiff < 1e-3
    const message =
      ran !== provider
        ? `${provider} did not start: ${skip?.reason ?? 'unavailable'}`
        : !ok
          ? `${provider} ran but its result differs from the CPU's by ${maxDiff.toExponential(2)}`
          : `${provider}: session ${createMs.toFixed(0)} ms, run ${mine.ms.toFixed(1)} ms` +
            (provider === 'cpu' ? '' : ` (max |diff| vs CPU ${maxDiff.toExponential(1)})`)
    return { provider, ok, ran, createMs, runMs: mine.ms, maxDiff, message }
  } finally {
    await opened.session.release()
    if (cpu !== opened) await cpu.session.release()
  }
}
