import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { buildTaesdDecoder, buildTaesdEncoder, taesdKeyMap, taesdParts } from '../graphs/taesd'
import { InlineWeights } from '../graphs/weights'
import { encodePng } from '../image/codec'
import { denormalize, tensorToImage } from '../image/tensor'
import type { DiffusionModel } from '../pipelines/types'
import type { OpenedSession, SessionConfig } from '../runtime/session'
import { openSession } from '../runtime/session'

/**
 * A TAESD / TAESDXL model (a few MB): its decoder for live previews and draft decodes, its encoder when the
 * file has one. Graphs are built in memory from the weights (no conversion cache) and run on their own
 * small sessions, beside the diffusion model's.
 */
export class TaesdModel {
  private constructor(
    readonly file: string,
    private readonly decoder: OpenedSession,
    private readonly encoder: OpenedSession | undefined,
  ) {}

  /**
   * Loads diffusers' `diffusion_pytorch_model.safetensors` (both halves), or madebyollin's
   * `taesd_decoder.safetensors` / `taesdxl_decoder.safetensors` (decoder only; the half is read from the
   * file name).
   */
  static async load(file: string, session: SessionConfig = {}): Promise<TaesdModel> {
    const st = await SafetensorsFile.open(file)
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>()
    try {
      const part = /encoder/i.test(path.basename(file)) ? 'encoder' : 'decoder'
      for (const [k, t] of st.tensors) {
        const name = taesdKeyMap(k, part)
        if (name) tensors.set(name, { shape: t.shape, data: await st.readFloat32(k) })
      }
    } finally {
      await st.close()
    }
    const parts = taesdParts(tensors.keys())
    if (!parts.decoder)
      throw new Error(`${path.basename(file)}: not a TAESD decoder (no decoder.layers.0 ... 18 weights)`)
    const w = new InlineWeights(tensors)
    const cfg = { threads: 1, ...session }
    const decoder = await openSession(buildTaesdDecoder(w).encode(), cfg)
    const encoder = parts.encoder ? await openSession(buildTaesdEncoder(w).encode(), cfg) : undefined
    return new TaesdModel(file, decoder, encoder)
  }

  get hasEncoder(): boolean {
    return this.encoder !== undefined
  }

  /** Scaled latents [B, 4, h, w] -> image [B, 3, 8h, 8w] in about [-1, 1]. */
  async decode(latents: ort.Tensor): Promise<ort.Tensor> {
    const r = await this.decoder.session.run({ latent_sample: latents })
    return r.sample as ort.Tensor
  }

  /** Image [B, 3, H, W] in [-1, 1] -> scaled latents [B, 4, H/8, W/8]. */
  async encode(image: ort.Tensor): Promise<ort.Tensor> {
    if (!this.encoder) throw new Error(`${path.basename(this.file)} has no TAESD encoder`)
    const r = await this.encoder.session.run({ image })
    return r.latents as ort.Tensor
  }

  /** PNG of the first image of a batch of scaled latents (live previews). */
  async previewPng(latents: Float32Array, latentWidth: number, latentHeight: number): Promise<Buffer> {
    const one = latents.subarray(0, 4 * latentWidth * latentHeight)
    const img = await this.decode(new ort.Tensor('float32', one, [1, 4, latentHeight, latentWidth]))
    return encodePng(tensorToImage(denormalize(img.data as Float32Array), latentWidth * 8, latentHeight * 8))
  }

  async release(): Promise<void> {
    await this.decoder.session.release()
    await this.encoder?.session.release()
  }
}

/**
 * The model with its final decode done by TAESD instead of the full VAE ("draft decode"): latents come in
 * divided by the scaling factor, as the pipelines hand them to `decode`.
 */
export function withDraftDecoder(
  model: DiffusionModel,
  taesd: TaesdModel,
  scalingFactor: number,
): DiffusionModel {
  const scaled = (z: ort.Tensor): ort.Tensor =>
    new ort.Tensor(
      'float32',
      (z.data as Float32Array).map((v) => v * scalingFactor),
      z.dims,
    )
  const encodeTextXL = model.encodeTextXL?.bind(model)
  return {
    id: `${model.id}+taesd`,
    ...(model.family ? { family: model.family } : {}),
    encodeText: (ids, batch, clipSkip) => model.encodeText(ids, batch, clipSkip),
    unet: (sample, t, context, added) => model.unet(sample, t, context, added),
    ...(encodeTextXL ? { encodeTextXL } : {}),
    encode: (image) => model.encode(image),
    decode: (latents) => taesd.decode(scaled(latents)),
  }
}
