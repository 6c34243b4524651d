import * as ort from 'onnxruntime-node'
import { afterEach, describe, expect, it } from 'vitest'
import { GraphBuilder } from '../../model-formats/onnx/builder'
import { markProviderFailed, physicalCores, providerCandidates, resetProviderFailures } from './providers'
import { openSession, validateFeeds } from './session'

function addGraph(): Uint8Array {
  const g = new GraphBuilder('add')
  const a = g.input('a', 'float32', ['n'])
  const b = g.input('b', 'int64', [2])
  g.output(g.op('Add', [a, g.constFloat([1], [1])]), 'float32', ['n'], 'y')
  g.output(b, 'int64', [2], 'b_out')
  return g.encode()
}

afterEach(() => resetProviderFailures())

describe('execution providers', () => {
  it('orders platform providers with CPU always last', () => {
    expect(providerCandidates('cpu').order).toEqual(['cpu'])
    const win = providerCandidates('auto', 'win32').order
    expect(win).toContain('dml')
    expect(win[win.length - 1]).toBe('cpu')
    const mac = providerCandidates('auto', 'darwin').order
    expect(mac).toEqual(['coreml', 'cpu'])
    expect(providerCandidates('cuda').order).toEqual(['cuda', 'cpu'])
  })

  it('skips a provider that failed before, with its reason', () => {
    markProviderFailed('coreml', 'CoreML refused the model')
    const c = providerCandidates('auto', 'darwin')
    expect(c.order).toEqual(['cpu'])
    expect(c.skipped).toEqual([{ provider: 'coreml', reason: 'CoreML refused the model' }])
  })

  it('falls back to CPU and reports why', async () => {
    markProviderFailed('webgpu', 'no adapter')
    const reasons: string[] = []
    const s = await openSession(addGraph(), {
      preference: 'webgpu',
      onFallback: (k) => reasons.push(`${k.provider}: ${k.reason}`),
    })
    expect(s.provider).toBe('cpu')
    expect(reasons).toEqual(['webgpu: no adapter'])
    await s.session.release()
  })

  it('counts physical cores', () => {
    expect(physicalCores()).toBeGreaterThanOrEqual(1)
  })

  it('validates feeds against the session inputs', async () => {
    const { session } = await openSession(addGraph(), { preference: 'cpu' })
    const a = new ort.Tensor('float32', new Float32Array(3), [3])
    const b = new ort.Tensor('int64', new BigInt64Array(2), [2])
    expect(() => validateFeeds('g', session, { a })).toThrow(
      /g: missing input\(s\) b \(the graph takes a, b\)/,
    )
    expect(() => validateFeeds('g', session, { a, b, c: a })).toThrow(/unknown input\(s\) c/)
    expect(() => validateFeeds('g', session, { a: b, b })).toThrow(/input a must be float32, got int64/)
    expect(() =>
      validateFeeds('g', session, { a, b: new ort.Tensor('int64', new BigInt64Array(3), [3]) }),
    ).toThrow(/dimension 0 must be 2/)
    expect(() => validateFeeds('g', session, { a, b })).not.toThrow()
    await session.release()
  })
})
