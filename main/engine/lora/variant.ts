import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { appPaths } from '../../platform/paths'
import { cachedSha256, writeJsonAtomic } from '../convert/cache'
import type { ConvertedModel, GraphName } from '../convert/convert'
import { GraphBuilder, onnx } from '../../model-formats/onnx/builder'
import { ExternalDataWriter } from '../../model-formats/onnx/external-data'
import { addBranches, scaleInputName } from '../../model-formats/lora/branch'
import { addScaled, addWeightDeltas, lohaAsPairs, moduleDeltas, modulesFor, pairsAsModules } from './delta'
import type { ModuleRef, WeightDelta } from './delta'
import { assertLoraFamily, convertedFamily } from './family'
import type { LoraFile, LoraTarget } from '../../model-formats/lora/lora-file'
import { readLora } from '../../model-formats/lora/lora-file'
import type { Delta } from '../../model-formats/lora/targets'
import { deltasByGraph, readInitializer, repoint, resolveTargets } from '../../model-formats/lora/targets'

/**
 * LoRA sets applied WITHOUT touching the converted base. For each graph the LoRAs touch, a small variant
 * graph is written beside the base graph (`lora-<key>.onnx` + `lora-<key>.bin`); every other weight still
 * points into the base's weights. Two modes:
 *
 * - `branch` (default): low-rank branches y + m * up(down(x)) with the multipliers as graph inputs
 *   (`lora_scale_<k>`). The key covers the LoRA files only, so changing a multiplier reuses the graph and
 *   its loaded session: pass `variant.inputs` to the ModelSet.
 * - `merge`: W' = W + sum m * alpha/rank * up @ down written as float32; the key covers the multipliers,
 *   so every multiplier change writes the merged layers again and needs a new session. No extra compute.
 *
 * LyCORIS modules with no branch form (LoHa, LoKr, Tucker LoCon, DoRA, full diff; see engine/lora/delta.ts)
 * are weight deltas: in branch mode W + m * D in the graph (D computed once per file set, m the same scale
 * input), in merge mode merged like the pairs.
 */

export interface LoraSpec {
  path: string
  /** The UNet multiplier (and the text encoders' unless `teMultiplier` is given). */
  multiplier: number
  /** Text-encoder multiplier (A1111 `<lora:name:te:unet>`); default `multiplier`. */
  teMultiplier?: number
}

/** The multiplier a graph uses for a LoRA (A1111: text-encoder layers take the TE multiplier). */
export function multiplierFor(l: LoraSpec, graph: GraphName): number {
  return graph === 'unet' ? l.multiplier : (l.teMultiplier ?? l.multiplier)
}

export type LoraMode = 'branch' | 'merge'

export interface LoraApplyOptions {
  cacheRoot?: string
  signal?: AbortSignal
  mode?: LoraMode
  /** LoRA variants kept per graph (older ones are deleted). Default 4. */
  keep?: number
  /**
   * Branch mode: plain low-rank pairs as branches (default true); false applies them as weight deltas like
   * the LyCORIS modules (for comparing the two forms).
   */
  branches?: boolean
}

export interface LoraVariant {
  key: string
  mode: LoraMode
  paths: Record<GraphName, string>
  /** Extra scalar inputs per graph (branch mode: the multipliers); feed them with every run. */
  inputs: Partial<Record<GraphName, Record<string, number>>>
  cached: boolean
  /** Weights modified per graph (when built now). */
  merged: Partial<Record<GraphName, number>>
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
    const out = await this.session.run({
      w: new ort.Tensor('float32', w, [o, w.length / o]),
      up: new ort.Tensor('float32', up, [o, r]),
      down: new ort.Tensor('float32', down, [r, w.length / o]),
      scale: new ort.Tensor('float32', Float32Array.from([s]), []),
    })
    return (out.merged as ort.Tensor).data as Float32Array
  }

  async release(): Promise<void> {
    await this.session?.release()
  }
}

function variantKey(mode: LoraMode, shas: string[], loras: LoraSpec[], branches: boolean): string {
  const body =
    mode === 'branch'
      ? JSON.stringify([shas, branches])
      : JSON.stringify(loras.map((l, i) => [shas[i], l.multiplier, l.teMultiplier ?? l.multiplier]))
  return crypto.createHash('sha256').update(`lora-v4-${mode}\n${body}`).digest('hex').slice(0, 16)
}

function pruneVariants(graphDir: string, keep: number, current: string): void {
  const models = fs
    .readdirSync(graphDir)
    .filter((f) => /^lora-[0-9a-f]+\.onnx$/.test(f) && f !== `lora-${current}.onnx`)
    .map((f) => ({ f, t: fs.statSync(path.join(graphDir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t)
  for (const { f } of models.slice(Math.max(0, keep - 1))) {
    const stem = f.slice(0, -'.onnx'.length)
    for (const ext of ['.onnx', '.bin', '.scales.json'])
      fs.rmSync(path.join(graphDir, `${stem}${ext}`), { force: true })
  }
}

async function buildVariant(
  graph: LoraTarget,
  graphDir: string,
  key: string,
  deltas: Delta[],
  modules: ModuleRef[],
  mode: LoraMode,
  multipliers: number[],
  merger: Merger,
  signal: AbortSignal | undefined,
  branches: boolean,
): Promise<number> {
  if (branches) {
    // LoHa (no Tucker) is exactly a rank r1*r2 pair: a branch, not a full-size delta.
    const loha = await lohaAsPairs(modules)
    deltas = [...deltas, ...loha.deltas]
    modules = loha.rest
  }
  const model = onnx.ModelProto.decode(fs.readFileSync(path.join(graphDir, 'model.onnx')))
  const inits = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]))
  const byWeight = deltas.length ? resolveTargets(graph, inits, deltas) : new Map<string, Delta[]>()
  const byInit = modules.length
    ? await moduleDeltas(graph, graphDir, inits, modules, signal)
    : new Map<string, WeightDelta[]>()
  const binName = `lora-${key}.bin`
  const tmpBin = `${binName}.${process.pid}.tmp`
  const side = new ExternalDataWriter(graphDir, tmpBin)
  const tmpModel = path.join(graphDir, `lora-${key}.onnx.${process.pid}.tmp`)
  try {
    if (mode === 'branch') {
      if (byWeight.size) await addBranches(model, byWeight, side, binName)
      if (byInit.size) addWeightDeltas(model, byInit, side, binName)
    } else {
      for (const weight of new Set([...byWeight.keys(), ...byInit.keys()])) {
        if (signal?.aborted) throw new Error('LoRA merge cancelled')
        const init = inits.get(weight) as onnx.ITensorProto
        const o = Number(init.dims?.[0] ?? 0)
        let w = await readInitializer(graphDir, init)
        for (const d of byWeight.get(weight) ?? []) {
          const up = d.factors?.up ?? (await d.file.st.readFloat32(d.pair.upKey))
          const down = d.factors?.down ?? (await d.file.st.readFloat32(d.pair.downKey))
          w = await merger.merge(w, up, down, o, d.rank, (multipliers[d.lora] ?? 1) * d.alphaScale)
        }
        for (const d of byInit.get(weight) ?? []) addScaled(w, d.data, multipliers[d.lora] ?? 1)
        const ref = side.append(new Uint8Array(w.buffer, w.byteOffset, w.byteLength))
        repoint(init, binName, ref.offset, ref.length)
      }
    }
    side.close()
    fs.writeFileSync(tmpModel, onnx.ModelProto.encode(model).finish())
    fs.renameSync(path.join(graphDir, tmpBin), path.join(graphDir, binName))
    fs.renameSync(tmpModel, path.join(graphDir, `lora-${key}.onnx`))
  } catch (err) {
    side.close()
    fs.rmSync(path.join(graphDir, tmpBin), { force: true })
    fs.rmSync(tmpModel, { force: true })
    throw err
  }
  return byWeight.size + byInit.size
}

/**
 * Graph paths (and, in branch mode, multiplier inputs) for a model with a set of LoRAs. The base
 * conversion is reused as is; only the text encoder and UNet graphs the LoRAs touch get a variant.
 */
export async function applyLoras(
  model: ConvertedModel,
  loras: LoraSpec[],
  opts: LoraApplyOptions = {},
): Promise<LoraVariant> {
  const mode = opts.mode ?? 'branch'
  const branches = opts.branches ?? true
  const active = loras.filter((l) => l.multiplier !== 0 || (l.teMultiplier ?? 0) !== 0)
  if (active.length === 0)
    return { key: '', mode, paths: { ...model.paths }, inputs: {}, cached: true, merged: {} }
  const family = convertedFamily(model)
  for (const l of active) await assertLoraFamily(l.path, family)
  const cacheRoot = opts.cacheRoot ?? appPaths().conversionCache
  const shas: string[] = []
  for (const l of active) shas.push(await cachedSha256(cacheRoot, l.path, { signal: opts.signal }))
  const key = variantKey(mode, shas, active, branches)
  const files: LoraFile[] = []
  try {
    for (const l of active) {
      const f = await readLora(l.path)
      files.push(f)
      if (!branches) {
        f.modules.push(...pairsAsModules(f))
        f.pairs = f.pairs.filter((p) => p.naming !== 'kohya')
      }
    }
    const deltas = await deltasByGraph(files)
    const graphs = new Set<LoraTarget>(
      files.flatMap((f) => [...f.pairs.map((p) => p.target), ...f.modules.map((m) => m.target)]),
    )
    const paths = { ...model.paths }
    const inputs: LoraVariant['inputs'] = {}
    const merged: LoraVariant['merged'] = {}
    let cached = true
    const merger = new Merger()
    try {
      for (const graph of graphs) {
        const ds = deltas.get(graph) ?? []
        const refs = modulesFor(files, graph)
        const multipliers = active.map((l) => multiplierFor(l, graph))
        const graphDir = path.dirname(model.paths[graph])
        const variant = path.join(graphDir, `lora-${key}.onnx`)
        if (!fs.existsSync(variant) || !fs.existsSync(path.join(graphDir, `lora-${key}.bin`))) {
          cached = false
          merged[graph] = await buildVariant(
            graph,
            graphDir,
            key,
            ds,
            refs,
            mode,
            multipliers,
            merger,
            opts.signal,
            branches,
          )
        } else {
          const now = new Date()
          fs.utimesSync(variant, now, now)
        }
        pruneVariants(graphDir, opts.keep ?? 4, key)
        paths[graph] = variant
        if (mode === 'branch') {
          const values = Object.fromEntries(
            [...new Set([...ds.map((d) => d.lora), ...refs.map((r) => r.lora)])]
              .sort((a, b) => a - b)
              .map((k) => [scaleInputName(k), multipliers[k] ?? 1]),
          )
          inputs[graph] = values
          // The latest multipliers beside the graph: callers that pass only `paths` load these.
          writeJsonAtomic(variant.replace(/\.onnx$/, '.scales.json'), values)
        }
      }
    } finally {
      await merger.release()
    }
    return { key, mode, paths, inputs, cached, merged }
  } finally {
    for (const f of files) await f.st.close()
  }
}
