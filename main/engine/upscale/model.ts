import * as ort from 'onnxruntime-node'
import type { ProviderName } from '../runtime/providers'
import type { OpenedSession, SessionConfig } from '../runtime/session'
import { openSession } from '../runtime/session'
import type { UpscalerArch } from '../../model-formats/probe/upscaler'
import { buildUpscalerGraph, INPUT, OUTPUT } from './graph'
import type { UpscalerWeights } from './weights'
import { loadUpscalerWeights } from './weights'

/** A float32 NCHW image with batch 1. */
export interface FloatImage {
  data: Float32Array
  channels: number
  height: number
  width: number
}

/** Anything that maps an input tile to its upscaled tile (a model, or a stand-in in tests). */
export interface TileRunner {
  readonly scale: number
  /** Input sizes must be multiples of this (pixel-unshuffle models). */
  readonly multiple: number
  run(x: FloatImage): Promise<FloatImage>
}

/** An upscaler model: weights -> ONNX graph (in memory) -> one ORT session. */
export class UpscalerModel implements TileRunner {
  private constructor(
    readonly file: string,
    readonly arch: UpscalerArch,
    private readonly opened: OpenedSession,
  ) {}

  static async fromWeights(weights: UpscalerWeights, session: SessionConfig = {}): Promise<UpscalerModel> {
    const bytes = buildUpscalerGraph(weights).encode()
    const opened = await openSession(bytes, session)
    return new UpscalerModel(weights.file, weights.arch, opened)
  }

  static async load(file: string, session: SessionConfig = {}): Promise<UpscalerModel> {
    return UpscalerModel.fromWeights(await loadUpscalerWeights(file), session)
  }

  get scale(): number {
    return this.arch.scale
  }

  get multiple(): number {
    return this.arch.kind === 'rrdbnet' ? this.arch.unshuffle : 1
  }

  get provider(): ProviderName {
    return this.opened.provider
  }

  async run(x: FloatImage): Promise<FloatImage> {
    if (x.channels !== this.arch.inChannels)
      throw new Error(`the upscaler takes ${this.arch.inChannels} channels, got ${x.channels}`)
    if (x.height % this.multiple || x.width % this.multiple)
      throw new Error(`the upscaler needs sizes divisible by ${this.multiple}, got ${x.width}x${x.height}`)
    const feeds = { [INPUT]: new ort.Tensor('float32', x.data, [1, x.channels, x.height, x.width]) }
    const out = (await this.opened.session.run(feeds))[OUTPUT] as ort.Tensor
    const [, c = 0, h = 0, w = 0] = out.dims
    const data = out.data as Float32Array
    return { data, channels: c, height: h, width: w }
  }

  async release(): Promise<void> {
    await this.opened.session.release()
  }
}
