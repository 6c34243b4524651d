import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterEach, describe, expect, it } from 'vitest'
import { GraphBuilder } from '../../model-formats/onnx/builder'
import { ActiveModel, ModelSet } from './model-set'
import {
  NO_GPU_DEVICE,
  linuxGpuDeviceNodes,
  markProviderFailed,
  physicalCores,
  providerCandidates,
  resetProviderFailures,
} from './providers'
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

  it('auto on Linux tries WebGPU only where a GPU device node exists (never a software Vulkan)', () => {
    const none = providerCandidates('auto', 'linux', () => [])
    expect(none.order).not.toContain('webgpu')
    expect(none.skipped).toContainEqual({ provider: 'webgpu', reason: NO_GPU_DEVICE })
    const gpu = providerCandidates('auto', 'linux', () => ['/dev/dri/renderD128'])
    expect(gpu.order.slice(-2)).toEqual(['webgpu', 'cpu'])
    // Chosen by hand, WebGPU is tried whatever the device nodes say (SwiftShader / lavapipe in tests).
    expect(providerCandidates('webgpu', 'linux', () => []).order).toEqual(['webgpu', 'cpu'])
    expect(providerCandidates('auto', 'win32', () => []).order).toContain('webgpu')
  })

  it('finds render nodes, NVIDIA and WSL device nodes', () => {
    const dev = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-dev-'))
    try {
      expect(linuxGpuDeviceNodes(dev)).toEqual([])
      fs.mkdirSync(path.join(dev, 'dri'))
      for (const f of ['dri/card0', 'dri/renderD128', 'nvidiactl', 'nvidia0', 'dxg', 'null'])
        fs.writeFileSync(path.join(dev, f), '')
      expect(
        linuxGpuDeviceNodes(dev)
          .map((p) => path.relative(dev, p))
          .sort(),
      ).toEqual(['dri/renderD128', 'dxg', 'nvidia0'])
    } finally {
      fs.rmSync(dev, { recursive: true, force: true })
    }
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

describe('model sets', () => {
  it('runs a diffusers/optimum ONNX layout (int32 ids, int64 timestep, out_sample) without conversion', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-onnx-'))
    try {
      const write = (name: string, g: GraphBuilder): void => {
        fs.mkdirSync(path.join(dir, name))
        fs.writeFileSync(path.join(dir, name, 'model.onnx'), g.encode())
      }
      const te = new GraphBuilder('te')
      const ids = te.input('input_ids', 'int32', ['b', 's'])
      te.output(
        te.op('Unsqueeze', [te.op('Cast', [ids], { to: 1 }), te.constInt64([2])]),
        'float32',
        ['b', 's', 1],
        'last_hidden_state',
      )
      write('text_encoder', te)
      const un = new GraphBuilder('unet')
      const x = un.input('sample', 'float32', ['b', 4, 'h', 'w'])
      const t = un.input('timestep', 'int64', [1])
      un.input('encoder_hidden_states', 'float32', ['b', 's', 1])
      un.output(un.op('Mul', [x, un.op('Cast', [t], { to: 1 })]), 'float32', ['b', 4, 'h', 'w'], 'out_sample')
      write('unet', un)
      const vd = new GraphBuilder('vd')
      const z = vd.input('latent_sample', 'float32', ['b', 4, 'h', 'w'])
      vd.output(vd.op('Neg', [z]), 'float32', ['b', 4, 'h', 'w'], 'sample')
      write('vae_decoder', vd)

      const set = ModelSet.fromFolder(dir, { preference: 'cpu' })
      expect(set.has('vae_encoder')).toBe(false)
      const h = await set.encodeText(BigInt64Array.from([49406n, 7n]), 1)
      expect([...(h.data as Float32Array)]).toEqual([49406, 7])
      await expect(set.encodeText(BigInt64Array.from([1n]), 1, 2)).rejects.toThrow(/CLIP skip 2 unsupported/)
      const eps = await set.unet(new ort.Tensor('float32', new Float32Array(4).fill(2), [1, 4, 1, 1]), 3, h)
      expect([...(eps.data as Float32Array)]).toEqual([6, 6, 6, 6])
      const img = await set.decode(new ort.Tensor('float32', new Float32Array(4).fill(1), [1, 4, 1, 1]))
      expect([...(img.data as Float32Array)]).toEqual([-1, -1, -1, -1])
      expect(set.graph('unet').loaded).toBe(true)

      const active = new ActiveModel()
      await active.use(set)
      await active.use(ModelSet.fromFolder(dir, { preference: 'cpu' }))
      expect(set.graph('unet').loaded).toBe(false)
      await active.release()
      expect(() => ModelSet.fromFolder(os.tmpdir())).toThrow(/no ONNX pipeline here/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
