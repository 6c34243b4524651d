import * as ort from 'onnxruntime-node'
import { Consts, attention, groupNorm, silu } from '../main/engine/graphs/unet-layers'
import type { AttentionImpl, GroupNormImpl } from '../main/engine/graphs/unet-layers'
import { InlineWeights } from '../main/engine/graphs/weights'
import { GraphBuilder } from '../main/model-formats/onnx/builder'
import { sessionOptions } from '../main/engine/runtime/session'
import { loadAverage, median } from './unet-common'

/**
 * Micro-benchmarks of the UNet's hot parts at SD 1.5 / 512x512 sizes (batch 2), each alternative run
 * interleaved with the others so that load from other processes hits them alike. Prints JSON with the
 * min and median wall seconds and the median CPU seconds of the process per alternative (with `--threads 1`
 * CPU time is the robust measure on a loaded machine). Used to pick the graph forms in unet-layers.ts.
 *
 *   npx tsx bench/unet-parts.ts [--rounds 5] [--threads N] [--only attention,groupnorm,geglu,linear,conv,ceiling]
 */

interface Case {
  group: string
  name: string
  /** FLOP of one run where it is a plain product (reported as GFLOP per CPU second). */
  flops?: number
  build: () => GraphBuilder
  feeds: Record<string, ort.Tensor>
}

function rand(n: number, scale = 1): Float32Array {
  let s = 12345
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    out[i] = ((s / 4294967296) * 2 - 1) * scale
  }
  return out
}

function weights(entries: [string, number[]][]): InlineWeights {
  const m = new Map<string, { shape: number[]; data: Float32Array }>()
  for (const [name, shape] of entries) {
    const n = shape.reduce((a, b) => a * b, 1)
    const fanIn = shape.length > 1 ? n / (shape[0] as number) : 1
    m.set(name, { shape, data: rand(n, shape.length > 1 ? Math.sqrt(3 / fanIn) : 0.1) })
  }
  return m.size ? new InlineWeights(m) : new InlineWeights(new Map())
}

function attentionCase(impl: AttentionImpl | 'onnx23', s: number, l: number, c: number): Case {
  const B = 2
  return {
    group: `attention S=${s} L=${l} C=${c}`,
    name: impl,
    flops: 2 * B * 2 * s * l * c,
    build: () => {
      const g = new GraphBuilder('attn')
      const q = g.input('q', 'float32', [B, s, c])
      const k = g.input('k', 'float32', [B, l, c])
      const v = g.input('v', 'float32', [B, l, c])
      const out =
        impl === 'onnx23'
          ? g.op('Attention', [q, k, v], { q_num_heads: 8, kv_num_heads: 8 })
          : attention(g, new Consts(g), q, k, v, 8, c, impl)
      g.output(out, 'float32', [B, s, c], 'o')
      return g
    },
    feeds: {
      q: new ort.Tensor('float32', rand(B * s * c), [B, s, c]),
      k: new ort.Tensor('float32', rand(B * l * c), [B, l, c]),
      v: new ort.Tensor('float32', rand(B * l * c), [B, l, c]),
    },
  }
}

function groupNormCase(impl: GroupNormImpl, c: number, hw: number): Case {
  const B = 2
  const w = weights([
    ['n.weight', [c]],
    ['n.bias', [c]],
  ])
  return {
    group: `groupnorm+silu C=${c} ${hw}x${hw}`,
    name: impl,
    build: () => {
      const g = new GraphBuilder('gn')
      const x = g.input('x', 'float32', [B, c, hw, hw])
      g.output(silu(g, groupNorm(g, w, new Consts(g), 'n', x, c, 1e-5, impl)), 'float32', [B, c, hw, hw], 'y')
      return g
    },
    feeds: { x: new ort.Tensor('float32', rand(B * c * hw * hw), [B, c, hw, hw]) },
  }
}

function gegluCase(form: 'split' | 'two-matmuls' | 'conv1x1', s: number, c: number): Case {
  const B = 2
  const w = weights([
    ['p.weight', [8 * c, c]],
    ['p.bias', [8 * c]],
    ['o.weight', [c, 4 * c]],
    ['o.bias', [c]],
  ])
  return {
    group: `geglu S=${s} C=${c}`,
    name: form,
    flops: 2 * B * s * (c * 8 * c + 4 * c * c),
    build: () => {
      const g = new GraphBuilder('ff')
      const x = g.input('x', 'float32', [B, s, c])
      const c4 = 4 * c
      let prod: string
      if (form === 'conv1x1') {
        // tokens -> [B, C, S, 1], the three projections as 1x1 convs (NCHWc kernels), back to tokens
        const k = new Consts(g)
        const nchw = g.op('Unsqueeze', [g.op('Transpose', [x], { perm: [0, 2, 1] }), k.int64([3])])
        const c4 = 4 * c
        const kernel = (name: string, rows: [number, number] | undefined, cin: number): string => {
          let wv = w.get(g, name)
          if (rows) wv = g.op('Slice', [wv, k.int64([rows[0]]), k.int64([rows[1]]), k.int64([0])])
          return g.op('Reshape', [wv, k.int64([-1, cin, 1, 1])])
        }
        const bias = (name: string, rows?: [number, number]): string =>
          rows
            ? g.op('Slice', [w.get(g, name), k.int64([rows[0]]), k.int64([rows[1]]), k.int64([0])])
            : w.get(g, name)
        const conv = (xin: string, name: string, rows: [number, number] | undefined, cin: number): string =>
          g.op('Conv', [xin, kernel(`${name}.weight`, rows, cin), bias(`${name}.bias`, rows)], {
            kernel_shape: [1, 1],
          })
        const h = conv(nchw, 'p', [0, c4], c)
        const gate = conv(nchw, 'p', [c4, 2 * c4], c)
        const y4 = conv(g.op('Mul', [h, g.op('Gelu', [gate])]), 'o', undefined, c4)
        const y = g.op('Transpose', [g.op('Squeeze', [y4, k.int64([3])])], { perm: [0, 2, 1] })
        g.output(y, 'float32', [B, s, c], 'y')
        return g
      }
      if (form === 'split') {
        const proj = g.op('Add', [g.op('MatMul', [x, w.getLinearT(g, 'p.weight')]), w.get(g, 'p.bias')])
        const [h, gate] = g.opMulti('Split', [proj], { axis: -1, num_outputs: 2 }, { outputs: 2 }) as [
          string,
          string,
        ]
        prod = g.op('Mul', [h, g.op('Gelu', [gate])])
      } else {
        const k = new Consts(g)
        const wT = w.getLinearT(g, 'p.weight')
        const b = w.get(g, 'p.bias')
        const half = (i: number, t: string, axis: number): string =>
          g.op('Slice', [t, k.int64([i * c4]), k.int64([(i + 1) * c4]), k.int64([axis])])
        const h = g.op('Add', [g.op('MatMul', [x, half(0, wT, 1)]), half(0, b, 0)])
        const gate = g.op('Add', [g.op('MatMul', [x, half(1, wT, 1)]), half(1, b, 0)])
        prod = g.op('Mul', [h, g.op('Gelu', [gate])])
      }
      const y = g.op('Add', [g.op('MatMul', [prod, w.getLinearT(g, 'o.weight')]), w.get(g, 'o.bias')])
      g.output(y, 'float32', [B, s, c], 'y')
      return g
    },
    feeds: { x: new ort.Tensor('float32', rand(B * s * c), [B, s, c]) },
  }
}

function linearCase(form: 'matmul-add' | 'gemm', s: number, cin: number, cout: number): Case {
  const B = 2
  const w = weights([
    ['l.weight', [cout, cin]],
    ['l.bias', [cout]],
  ])
  return {
    group: `linear+bias S=${s} ${cin}->${cout}`,
    name: form,
    flops: 2 * B * s * cin * cout,
    build: () => {
      const g = new GraphBuilder('lin')
      const x = g.input('x', 'float32', [B, s, cin])
      let y: string
      if (form === 'matmul-add') {
        y = g.op('Add', [g.op('MatMul', [x, w.getLinearT(g, 'l.weight')]), w.get(g, 'l.bias')])
      } else {
        const k = new Consts(g)
        const x2 = g.op('Reshape', [x, k.int64([-1, cin])])
        const y2 = g.op('Gemm', [x2, w.get(g, 'l.weight'), w.get(g, 'l.bias')], { transB: 1 })
        y = g.op('Reshape', [y2, k.int64([B, -1, cout])])
      }
      g.output(y, 'float32', [B, s, cout], 'y')
      return g
    },
    feeds: { x: new ort.Tensor('float32', rand(B * s * cin), [B, s, cin]) },
  }
}

function convCase(cin: number, cout: number, hw: number): Case {
  const B = 2
  const w = weights([
    ['c.weight', [cout, cin, 3, 3]],
    ['c.bias', [cout]],
  ])
  return {
    group: `conv3x3 ${cin}->${cout} ${hw}x${hw}`,
    name: 'conv',
    flops: 2 * B * cin * cout * 9 * hw * hw,
    build: () => {
      const g = new GraphBuilder('conv')
      const x = g.input('x', 'float32', [B, cin, hw, hw])
      const y = g.op('Conv', [x, w.get(g, 'c.weight'), w.get(g, 'c.bias')], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
      })
      g.output(y, 'float32', [B, cout, hw, hw], 'y')
      return g
    },
    feeds: { x: new ort.Tensor('float32', rand(B * cin * hw * hw), [B, cin, hw, hw]) },
  }
}

/** An n^3 MatMul with B fed at run time (`input`) or a constant initializer that ORT prepacks (`const`). */
function matmulCase(n: number, form: 'input' | 'const'): Case {
  const bData = rand(n * n)
  return {
    group: `ceiling matmul ${n}^3`,
    name: form,
    flops: 2 * n ** 3,
    build: () => {
      const g = new GraphBuilder('mm')
      const a = g.input('a', 'float32', [n, n])
      const b =
        form === 'input'
          ? g.input('b', 'float32', [n, n])
          : g.initializer('b', 'float32', [n, n], new Uint8Array(bData.buffer))
      g.output(g.op('MatMul', [a, b]), 'float32', [n, n], 'c')
      return g
    },
    feeds: {
      a: new ort.Tensor('float32', rand(n * n), [n, n]),
      ...(form === 'input' ? { b: new ort.Tensor('float32', bData, [n, n]) } : {}),
    },
  }
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

async function main(): Promise<void> {
  const rounds = Number(arg('rounds', '5'))
  const only = arg('only', 'attention,groupnorm,geglu,linear,conv,ceiling').split(',')
  const cases: Case[] = []
  if (only.includes('attention'))
    for (const [s, l, c] of [
      [4096, 4096, 320],
      [1024, 1024, 640],
      [4096, 77, 320],
    ] as const)
      for (const impl of ['mha', 'unfused', 'onnx23'] as const) cases.push(attentionCase(impl, s, l, c))
  if (only.includes('groupnorm'))
    for (const [c, hw] of [
      [320, 64],
      [640, 32],
    ] as const)
      for (const impl of ['native', 'instance'] as const) cases.push(groupNormCase(impl, c, hw))
  if (only.includes('linear'))
    for (const [s, cin, cout] of [
      [4096, 320, 320],
      [4096, 1280, 320],
      [1024, 640, 2560],
    ] as const)
      for (const form of ['matmul-add', 'gemm'] as const) cases.push(linearCase(form, s, cin, cout))
  if (only.includes('conv'))
    for (const [cin, cout, hw] of [
      [320, 320, 64],
      [640, 640, 32],
      [1280, 1280, 16],
      [2560, 1280, 8],
    ] as const)
      cases.push(convCase(cin, cout, hw))
  if (only.includes('ceiling'))
    for (const n of [4096, 2048])
      for (const form of ['input', 'const'] as const) cases.push(matmulCase(n, form))
  if (only.includes('geglu'))
    for (const form of ['split', 'two-matmuls', 'conv1x1'] as const) cases.push(gegluCase(form, 4096, 320))

  const opts = sessionOptions('cpu', { threads: Number(arg('threads', '0')) || undefined })
  const sessions = new Map<Case, ort.InferenceSession | string>()
  for (const c of cases) {
    try {
      const opset = c.name === 'onnx23' ? 23 : 21
      sessions.set(c, await ort.InferenceSession.create(c.build().encode({ opset }), opts))
    } catch (err) {
      sessions.set(c, (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? 'failed')
    }
  }
  const times = new Map<Case, number[]>(cases.map((c) => [c, []]))
  const cpu = new Map<Case, number[]>(cases.map((c) => [c, []]))
  for (let r = 0; r <= rounds; r++) {
    for (const c of cases) {
      const s = sessions.get(c)
      if (typeof s === 'string' || !s) continue
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      await s.run(c.feeds)
      const used = process.cpuUsage(c0)
      if (r > 0) {
        times.get(c)?.push((performance.now() - t0) / 1000)
        cpu.get(c)?.push((used.user + used.system) / 1e6)
      }
    }
  }
  const groups: Record<string, Record<string, unknown>> = {}
  for (const c of cases) {
    const s = sessions.get(c)
    const t = times.get(c) ?? []
    const u = cpu.get(c) ?? []
    groups[c.group] ??= {}
    ;(groups[c.group] as Record<string, unknown>)[c.name] =
      typeof s === 'string'
        ? { error: s }
        : {
            min_s: +Math.min(...t).toFixed(4),
            median_s: +median(t).toFixed(4),
            cpu_median_s: +median(u).toFixed(4),
            ...(c.flops ? { gflops_per_cpu_s: +(c.flops / median(u) / 1e9).toFixed(1) } : {}),
          }
    if (typeof s !== 'string') await s?.release()
  }
  process.stdout.write(
    `${JSON.stringify({ bench: 'unet-parts', rounds, groups, load_average: loadAverage() }, null, 2)}\n`,
  )
}

await main()
