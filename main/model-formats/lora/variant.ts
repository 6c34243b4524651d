import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { appPaths } from '../../platform/paths'
import { cachedSha256 } from '../convert/cache'
import type { ConvertedModel, GraphName } from '../convert/convert'
import { GraphBuilder, onnx } from '../onnx/builder'
import { ExternalDataWriter } from '../onnx/external-data'
import { toFloat32 } from '../safetensors'
import type { DType } from '../safetensors'
import type { LoraFile, LoraPair, LoraTarget } from './lora-file'
import { LoraError, ModuleIndex, readLora } from './lora-file'
import { kohyaUnetModuleMap } from './unet-keys'

/**
 * LoRA sets applied WITHOUT touching the converted base: for each affected graph, a copy of its small
 * model.onnx (`lora-<key>.onnx`, beside the base graph) whose affected initializers are re-pointed to a
 * side file of merged float32 weights (`lora-<key>.bin`, W + sum m * alpha/rank * up @ down). Everything
 * else still points into the base's weights. Changing a multiplier writes a new small pair of files.
 */

export interface LoraSpec {
  path: string
  multiplier: number
}

export interface LoraApplyOptions {
  cacheRoot?: string
  signal?: AbortSignal
  /** LoRA variants kept per graph (older ones are deleted). Default 4. */
  keep?: number
}

export interface LoraVariant {
  key: string
  paths: Record<GraphName, string>
  cached: boolean
  /** Weights merged per graph. */
  merged: Partial<Record<GraphName, number>>
}

const TARGET_GRAPH: Record<LoraTarget, GraphName> = { unet: 'unet', text_encoder: 'text_encoder' }
const DTYPE_OF: Record<number, DType> = {
  [onnx.TensorProto.DataType.FLOAT]: 'F32',
  [onnx.TensorProto.DataType.FLOAT16]: 'F16',
  [onnx.TensorProto.DataType.BFLOAT16]: 'BF16',
}

function externalInfo(
  t: onnx.ITensorProto,
): { location: string; offset: number; length: number } | undefined {
  if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) return undefined
  const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']))
  const location = kv.get('location')
  if (!location) return undefined
  return { location, offset: Number(kv.get('offset') ?? 0), length: Number(kv.get('length') ?? 0) }
}

function numel(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1)
}

/** One small ORT session computing W + s * (up @ down), reused for every weight. */
class Merger {
  private session: ort.InferenceSession | undefined

  async merge(
    w: Float32Array,
    up: Float32Array,
    down: Float32Array,
    o: number,
    r: number,
    s: number,
  ): Promise<Float32Array> {
    if (!this.session) {
      const g = new GraphBuilder('lora_merge')
      const W = g.input('w', 'float32', ['o', 'i'])
      const U = g.input('up', 'float32', ['o', 'r'])
      const D = g.input('down', 'float32', ['r', 'i'])
      const S = g.input('scale', 'float32', [])
      g.output(g.op('Add', [W, g.op('Mul', [g.op('MatMul', [U, D]), S])]), 'float32', ['o', 'i'], 'merged')
      this.session = await ort.InferenceSession.create(g.encode(), { graphOptimizationLevel: 'all' })
    }
    const i = w.length / o
    const out = await this.session.run({
      w: new ort.Tensor('float32', w, [o, i]),
      up: new ort.Tensor('float32', up, [o, r]),
      down: new ort.Tensor('float32', down, [r, i]),
      scale: new ort.Tensor('float32', Float32Array.from([s]), []),
    })
    return (out.merged as ort.Tensor).data as Float32Array
  }

  async release(): Promise<void> {
    await this.session?.release()
  }
}

interface Delta {
  lora: LoraFile
  pair: LoraPair
  scale: number
}

async function readWeight(graphDir: string, init: onnx.ITensorProto): Promise<Float32Array> {
  const ext = externalInfo(init)
  const dtype = DTYPE_OF[init.dataType ?? 0]
  if (!dtype) throw new Error(`initializer ${init.name}: unsupported data type ${init.dataType}`)
  let raw: Uint8Array
  if (ext) {
    const fh = await fs.promises.open(path.join(graphDir, ext.location), 'r')
    try {
      raw = new Uint8Array(ext.length)
      let done = 0
      while (done < raw.length) {
        const { bytesRead } = await fh.read(raw, done, raw.length - done, ext.offset + done)
        if (bytesRead === 0) throw new Error(`${ext.location}: file ended while reading ${init.name}`)
        done += bytesRead
      }
    } finally {
      await fh.close()
    }
  } else {
    raw = Uint8Array.from(init.rawData ?? [])
  }
  return toFloat32(dtype, raw)
}

function variantKey(shas: string[], loras: LoraSpec[]): string {
  const body = JSON.stringify(loras.map((l, i) => [shas[i], l.multiplier]))
  return crypto.createHash('sha256').update(`lora-v1\n${body}`).digest('hex').slice(0, 16)
}

function pruneVariants(graphDir: string, keep: number, current: string): void {
  const models = fs
    .readdirSync(graphDir)
    .filter((f) => /^lora-[0-9a-f]+\.onnx$/.test(f) && f !== `lora-${current}.onnx`)
    .map((f) => ({ f, t: fs.statSync(path.join(graphDir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t)
  for (const { f } of models.slice(Math.max(0, keep - 1))) {
    const stem = f.slice(0, -'.onnx'.length)
    fs.rmSync(path.join(graphDir, f), { force: true })
    fs.rmSync(path.join(graphDir, `${stem}.bin`), { force: true })
  }
}

async function buildGraphVariant(
  graph: GraphName,
  graphDir: string,
  key: string,
  deltas: Delta[],
  merger: Merger,
  signal: AbortSignal | undefined,
): Promise<number> {
  const base = onnx.ModelProto.decode(fs.readFileSync(path.join(graphDir, 'model.onnx')))
  const inits = new Map((base.graph?.initializer ?? []).map((t) => [t.name ?? '', t]))
  // kohya UNet names may be flattened diffusers or LDM paths; the UNet map knows both spellings.
  const index = new ModuleIndex(inits.keys(), graph === 'unet' ? kohyaUnetModuleMap(inits.keys()) : [])
  const byWeight = new Map<string, Delta[]>()
  const unresolved: string[] = []
  for (const d of deltas) {
    const w = index.resolve(d.pair)
    if (!w) unresolved.push(d.pair.downKey)
    else byWeight.set(w, [...(byWeight.get(w) ?? []), d])
  }
  if (unresolved.length) {
    const file = path.basename(deltas[0]?.lora.path ?? '')
    throw new LoraError(
      `${file}: ${unresolved.length} of ${deltas.length} ${graph} layers match nothing in this checkpoint ` +
        `(e.g. ${unresolved.slice(0, 3).join(', ')}); the LoRA was made for another model family`,
      'lora-family',
    )
  }
  const tmpBin = `lora-${key}.bin.${process.pid}.tmp`
  const side = new ExternalDataWriter(graphDir, tmpBin)
  try {
    for (const [weight, ds] of byWeight) {
      if (signal?.aborted) throw new Error('LoRA merge cancelled')
      const init = inits.get(weight) as onnx.ITensorProto
      const dims = (init.dims ?? []).map(Number)
      const o = dims[0] ?? 0
      let w = await readWeight(graphDir, init)
      for (const d of ds) {
        const upInfo = d.lora.st.info(d.pair.upKey)
        const downInfo = d.lora.st.info(d.pair.downKey)
        const r = downInfo.shape[0] ?? 0
        const upO = upInfo.shape[0] ?? 0
        const deltaNumel = upO * numel(downInfo.shape.slice(1))
        if (upO !== o || (upInfo.shape[1] ?? 0) !== r || deltaNumel !== w.length) {
          throw new LoraError(
            `${path.basename(d.lora.path)}: layer ${d.pair.module} is ${upO}x${numel(downInfo.shape.slice(1))} ` +
              `(rank ${r}) in the LoRA but [${dims.join(', ')}] in the checkpoint; ` +
              'the LoRA was made for another model family (SD 2.x or SDXL?)',
            'lora-family',
          )
        }
        const up = await d.lora.st.readFloat32(d.pair.upKey)
        const down = await d.lora.st.readFloat32(d.pair.downKey)
        w = await merger.merge(w, up, down, o, r, d.scale)
      }
      const ref = side.append(new Uint8Array(w.buffer, w.byteOffset, w.byteLength))
      init.dataType = onnx.TensorProto.DataType.FLOAT
      init.externalData = [
        { key: 'location', value: `lora-${key}.bin` },
        { key: 'offset', value: String(ref.offset) },
        { key: 'length', value: String(ref.length) },
      ]
    }
  } catch (err) {
    side.close()
    fs.rmSync(path.join(graphDir, tmpBin), { force: true })
    throw err
  }
  side.close()
  const tmpModel = path.join(graphDir, `lora-${key}.onnx.${process.pid}.tmp`)
  fs.writeFileSync(tmpModel, onnx.ModelProto.encode(base).finish())
  fs.renameSync(path.join(graphDir, tmpBin), path.join(graphDir, `lora-${key}.bin`))
  fs.renameSync(tmpModel, path.join(graphDir, `lora-${key}.onnx`))
  return byWeight.size
}

/**
 * Graph paths for a model with a set of LoRAs at their multipliers. The base conversion is reused as is;
 * only the text encoder and UNet graphs the LoRAs touch get a variant (cached by LoRA content and
 * multipliers).
 */
export async function applyLoras(
  model: ConvertedModel,
  loras: LoraSpec[],
  opts: LoraApplyOptions = {},
): Promise<LoraVariant> {
  const active = loras.filter((l) => l.multiplier !== 0)
  if (active.length === 0) return { key: '', paths: { ...model.paths }, cached: true, merged: {} }
  const cacheRoot = opts.cacheRoot ?? appPaths().conversionCache
  const shas: string[] = []
  for (const l of active) shas.push(await cachedSha256(cacheRoot, l.path, { signal: opts.signal }))
  const key = variantKey(shas, active)
  const files: LoraFile[] = []
  try {
    for (const l of active) files.push(await readLora(l.path))
    const deltas = new Map<GraphName, Delta[]>()
    files.forEach((lf, i) => {
      const m = active[i]?.multiplier ?? 1
      for (const pair of lf.pairs) {
        const rank = lf.st.info(pair.downKey).shape[0] ?? 1
        const alpha = pair.alphaKey ? undefined : rank
        const g = TARGET_GRAPH[pair.target]
        deltas.set(g, [
          ...(deltas.get(g) ?? []),
          { lora: lf, pair, scale: alpha === undefined ? Number.NaN : (m * alpha) / rank },
        ])
      }
    })
    // Alphas are scalar tensors; read them now that the pairs are known.
    for (const ds of deltas.values()) {
      for (const d of ds) {
        if (!Number.isNaN(d.scale)) continue
        const rank = d.lora.st.info(d.pair.downKey).shape[0] ?? 1
        const alpha = (await d.lora.st.readFloat32(d.pair.alphaKey as string))[0] ?? rank
        const m = active[files.indexOf(d.lora)]?.multiplier ?? 1
        d.scale = (m * alpha) / rank
      }
    }
    const paths = { ...model.paths }
    const merged: LoraVariant['merged'] = {}
    let cached = true
    const merger = new Merger()
    try {
      for (const [graph, ds] of deltas) {
        const graphDir = path.dirname(model.paths[graph])
        const variant = path.join(graphDir, `lora-${key}.onnx`)
        if (!fs.existsSync(variant) || !fs.existsSync(path.join(graphDir, `lora-${key}.bin`))) {
          cached = false
          merged[graph] = await buildGraphVariant(graph, graphDir, key, ds, merger, opts.signal)
        } else {
          const now = new Date()
          fs.utimesSync(variant, now, now)
        }
        pruneVariants(graphDir, opts.keep ?? 4, key)
        paths[graph] = variant
      }
    } finally {
      await merger.release()
    }
    return { key, paths, cached, merged }
  } finally {
    for (const f of files) await f.st.close()
  }
}
