import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { buildTextEncoder } from '../graphs/text-encoder'
import { buildUnet } from '../graphs/unet'
import { buildVaeDecoder, buildVaeEncoder } from '../graphs/vae'
import type { WeightSource } from '../graphs/weights'
import { CheckpointWeights } from '../graphs/weights'
import { appPaths } from '../../platform/paths'
import type { GraphBuilder } from '../../model-formats/onnx/builder'
import { ExternalDataWriter } from '../../model-formats/onnx/external-data'
import { f16ToF32, f32ToF16, toFloat32 } from '../../model-formats/safetensors'
import type { Precision } from './cache'
import {
  CONVERTER_VERSION,
  cachedSha256,
  commitDir,
  entryName,
  hasCachedSha256,
  tempDirFor,
  writeJsonAtomic,
} from './cache'
import type { CheckpointSource, WeightComponent } from './source'
import { isOnnxPipeline, openCheckpointSource } from './source'

/**
 * Checkpoint -> folder of ONNX graphs (text_encoder, unet, vae_encoder, vae_decoder), once per source
 * content. Graph files hold only structure: their initializers point straight into the checkpoint
 * (hard-linked into each graph folder, because ORT refuses external data outside the model's folder).
 * Where a hard link is impossible (another volume) or a tensor must change (fp32 -> fp16 storage, or fp16 -> fp32), the
 * tensor is streamed into a side file `weights.bin` instead.
 */

export type GraphName = 'text_encoder' | 'text_encoder_2' | 'unet' | 'vae_encoder' | 'vae_decoder'
/** Every graph a converted model can have; `text_encoder_2` only for SDXL. */
export const GRAPH_NAMES: readonly GraphName[] = [
  'text_encoder',
  'text_encoder_2',
  'unet',
  'vae_encoder',
  'vae_decoder',
]

export interface ConvertProgress {
  phase: 'hash' | 'convert'
  done: number
  total: number
  graph?: GraphName
}

export interface ConvertOptions {
  cacheRoot?: string
  /**
   * Storage precision of the cached weights; compute is float32 either way. Default fp16: weights stay as
   * stored where they are fp16 (hard links, no disk), and each session casts them to fp32 while it is
   * created. fp32: every weight is cast once here into the entry's side file (4 bytes per weight on disk),
   * so a CPU session has no casts to fold and starts several times faster (bench/session.ts).
   */
  precision?: Precision
  signal?: AbortSignal
  onProgress?: (p: ConvertProgress) => void
  /** Test hook: refuse hard links (exercise the copy path). */
  noLinks?: boolean
}

export interface EntryManifest {
  converterVersion: number
  sourceKey: string
  precision: Precision
  source: {
    path: string
    /** 'vae': a standalone VAE (vae_encoder + vae_decoder graphs only; main/engine/convert/vae.ts). */
    kind: CheckpointSource['kind'] | 'onnx' | 'vae'
    files: { path: string; size: number; sha256?: string }[]
  }
  graphs: Partial<Record<GraphName, { model: string; linked: boolean; copiedBytes: number }>>
  /** 'sdxl': two text encoders and added conditioning (absent in entries written before SDXL). */
  family?: CheckpointSource['family']
  /** A diffusers folder's tokenizer/ (LDM files carry none). */
  tokenizerDir?: string
  createdAt: string
}

export interface ConvertedModel {
  dir: string
  cached: boolean
  manifest: EntryManifest
  paths: Record<GraphName, string>
}

export class ConversionCancelled extends Error {
  constructor() {
    super('conversion cancelled')
    this.name = 'AbortError'
  }
}

const CHECKPOINT_LINK = 'checkpoint.safetensors'
const SIDE_FILE = 'weights.bin'

function check(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ConversionCancelled()
}

function graphPaths(dir: string): Record<GraphName, string> {
  return Object.fromEntries(GRAPH_NAMES.map((g) => [g, path.join(dir, g, 'model.onnx')])) as Record<
    GraphName,
    string
  >
}

/** Hard-links `file` into `dir` as `name`; false when the filesystem refuses (other volume, FAT, ...). */
function tryLink(file: string, dir: string, name: string): boolean {
  try {
    fs.linkSync(file, path.join(dir, name))
    return true
  } catch {
    return false
  }
}

async function readRange(fh: fs.promises.FileHandle, begin: number, end: number): Promise<Uint8Array> {
  const out = new Uint8Array(end - begin)
  let done = 0
  while (done < out.length) {
    const { bytesRead } = await fh.read(out, done, out.length - done, begin + done)
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${begin + done}`)
    done += bytesRead
  }
  return out
}

function sourceBytes(s: WeightSource): number {
  return s.kind === 'file' ? s.end - s.begin : s.data.byteLength
}

export interface GraphPlan {
  name: GraphName
  sources: Map<string, WeightSource>
  build: (w: CheckpointWeights) => GraphBuilder
}

function plans(src: CheckpointSource): GraphPlan[] {
  const pick = (c: WeightComponent, keep: (k: string) => boolean = () => true): Map<string, WeightSource> => {
    const m = src.components[c]
    if (!m) throw new Error(`${src.path}: no ${c} weights`)
    return new Map([...m].filter(([k]) => keep(k)))
  }
  const act = src.arch.hiddenAct
  const textEncoder = (name: 'text_encoder' | 'text_encoder_2'): GraphPlan => ({
    name,
    sources: pick(name),
    build: (w) =>
      buildTextEncoder(w, { embedsOverride: true, ...(act[name] ? { config: { act: act[name] } } : {}) }),
  })
  const heads = src.arch.unetHeads
  return [
    textEncoder('text_encoder'),
    ...(src.components.text_encoder_2 ? [textEncoder('text_encoder_2')] : []),
    {
      name: 'unet',
      sources: pick('unet'),
      build: (w) =>
        buildUnet(w, {
          ...(heads && 'headDim' in heads ? { headDim: heads.headDim } : {}),
          ...(heads && 'perLevel' in heads ? { headsPerLevel: heads.perLevel } : {}),
          ...(src.arch.additionTimeEmbedDim !== undefined
            ? { additionTimeEmbedDim: src.arch.additionTimeEmbedDim }
            : {}),
        }).graph,
    },
    ...vaePlans(pick('vae')),
  ]
}

/** The VAE encoder and decoder graphs of canonical (diffusers-named) VAE weights. */
export function vaePlans(vae: ReadonlyMap<string, WeightSource>): GraphPlan[] {
  const only = (keep: (k: string) => boolean): Map<string, WeightSource> =>
    new Map([...vae].filter(([k]) => keep(k)))
  return [
    {
      name: 'vae_encoder',
      sources: only((k) => k.startsWith('encoder.') || k.startsWith('quant_conv.')),
      build: (w) => buildVaeEncoder(w),
    },
    {
      name: 'vae_decoder',
      sources: only((k) => k.startsWith('decoder.') || k.startsWith('post_quant_conv.')),
      build: (w) => buildVaeDecoder(w),
    },
  ]
}

/**
 * Puts one graph's weights in place: tensors that can be used as stored point into a hard link of their
 * file; the rest (no link possible, or a dtype change for the chosen precision) are streamed into the
 * side file. Returns sources whose files all live inside `modelDir`.
 */
async function placeWeights(
  plan: GraphPlan,
  modelDir: string,
  opts: ConvertOptions,
  tick: (bytes: number) => void,
): Promise<{ sources: Map<string, WeightSource>; linked: boolean; copiedBytes: number }> {
  const precision = opts.precision ?? 'fp16'
  const links = new Map<string, string | null>()
  const linkFor = (file: string): string | null => {
    let l = links.get(file)
    if (l === undefined) {
      const name = links.size === 0 ? CHECKPOINT_LINK : `checkpoint-${links.size}.safetensors`
      l = !opts.noLinks && tryLink(file, modelDir, name) ? path.join(modelDir, name) : null
      links.set(file, l)
    }
    return l
  }
  let side: ExternalDataWriter | undefined
  const handles = new Map<string, fs.promises.FileHandle>()
  const out = new Map<string, WeightSource>()
  let copiedBytes = 0
  try {
    for (const [name, s] of plan.sources) {
      check(opts.signal)
      if (s.kind === 'data') {
        out.set(
          name,
          precision === 'fp32' && s.data instanceof Uint16Array ? { ...s, data: f16ToF32(s.data) } : s,
        )
        tick(sourceBytes(s))
        continue
      }
      const convert = s.dtype !== (precision === 'fp16' ? 'F16' : 'F32')
      const link = convert ? null : linkFor(s.file)
      if (link) {
        out.set(name, { ...s, file: link })
        tick(s.end - s.begin)
        continue
      }
      let fh = handles.get(s.file)
      if (!fh) {
        fh = await fs.promises.open(s.file, 'r')
        handles.set(s.file, fh)
      }
      let bytes = await readRange(fh, s.begin, s.end)
      let dtype = s.dtype
      if (convert) {
        const f32 = toFloat32(s.dtype, bytes)
        const out = precision === 'fp16' ? f32ToF16(f32) : f32
        bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
        dtype = precision === 'fp16' ? 'F16' : 'F32'
      }
      side ??= new ExternalDataWriter(modelDir, SIDE_FILE)
      const ref = side.append(bytes)
      copiedBytes += bytes.byteLength
      out.set(name, {
        kind: 'file',
        shape: s.shape,
        dtype,
        file: path.join(modelDir, SIDE_FILE),
        begin: ref.offset,
        end: ref.offset + ref.length,
      })
      tick(s.end - s.begin)
    }
  } finally {
    side?.close()
    for (const fh of handles.values()) await fh.close()
  }
  return { sources: out, linked: [...links.values()].some((l) => l !== null), copiedBytes }
}

async function sourceKeyOf(
  src: Pick<CheckpointSource, 'path' | 'files'>,
  cacheRoot: string,
  opts: ConvertOptions,
): Promise<{ key: string; files: EntryManifest['source']['files'] }> {
  const sizes = src.files.map((f) => fs.statSync(f).size)
  const total = sizes.reduce((a, b) => a + b, 0)
  let before = 0
  const files: EntryManifest['source']['files'] = []
  for (const [i, f] of src.files.entries()) {
    const sha256 = await cachedSha256(cacheRoot, f, {
      signal: opts.signal,
      onProgress: (b) => opts.onProgress?.({ phase: 'hash', done: before + b, total }),
    })
    before += sizes[i] ?? 0
    files.push({ path: f, size: sizes[i] ?? 0, sha256 })
  }
  const only = files[0]
  const key =
    files.length === 1 && only?.sha256
      ? only.sha256
      : crypto
          .createHash('sha256')
          .update(files.map((f) => `${path.relative(src.path, f.path)}:${f.sha256}`).join('\n'))
          .digest('hex')
  return { key, files }
}

/** Whether converting `p` would need hashing (a slow first pass) — for UIs that want to warn. */
export function needsHashing(p: string, cacheRoot = appPaths().conversionCache): boolean {
  return fs.statSync(p).isFile() && !hasCachedSha256(cacheRoot, p)
}

/** Converts (or finds in the cache) a checkpoint file, a diffusers folder, or a ready ONNX folder. */
export async function convertCheckpoint(p: string, opts: ConvertOptions = {}): Promise<ConvertedModel> {
  const precision = opts.precision ?? 'fp16'
  const abs = path.resolve(p)
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory() && isOnnxPipeline(abs)) {
    const manifest: EntryManifest = {
      converterVersion: CONVERTER_VERSION,
      sourceKey: '',
      precision,
      source: { path: abs, kind: 'onnx', files: [] },
      graphs: {},
      tokenizerDir: fs.existsSync(path.join(abs, 'tokenizer')) ? path.join(abs, 'tokenizer') : undefined,
      createdAt: new Date().toISOString(),
    }
    return { dir: abs, cached: true, manifest, paths: graphPaths(abs) }
  }

  const src = await openCheckpointSource(abs)
  check(opts.signal)
  const tokenizer = path.join(src.path, 'tokenizer')
  return convertPlans(src, src.kind, plans(src), opts, {
    family: src.family,
    tokenizerDir: src.kind === 'diffusers' && fs.existsSync(tokenizer) ? tokenizer : undefined,
  })
}

/**
 * Builds (or finds in the cache) the graphs of `plans`, keyed by the SHA-256 of `src.files`: the shared core
 * of checkpoint and standalone-VAE conversion.
 */
export async function convertPlans(
  src: Pick<CheckpointSource, 'path' | 'files'>,
  kind: EntryManifest['source']['kind'],
  all: GraphPlan[],
  opts: ConvertOptions,
  extra: Pick<EntryManifest, 'family' | 'tokenizerDir'> = {},
): Promise<ConvertedModel> {
  const cacheRoot = opts.cacheRoot ?? appPaths().conversionCache
  const precision = opts.precision ?? 'fp16'
  const { key, files } = await sourceKeyOf(src, cacheRoot, opts)
  const dir = path.join(cacheRoot, entryName(key, precision))
  const existing = readManifest(dir)
  if (existing) {
    // The entry is keyed by content: the file may have moved or been renamed since it was converted. The
    // graphs read the entry's own links or copies; anything that needs the source reads this request's path,
    // never the one remembered at conversion.
    const manifest: EntryManifest = {
      ...existing,
      source: { path: src.path, kind, files },
      tokenizerDir: extra.tokenizerDir,
    }
    return { dir, cached: true, manifest, paths: graphPaths(dir) }
  }

  const tmp = tempDirFor(dir)
  try {
    const total = all.reduce(
      (a, pl) => a + [...pl.sources.values()].reduce((b, s) => b + sourceBytes(s), 0),
      0,
    )
    let done = 0
    const graphs: EntryManifest['graphs'] = {}
    for (const plan of all) {
      const modelDir = path.join(tmp, plan.name)
      fs.mkdirSync(modelDir, { recursive: true })
      const placed = await placeWeights(plan, modelDir, opts, (b) => {
        done += b
        opts.onProgress?.({ phase: 'convert', done, total, graph: plan.name })
      })
      check(opts.signal)
      const w = new CheckpointWeights(placed.sources, { modelDir })
      fs.writeFileSync(path.join(modelDir, 'model.onnx'), plan.build(w).encode())
      w.close()
      graphs[plan.name] = {
        model: `${plan.name}/model.onnx`,
        linked: placed.linked,
        copiedBytes: placed.copiedBytes,
      }
    }
    const manifest: EntryManifest = {
      converterVersion: CONVERTER_VERSION,
      sourceKey: key,
      precision,
      source: { path: src.path, kind, files },
      graphs,
      ...(extra.family ? { family: extra.family } : {}),
      tokenizerDir: extra.tokenizerDir,
      createdAt: new Date().toISOString(),
    }
    writeJsonAtomic(path.join(tmp, 'manifest.json'), manifest)
    check(opts.signal)
    commitDir(tmp, dir)
    return { dir, cached: false, manifest: readManifest(dir) ?? manifest, paths: graphPaths(dir) }
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true })
    throw err
  }
}

export function readManifest(dir: string): EntryManifest | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as EntryManifest
    if (m.converterVersion !== CONVERTER_VERSION) return undefined
    for (const g of Object.values(m.graphs))
      if (g && !fs.existsSync(path.join(dir, g.model))) return undefined
    return m
  } catch {
    return undefined
  }
}
