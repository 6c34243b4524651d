import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { ConvertedModel } from '../convert/convert'
import { cachedSha256, writeJsonAtomic } from '../convert/cache'
import { openCheckpointSource } from '../convert/source'
import { onnx } from '../../model-formats/onnx/builder'
import { ExternalDataWriter } from '../../model-formats/onnx/external-data'
import { addBranches, scaleInputName } from '../../model-formats/lora/branch'
import { addWeightDeltas, moduleDeltas, modulesFor } from '../lora/delta'
import type { ModuleRef } from '../lora/delta'
import { assertLoraFamily, convertedFamily } from '../lora/family'
import type { LoraFile } from '../../model-formats/lora/lora-file'
import { readLora } from '../../model-formats/lora/lora-file'
import { deltasByGraph, resolveTargets } from '../../model-formats/lora/targets'
import type { Delta } from '../../model-formats/lora/targets'
import type { LoraSpec } from '../lora/variant'
import { buildUnet } from '../graphs/unet'
import type { UnetBuildOptions } from '../graphs/unet'
import { inferUnetConfig } from '../graphs/unet-config'
import type { StoredDType, WeightSource } from '../graphs/weights'
import { CheckpointWeights } from '../graphs/weights'
import { appPaths } from '../../platform/paths'
import type { IpAdapterWeights } from './adapter'
import { assertAdapterFitsUnet, IpAdapterError, loadIpAdapter } from './adapter'
import { crossAttentionLayers } from './layers'
import { IP_SCALE_INPUT, ipAdapterHook } from './unet-hook'

/**
 * The UNet of a converted model with IP-Adapter's decoupled image attention: built by the same UNet
 * builder as the base graph (plus the cross-attention hook), written beside it as `ip-<key>.onnx` with the
 * adapter's K/V weights in `ip-<key>.bin`. Every UNet weight still points where the base graph's does (the
 * hard-linked checkpoint or the base side file): nothing of the checkpoint is copied. The key covers the
 * base entry and the adapter file's SHA-256 only; the image weight is the graph input `ip_scale`, so a
 * weight change reuses the graph and its session.
 */

export const IP_VARIANT_VERSION = 1

export interface IpUnetVariant {
  /** The variant graph (feed `ip_scale` with every run). */
  path: string
  key: string
  cached: boolean
  /** Image tokens the graph expects at the end of encoder_hidden_states. */
  tokens: number
  /** LoRA multiplier inputs of the graph (`lora_scale_<k>`), also written beside it. */
  loraInputs: Record<string, number>
}

export interface IpVariantOptions {
  cacheRoot?: string
  signal?: AbortSignal
  /** Variants kept per UNet folder (older ones are deleted). Default 4. */
  keep?: number
  /**
   * LoRAs on the same UNet: added as low-rank branches (the LoRA branch mode) with their multipliers as
   * `lora_scale_<k>` inputs, written beside the graph (`ip-<key>.scales.json`) for the session to read.
   */
  loras?: LoraSpec[]
}

const DTYPES: Record<number, StoredDType> = {
  [onnx.TensorProto.DataType.FLOAT]: 'F32',
  [onnx.TensorProto.DataType.FLOAT16]: 'F16',
  [onnx.TensorProto.DataType.BFLOAT16]: 'BF16',
}

/**
 * The weights a converted graph reads, as file sources: its external initializers (canonical names) with
 * their files and byte ranges, resolved against the graph's folder.
 */
export function graphWeightSources(modelPath: string): Map<string, WeightSource> {
  const dir = path.dirname(modelPath)
  const model = onnx.ModelProto.decode(fs.readFileSync(modelPath))
  const out = new Map<string, WeightSource>()
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue
    const dtype = DTYPES[t.dataType ?? 0]
    if (!dtype || !t.name) continue
    const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']))
    const location = kv.get('location')
    if (!location) continue
    const begin = Number(kv.get('offset') ?? 0)
    const length = Number(kv.get('length') ?? Number.NaN)
    out.set(t.name, {
      kind: 'file',
      shape: (t.dims ?? []).map(Number),
      dtype,
      file: path.join(dir, location),
      begin,
      end: begin + length,
    })
  }
  return out
}

function prune(dir: string, keep: number, current: string): void {
  const files = fs
    .readdirSync(dir)
    .filter((f) => /^ip-[0-9a-f]+\.onnx$/.test(f) && f !== `ip-${current}.onnx`)
    .map((f) => ({ f, t: fs.statSync(path.join(dir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t)
  for (const { f } of files.slice(Math.max(0, keep - 1))) {
    const stem = f.slice(0, -'.onnx'.length)
    for (const ext of ['.onnx', '.bin', '.lora.bin', '.scales.json'])
      fs.rmSync(path.join(dir, `${stem}${ext}`), { force: true })
  }
}

/** UNet builder options of a converted model (head rule, SDXL time-id width) from its source. */
async function unetOptions(model: ConvertedModel): Promise<UnetBuildOptions> {
  const src = await openCheckpointSource(model.manifest.source.path)
  const heads = src.arch.unetHeads
  return {
    ...(heads && 'headDim' in heads ? { headDim: heads.headDim } : {}),
    ...(heads && 'perLevel' in heads ? { headsPerLevel: heads.perLevel } : {}),
    ...(src.arch.additionTimeEmbedDim !== undefined
      ? { additionTimeEmbedDim: src.arch.additionTimeEmbedDim }
      : {}),
  }
}

/** Builds (or finds) the IP-Adapter UNet variant of a converted model. */
export async function ipUnetVariant(
  model: ConvertedModel,
  adapter: string | IpAdapterWeights,
  opts: IpVariantOptions = {},
): Promise<IpUnetVariant> {
  if (model.manifest.source.kind === 'onnx')
    throw new IpAdapterError(
      `${model.dir} is a ready ONNX export; image prompts need a checkpoint Atelier converts itself ` +
        '(a .safetensors file or a diffusers folder), because the UNet is rebuilt with the image attention',
      'unsupported',
    )
  const adapterFile = typeof adapter === 'string' ? adapter : adapter.file
  const cacheRoot = opts.cacheRoot ?? appPaths().conversionCache
  const sha = await cachedSha256(cacheRoot, adapterFile, { signal: opts.signal })
  const loras = (opts.loras ?? []).filter((l) => l.multiplier !== 0)
  const family = convertedFamily(model)
  for (const l of loras) await assertLoraFamily(l.path, family)
  const loraShas: string[] = []
  for (const l of loras) loraShas.push(await cachedSha256(cacheRoot, l.path, { signal: opts.signal }))
  const key = crypto
    .createHash('sha256')
    .update(
      `ip-v${IP_VARIANT_VERSION}\n${model.manifest.sourceKey}\n${model.manifest.precision}\n${sha}\n${JSON.stringify(loraShas)}`,
    )
    .digest('hex')
    .slice(0, 16)
  const dir = path.dirname(model.paths.unet)
  const out = path.join(dir, `ip-${key}.onnx`)
  const bin = `ip-${key}.bin`
  const scalesFile = path.join(dir, `ip-${key}.scales.json`)
  const w = typeof adapter === 'string' ? await loadIpAdapter(adapter) : adapter
  // Only the LoRAs that touch the UNet get branches (text-encoder-only LoRAs leave it alone).
  const files: LoraFile[] = []
  try {
    for (const l of loras) files.push(await readLora(l.path))
    const unetDeltas = files.length ? ((await deltasByGraph(files)).get('unet') ?? []) : []
    // LyCORIS modules without a branch form: in-graph weight deltas on the rebuilt UNet.
    const unetModules = modulesFor(files, 'unet')
    const scales = Object.fromEntries(
      [...new Set([...unetDeltas.map((d) => d.lora), ...unetModules.map((m) => m.lora)])]
        .sort((a, b) => a - b)
        .map((k) => [scaleInputName(k), loras[k]?.multiplier ?? 1]),
    )
    const ready = fs.existsSync(out) && fs.existsSync(path.join(dir, bin))
    if (!ready)
      await buildVariant(model, w, { dir, out, bin, key, unetDeltas, unetModules, signal: opts.signal })
    else {
      const now = new Date()
      fs.utimesSync(out, now, now)
    }
    if (Object.keys(scales).length) writeJsonAtomic(scalesFile, scales)
    if (!ready) prune(dir, opts.keep ?? 4, key)
    return { path: out, key, cached: ready, tokens: w.tokens, loraInputs: scales }
  } finally {
    for (const f of files) await f.st.close()
  }
}

async function buildVariant(
  model: ConvertedModel,
  w: IpAdapterWeights,
  o: {
    dir: string
    out: string
    bin: string
    key: string
    unetDeltas: Delta[]
    unetModules: ModuleRef[]
    signal?: AbortSignal
  },
): Promise<void> {
  const { dir, out, bin } = o
  const base = new CheckpointWeights(graphWeightSources(model.paths.unet), { modelDir: dir })
  const options = await unetOptions(model)
  const config = inferUnetConfig(base, options)
  const layers = crossAttentionLayers(base)
  assertAdapterFitsUnet(w, {
    crossAttentionDim: config.crossAttentionDim,
    layers,
    label: path.basename(model.manifest.source.path),
  })
  if (o.signal?.aborted) throw new Error('cancelled')
  const kvSources = new Map<string, WeightSource>(
    [...w.kv].map(([name, t]) => [name, { kind: 'data', shape: t.shape, data: t.data }]),
  )
  const kv = new CheckpointWeights(kvSources, { modelDir: dir, sideFileName: bin })
  const tmp = `${out}.${process.pid}.tmp`
  const loraBin = `ip-${o.key}.lora.bin`
  let side: ExternalDataWriter | undefined
  try {
    const hook = ipAdapterHook({ tokens: w.tokens, weights: kv, layers })
    const { graph } = buildUnet(base, { ...options, crossAttention: hook })
    const proto = graph.toModel()
    kv.close()
    if (o.unetDeltas.length || o.unetModules.length) {
      const inits = new Map((proto.graph?.initializer ?? []).map((t) => [t.name ?? '', t]))
      const byWeight = o.unetDeltas.length ? resolveTargets('unet', inits, o.unetDeltas) : undefined
      const byInit = o.unetModules.length
        ? await moduleDeltas('unet', dir, inits, o.unetModules, o.signal)
        : undefined
      side = new ExternalDataWriter(dir, loraBin)
      if (byWeight) await addBranches(proto, byWeight, side, loraBin)
      if (byInit) addWeightDeltas(proto, byInit, side, loraBin)
      side.close()
    }
    fs.writeFileSync(tmp, onnx.ModelProto.encode(proto).finish())
    fs.renameSync(tmp, out)
  } catch (err) {
    kv.close()
    side?.close()
    for (const f of [tmp, path.join(dir, bin), path.join(dir, loraBin)]) fs.rmSync(f, { force: true })
    throw err
  }
}

export { IP_SCALE_INPUT }
