import { GraphBuilder } from '../../model-formats/onnx/builder'
import { conv2d } from './nn'
import type { WeightProvider } from './weights'

/**
 * TAESD / TAESDXL (madebyollin's tiny autoencoder, MIT; diffusers `AutoencoderTiny`) as ONNX graphs, in the
 * published architecture:
 *
 *   Block(c): relu(conv3(relu(conv3(relu(conv3(x))))) + skip(x))     (skip: 1x1 conv without bias when the
 *                                                                     widths differ, else identity)
 *   Decoder:  tanh(z/3)*3 -> conv(4->64) relu -> 3 Block, up2, conv(no bias) -> 3 Block, up2, conv ->
 *             3 Block, up2, conv -> 1 Block -> conv(64->3)                     (diffusers then maps [0,1] -> [-1,1])
 *   Encoder:  (x+1)/2 -> conv(3->64) Block -> [conv stride 2 (no bias), 3 Block] x3 -> conv(64->4)
 *
 * Canonical names are diffusers' (`decoder.layers.<i>.conv.<0|2|4>`, `encoder.layers.<i>`, index = the
 * nn.Sequential position, parameterless layers included). madebyollin's own files (`taesd_decoder.*`: a
 * Clamp module first, so every index is one higher; `taesd_encoder.*`) are mapped by `taesdKeyMap`.
 *
 * Both work on the diffusion model's SCALED latents (the VAE's latents times its scaling factor): the
 * decoder takes what the UNet denoises, the encoder returns it. H and W are dynamic.
 */

export const TAESD_DECODER_BLOCKS = [3, 3, 3, 1]
export const TAESD_ENCODER_BLOCKS = [1, 3, 3, 3]

export type TaesdLayer =
  { kind: 'conv'; stride: number } | { kind: 'relu' } | { kind: 'up' } | { kind: 'block' }

/** The nn.Sequential of diffusers' DecoderTiny, index by index. */
export function decoderLayers(): TaesdLayer[] {
  const out: TaesdLayer[] = [{ kind: 'conv', stride: 1 }, { kind: 'relu' }]
  TAESD_DECODER_BLOCKS.forEach((n, i) => {
    for (let j = 0; j < n; j++) out.push({ kind: 'block' })
    if (i < TAESD_DECODER_BLOCKS.length - 1) out.push({ kind: 'up' })
    out.push({ kind: 'conv', stride: 1 })
  })
  return out
}

/** The nn.Sequential of diffusers' EncoderTiny, index by index. */
export function encoderLayers(): TaesdLayer[] {
  const out: TaesdLayer[] = []
  TAESD_ENCODER_BLOCKS.forEach((n, i) => {
    out.push({ kind: 'conv', stride: i === 0 ? 1 : 2 })
    for (let j = 0; j < n; j++) out.push({ kind: 'block' })
  })
  out.push({ kind: 'conv', stride: 1 })
  return out
}

/** Which halves a weight set has, from its canonical names. */
export function taesdParts(names: Iterable<string>): { decoder: boolean; encoder: boolean } {
  const all = [...names]
  const has = (k: string): boolean => all.includes(k)
  const dec = decoderLayers()
  const enc = encoderLayers()
  return {
    decoder: has('decoder.layers.0.weight') && has(`decoder.layers.${dec.length - 1}.weight`),
    encoder: has('encoder.layers.0.weight') && has(`encoder.layers.${enc.length - 1}.weight`),
  }
}

/**
 * Canonical name of a key in any of the published layouts, or undefined: diffusers
 * (`decoder.layers.N...`), or madebyollin's separate files where `part` says which half the file is
 * (decoder keys `N...` with N one higher, encoder keys `N...`).
 */
export function taesdKeyMap(key: string, part?: 'decoder' | 'encoder'): string | undefined {
  if (/^(decoder|encoder)\.layers\.\d+\./.test(key)) return key
  const m = /^(\d+)\.(.+)$/.exec(key)
  if (!m || !part) return undefined
  const i = Number(m[1]) - (part === 'decoder' ? 1 : 0)
  return i >= 0 ? `${part}.layers.${i}.${m[2]}` : undefined
}

function block(g: GraphBuilder, w: WeightProvider, p: string, x: string): string {
  let h = g.op('Relu', [conv2d(g, w, `${p}.conv.0`, x)])
  h = g.op('Relu', [conv2d(g, w, `${p}.conv.2`, h)])
  h = conv2d(g, w, `${p}.conv.4`, h)
  const skip = w.has(`${p}.skip.weight`) ? conv2d(g, w, `${p}.skip`, x) : x
  return g.op('Relu', [g.op('Add', [h, skip])])
}

function run(g: GraphBuilder, w: WeightProvider, prefix: string, layers: TaesdLayer[], x: string): string {
  const scales = layers.some((l) => l.kind === 'up') ? g.constFloat([1, 1, 2, 2], [4], 'up_scales') : ''
  let h = x
  layers.forEach((l, i) => {
    const p = `${prefix}.layers.${i}`
    if (l.kind === 'conv') h = conv2d(g, w, p, h, { stride: l.stride, pad: 1 })
    else if (l.kind === 'relu') h = g.op('Relu', [h])
    else if (l.kind === 'block') h = block(g, w, p, h)
    else
      h = g.op('Resize', [h, '', scales], {
        mode: 'nearest',
        coordinate_transformation_mode: 'asymmetric',
        nearest_mode: 'floor',
      })
  })
  return h
}

/** Decoder: `latent_sample` [B, 4, h, w] (scaled latents) -> `sample` [B, 3, 8h, 8w] in about [-1, 1]. */
export function buildTaesdDecoder(w: WeightProvider): GraphBuilder {
  const g = new GraphBuilder('taesd_decoder')
  const z = g.input('latent_sample', 'float32', ['batch', 4, 'latent_height', 'latent_width'])
  const three = g.constFloat([3], [], 'three')
  const clamped = g.op('Mul', [g.op('Tanh', [g.op('Div', [z, three])]), three])
  const y = run(g, w, 'decoder', decoderLayers(), clamped)
  const out = g.op('Sub', [g.op('Mul', [y, g.constFloat([2], [], 'two')]), g.constFloat([1], [], 'one')])
  g.output(out, 'float32', ['batch', 3, 'height', 'width'], 'sample')
  return g
}

/** Encoder: `image` [B, 3, H, W] in [-1, 1] -> `latents` [B, 4, H/8, W/8] (scaled latents). */
export function buildTaesdEncoder(w: WeightProvider): GraphBuilder {
  const g = new GraphBuilder('taesd_encoder')
  const x = g.input('image', 'float32', ['batch', 3, 'height', 'width'])
  const half = g.constFloat([0.5], [], 'half')
  const unit = g.op('Mul', [g.op('Add', [x, g.constFloat([1], [], 'one')]), half])
  const z = run(g, w, 'encoder', encoderLayers(), unit)
  g.output(z, 'float32', ['batch', 4, 'latent_height', 'latent_width'], 'latents')
  return g
}
