import type { TensorToWrite } from '../../model-formats/safetensors'
import { f32ToF16, writeSafetensors } from '../../model-formats/safetensors'
import { decoderLayers, encoderLayers } from '../graphs/taesd'

/**
 * A random-weight TAESD in diffusers' AutoencoderTiny layout (`diffusion_pytorch_model.safetensors`: both
 * halves, fp16), for tests (narrow) and benches (the published width, 64). Weights are uniform with a
 * He-like bound so activations stay finite through the stack; seeded, so files are reproducible.
 */
export async function writeRandomTaesd(
  file: string,
  opts: { width?: number; seed?: number; encoder?: boolean } = {},
): Promise<void> {
  const c = opts.width ?? 64
  let s = (opts.seed ?? 1) >>> 0
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const tensors: Record<string, TensorToWrite> = {}
  const conv = (name: string, cin: number, cout: number, bias: boolean): void => {
    const n = cout * cin * 9
    const bound = Math.sqrt(6 / (cin * 9))
    tensors[`${name}.weight`] = {
      dtype: 'F16',
      shape: [cout, cin, 3, 3],
      data: f32ToF16(Float32Array.from({ length: n }, () => (2 * rand() - 1) * bound * 0.5)),
    }
    if (bias)
      tensors[`${name}.bias`] = {
        dtype: 'F16',
        shape: [cout],
        data: f32ToF16(Float32Array.from({ length: cout }, () => (2 * rand() - 1) * 0.05)),
      }
  }
  const half = (part: 'decoder' | 'encoder'): void => {
    const layers = part === 'decoder' ? decoderLayers() : encoderLayers()
    const convs = layers.flatMap((l, i) => (l.kind === 'conv' ? [i] : []))
    layers.forEach((l, i) => {
      const p = `${part}.layers.${i}`
      if (l.kind === 'block') for (const k of [0, 2, 4]) conv(`${p}.conv.${k}`, c, c, true)
      if (l.kind !== 'conv') return
      const first = i === convs[0]
      const last = i === convs[convs.length - 1]
      const cin = first ? (part === 'decoder' ? 4 : 3) : c
      const cout = last ? (part === 'decoder' ? 3 : 4) : c
      // Inner decoder convs and strided encoder convs have no bias (as published).
      conv(p, cin, cout, first || last)
    })
  }
  if (opts.encoder !== false) half('encoder')
  half('decoder')
  await writeSafetensors(file, tensors)
}
