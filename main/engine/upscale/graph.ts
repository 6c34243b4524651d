import { GraphBuilder } from '../../model-formats/onnx/builder'
import { conv2d } from '../graphs/nn'
import { InlineWeights } from '../graphs/weights'
import type { RrdbArch, SrvggArch, UpscalerArch } from '../../model-formats/probe/upscaler'
import type { LoadedTensor, UpscalerWeights } from './weights'

/**
 * ONNX graphs of the upscalers, built by the same GraphBuilder as the SD models. Input `image`
 * float32 [batch, C, H, W] in [0, 1]; output `output` [batch, C, s*H, s*W], not clamped. H and W are
 * dynamic (multiples of the pixel-unshuffle factor for BasicSR x2 / x1 models).
 */

export const INPUT = 'image'
export const OUTPUT = 'output'

function lrelu(g: GraphBuilder, x: string, slope: number): string {
  return g.op('LeakyRelu', [x], { alpha: { float: slope } })
}

function upsampleNearest(g: GraphBuilder, x: string, factor: number): string {
  const scales = g.constFloat([1, 1, factor, factor], [4], `up${factor}_scales`)
  return g.op('Resize', [x, '', scales], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  })
}

/**
 * BasicSR's pixel_unshuffle puts input channel c, offset (dy, dx) at channel c*r*r + dy*r + dx; ONNX
 * SpaceToDepth puts it at (dy*r + dx)*C + c. Permuting conv_first's input channels makes SpaceToDepth exact.
 */
function permuteForSpaceToDepth(t: LoadedTensor, channels: number, r: number): LoadedTensor {
  const [o = 0, i = 0, kh = 1, kw = 1] = t.shape
  const k = kh * kw
  const out = new Float32Array(t.data.length)
  for (let oc = 0; oc < o; oc++)
    for (let c = 0; c < channels; c++)
      for (let dy = 0; dy < r; dy++)
        for (let dx = 0; dx < r; dx++) {
          const from = c * r * r + dy * r + dx
          const to = (dy * r + dx) * channels + c
          out.set(t.data.subarray((oc * i + from) * k, (oc * i + from + 1) * k), (oc * i + to) * k)
        }
  return { shape: t.shape, data: out }
}

function rdb(g: GraphBuilder, w: InlineWeights, p: string, x: string): string {
  const feats = [x]
  for (let k = 1; k <= 4; k++) {
    const input = feats.length === 1 ? x : g.op('Concat', [...feats], { axis: 1 })
    feats.push(lrelu(g, conv2d(g, w, `${p}.conv${k}`, input), 0.2))
  }
  const x5 = conv2d(g, w, `${p}.conv5`, g.op('Concat', [...feats], { axis: 1 }))
  return g.op('Add', [g.op('Mul', [x5, g.constFloat([0.2], [], 'rdb_scale')]), x])
}

function buildRrdb(arch: RrdbArch, weights: UpscalerWeights): GraphBuilder {
  const tensors = new Map(weights.tensors)
  if (arch.unshuffle > 1) {
    const first = tensors.get('conv_first.weight')
    if (first)
      tensors.set('conv_first.weight', permuteForSpaceToDepth(first, arch.inChannels, arch.unshuffle))
  }
  const w = new InlineWeights(tensors)
  const g = new GraphBuilder('rrdbnet')
  const x = g.input(INPUT, 'float32', ['batch', arch.inChannels, 'height', 'width'])
  let h = arch.unshuffle > 1 ? g.op('SpaceToDepth', [x], { blocksize: arch.unshuffle }) : x
  const feat = conv2d(g, w, 'conv_first', h)
  h = feat
  for (let n = 0; n < arch.numBlock; n++) {
    let r = h
    for (let m = 1; m <= 3; m++) r = rdb(g, w, `body.${n}.rdb${m}`, r)
    h = g.op('Add', [g.op('Mul', [r, g.constFloat([0.2], [], 'rrdb_scale')]), h])
  }
  h = g.op('Add', [feat, conv2d(g, w, 'conv_body', h)])
  arch.ups.forEach((u, i) => {
    if (u.mode === 'nearest') h = lrelu(g, conv2d(g, w, `up.${i}`, upsampleNearest(g, h, u.factor)), 0.2)
    else
      h = lrelu(
        g,
        g.op('DepthToSpace', [conv2d(g, w, `up.${i}`, h)], { blocksize: u.factor, mode: 'CRD' }),
        0.2,
      )
  })
  h = conv2d(g, w, 'conv_last', lrelu(g, conv2d(g, w, 'conv_hr', h), 0.2))
  g.output(h, 'float32', ['batch', arch.outChannels, 'out_height', 'out_width'], OUTPUT)
  return g
}

function buildSrvgg(arch: SrvggArch, weights: UpscalerWeights): GraphBuilder {
  const tensors = new Map(weights.tensors)
  // PReLU slopes [F] broadcast over channels as [F, 1, 1].
  for (const [k, t] of tensors)
    if (t.shape.length === 1 && /^body\.\d*[13579]\.weight$/.test(k))
      tensors.set(k, { shape: [t.shape[0] ?? 0, 1, 1], data: t.data })
  const w = new InlineWeights(tensors)
  const g = new GraphBuilder('srvgg')
  const x = g.input(INPUT, 'float32', ['batch', arch.inChannels, 'height', 'width'])
  const last = 2 * (arch.numConv + 1)
  let h = x
  for (let i = 0; i <= last; i += 2) {
    h = conv2d(g, w, `body.${i}`, h)
    if (i === last) break
    if (arch.act === 'prelu') h = g.op('PRelu', [h, w.get(g, `body.${i + 1}.weight`)])
    else if (arch.act === 'leakyrelu') h = lrelu(g, h, 0.1)
    else h = g.op('Relu', [h])
  }
  const shuffled = g.op('DepthToSpace', [h], { blocksize: arch.scale, mode: 'CRD' })
  const base = arch.scale === 1 ? x : upsampleNearest(g, x, arch.scale)
  g.output(
    g.op('Add', [shuffled, base]),
    'float32',
    ['batch', arch.outChannels, 'out_height', 'out_width'],
    OUTPUT,
  )
  return g
}

export function buildUpscalerGraph(
  weights: UpscalerWeights,
  arch: UpscalerArch = weights.arch,
): GraphBuilder {
  return arch.kind === 'rrdbnet' ? buildRrdb(arch, weights) : buildSrvgg(arch, weights)
}

/** Multiply-accumulate count of one forward pass on an H x W input (for GFLOP/s: FLOPs = 2 x MACs). */
export function upscalerMacs(arch: UpscalerArch, height: number, width: number): number {
  const k = 9
  if (arch.kind === 'srvgg') {
    const px = height * width
    const f = arch.numFeat
    return (
      px * k * (arch.inChannels * f + arch.numConv * f * f + f * arch.inChannels * arch.scale * arch.scale)
    )
  }
  const f = arch.numFeat
  const gc = arch.numGrow
  let px = (height / arch.unshuffle) * (width / arch.unshuffle)
  let macs = px * k * arch.inChannels * arch.unshuffle * arch.unshuffle * f
  let rdbMacs = 0
  for (let c = 1; c <= 4; c++) rdbMacs += (f + (c - 1) * gc) * gc
  rdbMacs += (f + 4 * gc) * f
  macs += px * k * (arch.numBlock * 3 * rdbMacs + f * f)
  for (const u of arch.ups) {
    if (u.mode === 'nearest') {
      px *= u.factor * u.factor
      macs += px * k * f * f
    } else {
      macs += px * k * f * f * u.factor * u.factor
      px *= u.factor * u.factor
    }
  }
  macs += px * k * (f * f + f * arch.outChannels)
  return macs
}
