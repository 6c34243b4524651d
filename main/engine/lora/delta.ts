import path from 'node:path'
import type { LoraFile, LoraTarget, LycoModule } from '../../model-formats/lora/lora-file'
import { LoraError, ModuleIndex } from '../../model-formats/lora/lora-file'
import type { LycoPart, Mat } from '../../model-formats/lora/lycoris'
import { doraUpdate, moduleUpdate, numelOf } from '../../model-formats/lora/lycoris'
import { readInitializer, repoint } from '../../model-formats/lora/targets'
import type { Delta } from '../../model-formats/lora/targets'
import { kohyaUnetModuleMap } from '../../model-formats/lora/unet-keys'
import { ELEM, onnx } from '../../model-formats/onnx/builder'
import type { ExternalDataWriter } from '../../model-formats/onnx/external-data'

/**
 * LyCORIS updates that have no low-rank branch form (LoHa's elementwise product, LoKr's Kronecker product,
 * Tucker LoCon, DoRA's decomposition, full diffs) applied as weight deltas: the update D of each layer is
 * computed once per adapter file set and stored beside the graph, and the graph computes
 * W' = W + sum_k m_k * D_k in front of the layer, with m_k the same `lora_scale_<k>` inputs the LoRA branches
 * use. So a multiplier change is still only a different feed: no new graph and no new session.
 */

export interface WeightDelta {
  /** Index of the adapter in the applied list (its multiplier input). */
  lora: number
  /** The multiplier-free update in the initializer's layout (float32). */
  data: Float32Array
  /** For error messages. */
  module: string
}

export interface ModuleRef {
  lora: number
  file: LoraFile
  module: LycoModule
}

export function scaleInput(lora: number): string {
  return `lora_scale_${lora}`
}

/** Modules of the given files that touch `graph`. */
export function modulesFor(files: LoraFile[], graph: LoraTarget): ModuleRef[] {
  const out: ModuleRef[] = []
  for (const [lora, file] of files.entries())
    for (const module of file.modules) if (module.target === graph) out.push({ lora, file, module })
  return out
}

/** Plain pairs expressed as modules (to run them as deltas instead of branches, e.g. to compare). */
export function pairsAsModules(file: LoraFile): LycoModule[] {
  return file.pairs
    .filter((p) => p.naming === 'kohya')
    .map((p) => ({
      target: p.target,
      module: p.module,
      naming: 'kohya' as const,
      kind: 'lora' as const,
      parts: {
        'lora_down.weight': p.downKey,
        'lora_up.weight': p.upKey,
        ...(p.alphaKey ? { alpha: p.alphaKey } : {}),
      },
    }))
}

/**
 * The update of every module, keyed by the initializer it changes (`<module>.weight`, and `<module>.bias` for
 * full diffs with diff_b). `graphDir` resolves external weights (DoRA reads W).
 */
export async function moduleDeltas(
  graph: LoraTarget,
  graphDir: string,
  inits: Map<string, onnx.ITensorProto>,
  refs: ModuleRef[],
  signal?: AbortSignal,
): Promise<Map<string, WeightDelta[]>> {
  const index = new ModuleIndex(inits.keys(), graph === 'unet' ? kohyaUnetModuleMap(inits.keys()) : [])
  const out = new Map<string, WeightDelta[]>()
  const push = (name: string, d: WeightDelta): void => {
    out.set(name, [...(out.get(name) ?? []), d])
  }
  const unresolved: string[] = []
  for (const ref of refs) {
    if (signal?.aborted) throw new Error('LoRA build cancelled')
    const { module, file } = ref
    const weight = index.resolve(module)
    if (!weight) {
      unresolved.push(module.module)
      continue
    }
    const init = inits.get(weight) as onnx.ITensorProto
    const dims = (init.dims ?? []).map(Number)
    const read = async (part: LycoPart): Promise<Mat | undefined> => {
      const key = module.parts[part]
      if (!key) return undefined
      return { data: await file.st.readFloat32(key), shape: [...file.st.info(key).shape] }
    }
    let u
    try {
      u = await moduleUpdate(module.kind, read, numelOf(dims), module.module)
    } catch (err) {
      throw new LoraError(
        `${path.basename(file.path)}: layer ${module.module} does not fit [${dims.join(', ')}] in the ` +
          `checkpoint (${err instanceof Error ? err.message : String(err)}); the file was made for another ` +
          'model family',
        'lora-family',
      )
    }
    let data = u.dW
    if (u.doraScale) {
      const w = await readInitializer(graphDir, init)
      data = doraUpdate(w, dims, u.dW, u.doraScale)
    }
    push(weight, { lora: ref.lora, data, module: module.module })
    if (u.dB) {
      const biasName = `${weight.slice(0, -'.weight'.length)}.bias`
      const bias = inits.get(biasName)
      if (bias && numelOf((bias.dims ?? []).map(Number)) === u.dB.length)
        push(biasName, { lora: ref.lora, data: u.dB, module: module.module })
    }
  }
  if (unresolved.length)
    throw new LoraError(
      `${path.basename(refs[0]?.file.path ?? '')}: ${unresolved.length} of ${refs.length} ${graph} layers ` +
        `match nothing in this checkpoint (e.g. ${unresolved.slice(0, 3).join(', ')}); the file was made ` +
        'for another model family',
      'lora-family',
    )
  return out
}

/** w += m * d (merge mode: the variant key covers the multipliers). */
export function addScaled(w: Float32Array, d: Float32Array, m: number): void {
  for (let i = 0; i < w.length; i++) w[i] = (w[i] as number) + m * (d[i] as number)
}

/**
 * Adds W' = W + sum_k lora_scale_k * D_k in front of every consumer of each initializer (mutates `model`),
 * with the D_k appended to `side`. Adds the scale inputs the graph does not have yet; returns their names.
 */
export function addWeightDeltas(
  model: onnx.ModelProto,
  byInit: Map<string, WeightDelta[]>,
  side: ExternalDataWriter,
  location: string,
): string[] {
  const graph = model.graph as onnx.ModelProto['graph'] & object
  const initializers = graph.initializer as onnx.ITensorProto[]
  const inits = new Map(initializers.map((t) => [t.name ?? '', t]))
  const front: onnx.INodeProto[] = []
  const renamed = new Map<string, { f32: string; narrow?: onnx.INodeProto }>()
  const scales = new Set<number>()
  let n = 0
  for (const [name, ds] of byInit) {
    const init = inits.get(name)
    if (!init) throw new Error(`initializer ${name} is not in the graph`)
    const dims = (init.dims ?? []).map(Number)
    const dtype = init.dataType ?? onnx.TensorProto.DataType.FLOAT
    const id = `lyco${n++}`
    let acc = name
    if (dtype !== onnx.TensorProto.DataType.FLOAT) {
      acc = `${id}_w32`
      front.push({
        opType: 'Cast',
        name: acc,
        input: [name],
        output: [acc],
        attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: ELEM.float32 }],
      })
    }
    for (const [k, d] of ds.entries()) {
      const dn = `${id}.delta${k}`
      const ref = side.append(new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength))
      const t: onnx.ITensorProto = { name: dn, dims }
      repoint(t, location, ref.offset, ref.length)
      initializers.push(t)
      scales.add(d.lora)
      const scaled = `${id}_m${k}`
      front.push({ opType: 'Mul', name: scaled, input: [dn, scaleInput(d.lora)], output: [scaled] })
      const sum = `${id}_sum${k}`
      front.push({ opType: 'Add', name: sum, input: [acc, scaled], output: [sum] })
      acc = sum
    }
    const f32 = acc
    const narrow =
      dtype !== onnx.TensorProto.DataType.FLOAT
        ? {
            opType: 'Cast',
            name: `${id}_w`,
            input: [f32],
            output: [`${id}_w`],
            attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: dtype }],
          }
        : undefined
    renamed.set(name, { f32, narrow })
  }
  const nodes = graph.node as onnx.INodeProto[]
  // A consumer that casts the weight to float32 takes the float32 sum (no rounding back to fp16 and up
  // again); any other consumer gets the sum in the initializer's own type.
  const castsToFloat = (n: onnx.INodeProto): boolean =>
    n.opType === 'Cast' &&
    Number((n.attribute ?? []).find((a) => a.name === 'to')?.i ?? 0) === onnx.TensorProto.DataType.FLOAT
  const used = new Set<onnx.INodeProto>()
  for (const node of nodes)
    node.input = (node.input ?? []).map((i) => {
      const r = renamed.get(i)
      if (!r) return i
      if (!r.narrow || castsToFloat(node)) return r.f32
      used.add(r.narrow)
      return r.narrow.output?.[0] as string
    }) as string[]
  for (const out of graph.output ?? [])
    if (renamed.has(out.name ?? '')) throw new Error(`${out.name} is a graph output`)
  graph.node = [...front, ...used, ...nodes]
  const inputs = graph.input as onnx.IValueInfoProto[]
  const have = new Set(inputs.map((i) => i.name ?? ''))
  const names = [...scales].sort((a, b) => a - b).map(scaleInput)
  for (const name of names)
    if (!have.has(name))
      inputs.push({ name, type: { tensorType: { elemType: ELEM.float32, shape: { dim: [] } } } })
  return names
}

/**
 * LoHa without Tucker factors as a plain low-rank pair: (w1a @ w1b) * (w2a @ w2b) = U @ V with
 * U[o, (p,q)] = w1a[o,p] * w2a[o,q] and V[(p,q), i] = w1b[p,i] * w2b[q,i] (rank r1 * r2), so it runs as a
 * branch like a LoRA instead of a full-size weight delta. Returns the pairs and the modules left over.
 */
export async function lohaAsPairs(refs: ModuleRef[]): Promise<{ deltas: Delta[]; rest: ModuleRef[] }> {
  const deltas: Delta[] = []
  const rest: ModuleRef[] = []
  for (const ref of refs) {
    const p = ref.module.parts
    if (ref.module.kind !== 'loha' || p.hada_t1 || p.hada_t2 || p.dora_scale) {
      rest.push(ref)
      continue
    }
    const st = ref.file.st
    const [w1a, w1b, w2a, w2b] = await Promise.all(
      [p.hada_w1_a, p.hada_w1_b, p.hada_w2_a, p.hada_w2_b].map((k) => st.readFloat32(k as string)),
    )
    const out = st.info(p.hada_w1_a as string).shape[0] ?? 0
    const r1 = st.info(p.hada_w1_b as string).shape[0] ?? 0
    const r2 = st.info(p.hada_w2_b as string).shape[0] ?? 0
    const inner = (w1b?.length ?? 0) / Math.max(1, r1)
    if (st.info(p.hada_w2_a as string).shape[0] !== out || (w2b?.length ?? 0) / Math.max(1, r2) !== inner) {
      rest.push(ref) // inconsistent factors: moduleDeltas reports them
      continue
    }
    const rank = r1 * r2
    const up = new Float32Array(out * rank)
    for (let o = 0; o < out; o++)
      for (let a = 0; a < r1; a++)
        for (let b = 0; b < r2; b++)
          up[o * rank + a * r2 + b] = (w1a?.[o * r1 + a] as number) * (w2a?.[o * r2 + b] as number)
    const down = new Float32Array(rank * inner)
    for (let a = 0; a < r1; a++)
      for (let b = 0; b < r2; b++) {
        const row = (a * r2 + b) * inner
        for (let i = 0; i < inner; i++)
          down[row + i] = (w1b?.[a * inner + i] as number) * (w2b?.[b * inner + i] as number)
      }
    const alpha = p.alpha ? ((await st.readFloat32(p.alpha))[0] ?? r1) : r1
    deltas.push({
      lora: ref.lora,
      file: ref.file,
      pair: {
        target: ref.module.target,
        module: ref.module.module,
        naming: 'kohya',
        downKey: p.hada_w1_b as string,
        upKey: p.hada_w1_a as string,
      },
      rank,
      alphaScale: alpha / r1,
      out,
      downTail: [inner],
      factors: { up, down },
    })
  }
  return { deltas, rest }
}
