import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { cachedSha256, commitDir, tempDirFor, writeJsonAtomic } from '../convert/cache'
import { appPaths } from '../../platform/paths'
import type { ClipVisionConfig, HfClipVisionConfig } from '../graphs/clip-vision'
import { buildClipVision } from '../graphs/clip-vision'
import type { StoredDType, WeightSource } from '../graphs/weights'
import { CheckpointWeights } from '../graphs/weights'
import type { RawImage } from '../image/types'
import { OnnxGraph } from '../runtime/session'
import type { SessionConfig } from '../runtime/session'
import type { ClipPreprocessConfig } from './preprocess'
import { clipPreprocess, configFromPreprocessorJson } from './preprocess'
import { openTensorFile } from '../../model-formats/tensor-file'

/**
 * The CLIP image encoder IP-Adapter uses, from the Hugging Face `image_encoder/` layout (config.json +
 * model.safetensors or pytorch_model.bin, optional preprocessor_config.json) or a single weights file with
 * the same names (ComfyUI's clip_vision files). Converted once into the cache (`<cache>/clip-vision/<key>/`):
 * a graph whose initializers point into a hard link of the weights file (a copy when linking is
 * impossible or the tensor is not one contiguous range of it).
 */

export const ENCODER_VERSION = 1

export interface ImageEncoderFiles {
  /** What the user named (folder or file). */
  path: string
  weights: string
  config: HfClipVisionConfig
  preprocessor?: unknown
}

export class ImageEncoderError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ImageEncoderError'
  }
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown
  } catch {
    return undefined
  }
}

const WEIGHT_NAMES = ['model.safetensors', 'pytorch_model.safetensors', 'pytorch_model.bin', 'model.bin']

/** Finds the weights and configs of an image encoder folder or file. */
export function locateImageEncoder(p: string): ImageEncoderFiles {
  const abs = path.resolve(p)
  if (!fs.existsSync(abs)) throw new ImageEncoderError(`image encoder ${abs}: no such file or folder`)
  let dir: string
  let weights: string | undefined
  if (fs.statSync(abs).isDirectory()) {
    dir = fs.existsSync(path.join(abs, 'image_encoder', 'config.json'))
      ? path.join(abs, 'image_encoder')
      : abs
    weights = WEIGHT_NAMES.map((n) => path.join(dir, n)).find((f) => fs.existsSync(f))
    if (!weights)
      throw new ImageEncoderError(`${dir}: no image encoder weights (looked for ${WEIGHT_NAMES.join(', ')})`)
  } else {
    weights = abs
    dir = path.dirname(abs)
  }
  const config = readJson(path.join(dir, 'config.json'))
  const own = config && typeof config === 'object' ? (config as HfClipVisionConfig) : {}
  return {
    path: abs,
    weights,
    // a config.json beside a lone weights file is only used when it describes a vision tower
    config: own.hidden_size !== undefined || own.vision_config ? own : {},
    preprocessor: readJson(path.join(dir, 'preprocessor_config.json')),
  }
}

const STORED: Record<string, StoredDType> = { F16: 'F16', BF16: 'BF16', F32: 'F32' }

/** Converts (or finds in the cache) the encoder graph; returns its model path and architecture. */
export async function convertImageEncoder(
  files: ImageEncoderFiles,
  opts: { cacheRoot?: string; signal?: AbortSignal } = {},
): Promise<{ model: string; config: ClipVisionConfig; cached: boolean }> {
  const cacheRoot = opts.cacheRoot ?? appPaths().conversionCache
  const sha = await cachedSha256(cacheRoot, files.weights, { signal: opts.signal })
  const key = crypto
    .createHash('sha256')
    .update(`clip-vision-v${ENCODER_VERSION}\n${sha}\n${JSON.stringify(files.config)}`)
    .digest('hex')
    .slice(0, 24)
  const dir = path.join(cacheRoot, 'clip-vision', key)
  const model = path.join(dir, 'model.onnx')
  const info = readJson(path.join(dir, 'encoder.json')) as { config?: ClipVisionConfig } | undefined
  if (fs.existsSync(model) && info?.config) return { model, config: info.config, cached: true }

  const tmp = tempDirFor(dir)
  const f = await openTensorFile(files.weights)
  try {
    const linkName = f.format === 'safetensors' ? 'weights.safetensors' : 'weights.pt'
    let linked = false
    try {
      fs.linkSync(fs.realpathSync(files.weights), path.join(tmp, linkName))
      linked = true
    } catch {
      linked = false
    }
    const sources = new Map<string, WeightSource>()
    for (const k of f.keys()) {
      if (!k.startsWith('vision_model.') && k !== 'visual_projection.weight') continue
      const t = f.info(k)
      const dtype = STORED[t.dtype]
      if (linked && dtype && t.range)
        sources.set(k, {
          kind: 'file',
          shape: t.shape,
          dtype,
          file: path.join(tmp, linkName),
          begin: t.range.begin,
          end: t.range.end,
        })
      else sources.set(k, { kind: 'data', shape: t.shape, data: await f.readHalfOrFloat(k) })
      if (opts.signal?.aborted) throw new Error('cancelled')
    }
    const w = new CheckpointWeights(sources, { modelDir: tmp, sideFileName: 'weights.bin' })
    let built: ReturnType<typeof buildClipVision>
    try {
      built = buildClipVision(w, { config: files.config })
      fs.writeFileSync(path.join(tmp, 'model.onnx'), built.graph.encode())
    } finally {
      w.close()
    }
    writeJsonAtomic(path.join(tmp, 'encoder.json'), {
      version: ENCODER_VERSION,
      source: files.path,
      weights: files.weights,
      sha256: sha,
      config: built.config,
    })
    commitDir(tmp, dir)
    return { model, config: built.config, cached: false }
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true })
    if (err instanceof Error && /not a CLIP image encoder|CLIP image encoder/.test(err.message))
      throw new ImageEncoderError(`${path.basename(files.path)}: ${err.message} (${files.path})`)
    throw err
  } finally {
    await f.close()
  }
}

/** A loaded image encoder: preprocessing + the graph (one session, loaded on first use). */
export class ImageEncoder {
  private constructor(
    readonly files: ImageEncoderFiles,
    readonly config: ClipVisionConfig,
    readonly preprocess: ClipPreprocessConfig,
    private readonly graph: OnnxGraph,
  ) {}

  static async open(
    p: string,
    opts: { cacheRoot?: string; session?: SessionConfig; signal?: AbortSignal } = {},
  ): Promise<ImageEncoder> {
    const files = locateImageEncoder(p)
    const { model, config } = await convertImageEncoder(files, opts)
    const pre = configFromPreprocessorJson(files.preprocessor, config.imageSize)
    return new ImageEncoder(files, config, pre, new OnnxGraph('image_encoder', model, opts.session ?? {}))
  }

  /** Output width (the embedding IP-Adapter projects). */
  get embedDim(): number {
    return this.config.projectionDim || this.config.width
  }

  /** pixel_values [n, 3, S, S] -> image_embeds [n, E]. */
  async embedPixels(pixels: Float32Array, n: number): Promise<Float32Array> {
    const H = this.preprocess.cropHeight
    const W = this.preprocess.cropWidth
    const out = await this.graph.run({ pixel_values: new ort.Tensor('float32', pixels, [n, 3, H, W]) }, [
      'image_embeds',
    ])
    return (out.image_embeds as ort.Tensor).data as Float32Array
  }

  /** Images -> image_embeds [n, E] (CLIPImageProcessor, then the tower). */
  async embedImages(images: RawImage[]): Promise<Float32Array> {
    return this.embedPixels(clipPreprocess(images, this.preprocess), images.length)
  }

  async release(): Promise<void> {
    await this.graph.release()
  }
}
