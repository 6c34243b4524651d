import fs from 'node:fs'
import path from 'node:path'
import { onnx } from '../onnx/builder'
import { toFloat32 } from '../safetensors'
import type { DType } from '../safetensors'
import type { LoraFile, LoraPair, LoraTarget } from './lora-file'
import { LoraError, ModuleIndex } from './lora-file'
import { kohyaUnetModuleMap } from './unet-keys'

/**
 * Which base-graph weight each LoRA pair modifies, with the shapes checked. A converted graph names each
 * weight initializer by its canonical name, so the graph itself is the index (no table).
 */

export interface Delta {
  /** Index of the LoRA in the applied list (its multiplier input / value). */
  lora: number
  file: LoraFile
  pair: LoraPair
  rank: number
  /** alpha / rank (alpha defaults to the rank). */
  alphaScale: number
  /** Rows of the up matrix (the weight's output dimension). */
  out: number
  /** Down matrix shape after the rank ([in] for Linear, [in, kh, kw] for conv). */
  downTail: number[]
  /** Factors computed here instead of read from the file (LoHa as a rank r1*r2 pair). */
  factors?: { up: Float32Array; down: Float32Array }
}

export function numel(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1)
}

/** Deltas of every pair of the given LoRA files, grouped by the graph they touch. */
export async function deltasByGraph(files: LoraFile[]): Promise<Map<LoraTarget, Delta[]>> {
  const out = new Map<LoraTarget, Delta[]>()
  for (const [i, file] of files.entries()) {
    for (const pair of file.pairs) {
      const down = file.st.info(pair.downKey)
      const up = file.st.info(pair.upKey)
      const rank = down.shape[0] ?? 1
      const alpha = pair.alphaKey ? ((await file.st.readFloat32(pair.alphaKey))[0] ?? rank) : rank
      if ((up.shape[1] ?? 0) !== rank || numel(up.shape.slice(2)) !== 1)
        throw new LoraError(
          `${path.basename(file.path)}: ${pair.module} has lora_up [${up.shape}] that does not fit lora_down [${down.shape}]`,
          'bad-lora',
        )
      const graph: LoraTarget = pair.target
      const d: Delta = {
        lora: i,
        file,
        pair,
        rank,
        alphaScale: alpha / rank,
        out: up.shape[0] ?? 0,
        downTail: down.shape.slice(1),
      }
      out.set(graph, [...(out.get(graph) ?? []), d])
    }
  }
  return out
}

/** Maps deltas onto the base graph's weight initializers; readable errors for another family. */
export function resolveTargets(
  graph: LoraTarget,
  inits: Map<string, onnx.ITensorProto>,
  deltas: Delta[],
): Map<string, Delta[]> {
  // kohya UNet names may be flattened diffusers or LDM paths; the UNet map knows both spellings.
  const index = new ModuleIndex(inits.keys(), graph === 'unet' ? kohyaUnetModuleMap(inits.keys()) : [])
  const byWeight = new Map<string, Delta[]>()
  const unresolved: string[] = []
  for (const d of deltas) {
    const w = index.resolve(d.pair)
    if (!w) {
      unresolved.push(d.pair.downKey)
      continue
    }
    const dims = (inits.get(w)?.dims ?? []).map(Number)
    if (d.out !== dims[0] || d.out * numel(d.downTail) !== numel(dims)) {
      throw new LoraError(
        `${path.basename(d.file.path)}: layer ${d.pair.module} is ${d.out}x${numel(d.downTail)} ` +
          `(rank ${d.rank}) in the LoRA but [${dims.join(', ')}] in the checkpoint; ` +
          'the LoRA was made for another model family (SD 2.x or SDXL?)',
        'lora-family',
      )
    }
    byWeight.set(w, [...(byWeight.get(w) ?? []), d])
  }
  if (unresolved.length) {
    const file = path.basename(deltas[0]?.file.path ?? '')
    throw new LoraError(
      `${file}: ${unresolved.length} of ${deltas.length} ${graph} layers match nothing in this checkpoint ` +
        `(e.g. ${unresolved.slice(0, 3).join(', ')}); the LoRA was made for another model family`,
      'lora-family',
    )
  }
  return byWeight
}

const DTYPE_OF: Record<number, DType> = {
  [onnx.TensorProto.DataType.FLOAT]: 'F32',
  [onnx.TensorProto.DataType.FLOAT16]: 'F16',
  [onnx.TensorProto.DataType.BFLOAT16]: 'BF16',
}

export function externalInfo(
  t: onnx.ITensorProto,
): { location: string; offset: number; length: number } | undefined {
  if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) return undefined
  const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']))
  const location = kv.get('location')
  if (!location) return undefined
  return { location, offset: Number(kv.get('offset') ?? 0), length: Number(kv.get('length') ?? 0) }
}

/** A weight initializer's values as float32 (external data read relative to the graph's folder). */
export async function readInitializer(graphDir: string, init: onnx.ITensorProto): Promise<Float32Array> {
  const ext = externalInfo(init)
  const dtype = DTYPE_OF[init.dataType ?? 0]
  if (!dtype) throw new Error(`initializer ${init.name}: unsupported data type ${init.dataType}`)
  if (!ext) return toFloat32(dtype, Uint8Array.from(init.rawData ?? []))
  const fh = await fs.promises.open(path.join(graphDir, ext.location), 'r')
  try {
    const raw = new Uint8Array(ext.length)
    let done = 0
    while (done < raw.length) {
      const { bytesRead } = await fh.read(raw, done, raw.length - done, ext.offset + done)
      if (bytesRead === 0) throw new Error(`${ext.location}: file ended while reading ${init.name}`)
      done += bytesRead
    }
    return toFloat32(dtype, raw)
  } finally {
    await fh.close()
  }
}

/** Points an initializer at float32 bytes in a side file. */
export function repoint(init: onnx.ITensorProto, location: string, offset: number, length: number): void {
  init.dataType = onnx.TensorProto.DataType.FLOAT
  init.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL
  init.rawData = undefined
  init.externalData = [
    { key: 'location', value: location },
    { key: 'offset', value: String(offset) },
    { key: 'length', value: String(length) },
  ]
}
