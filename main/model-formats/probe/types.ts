import type { DType } from '../safetensors'
import type { SdxlFlavor } from './flavor'

export const BASES = ['sd-1', 'sd-2', 'sdxl'] as const
export type Base = (typeof BASES)[number]
export const MODEL_TYPES = ['checkpoint', 'lora', 'vae', 'embedding'] as const
export type ModelType = (typeof MODEL_TYPES)[number]
export const MODEL_FORMATS = ['ldm-single-file', 'diffusers', 'onnx'] as const
export type ModelFormat = (typeof MODEL_FORMATS)[number]
/** `depth` (SD 2 depth2img, 5 input channels) and `refiner` (SDXL refiner) are recognised, never run. */
export const VARIANTS = ['normal', 'inpaint', 'depth', 'refiner'] as const
export type Variant = (typeof VARIANTS)[number]

/** Bases Atelier can run today. */
export const RUNNABLE_BASES: readonly Base[] = ['sd-1', 'sdxl']

export interface UnetArch {
  inChannels: number
  outChannels: number
  /** Width of conv_in (= blockOutChannels[0]). */
  modelChannels: number
  blockOutChannels: number[]
  /** Resnets per down block; up blocks have one more. */
  layersPerBlock: number
  /** Per down level: transformer depth inside each attention (0 = no attention: DownBlock2D). */
  transformerDepth: number[]
  midTransformerDepth: number
  /** Per up block (deepest first), transformer depth (0 = UpBlock2D). */
  transformerDepthUp: number[]
  /** Per down level: attention head count (0 where the level has no attention). */
  heads: number[]
  midHeads: number
  /** Cross-attention (context) width: the text embedding width the UNet expects. */
  contextDim: number
  timeEmbedDim: number
  /** proj_in/proj_out as Linear (SD2, SDXL) instead of 1x1 conv (SD1). */
  linearProjection: boolean
  /** SDXL `label_emb` / diffusers `add_embedding` input width (pooled text + 6 time ids), if present. */
  additionEmbedInDim?: number
  /** SDXL: size of each time-id embedding (addition_time_embed_dim), when derivable. */
  additionTimeEmbedDim?: number
}

export interface VaeArch {
  inChannels: number
  outChannels: number
  blockOutChannels: number[]
  /** Resnets per encoder block; decoder blocks have one more. */
  layersPerBlock: number
  latentChannels: number
  hasQuantConv: boolean
  /** From the diffusers config, else the family default (not stored in single files). */
  scalingFactor: number
}

export type TextEncoderNaming = 'hf-clip' | 'open-clip'

export interface TextEncoderArch {
  naming: TextEncoderNaming
  width: number
  layers: number
  /** OpenAI rule: width / 64. */
  heads: number
  mlpDim: number
  vocabSize: number
  maxPositions: number
  hiddenAct: 'quick_gelu' | 'gelu'
  /** Text projection output width (SDXL text encoder 2), if the weights hold one. */
  projectionDim?: number
}

export type LoraModule = 'unet' | 'te' | 'te1' | 'te2'
export type LoraNaming = 'kohya' | 'diffusers' | 'peft'

export interface LoraInfo {
  naming: LoraNaming
  rank: number
  /** All ranks present (per-module ranks can differ). */
  ranks: number[]
  modules: LoraModule[]
  moduleCount: number
  hasAlpha: boolean
  /** Cross-attention input width of the UNet attn2 to_k/to_v deltas (the base's context dim). */
  contextDim?: number
  /** Width of each text encoder the deltas target (from the q_proj deltas). */
  textEncoderWidths: Partial<Record<'te' | 'te1' | 'te2', number>>
  /** Kohya UNet keys in SGM/LDM block naming (`input_blocks_4_1_...`), as SDXL kohya LoRAs have. */
  sgmUnetNames: boolean
  /** LyCORIS module kinds beyond plain low-rank pairs (LoCon Tucker, LoHa, LoKr, DoRA, full diff). */
  lycoris?: ('locon-tucker' | 'loha' | 'lokr' | 'dora' | 'full')[]
}

export interface EmbeddingInfo {
  /** Vectors per text encoder key (`emb_params`, `clip_l`, `clip_g`, ...). */
  vectors: number
  widths: Record<string, number>
}

export interface ProbeResult {
  path: string
  format: ModelFormat
  type: ModelType
  /** null where the weights do not tell (a standalone VAE fits SD 1 and SDXL). */
  base: Base | null
  variant: Variant
  /** base + variant, e.g. 'sd-1', 'sd-1-inpaint', 'sdxl-refiner'. */
  family: string
  /**
   * SDXL fine-tune line (Pony, Illustrious, NoobAI) from Civitai's baseModel (a sidecar) or the file's
   * metadata; it runs as SDXL. `label` is the human name, e.g. 'SDXL (Pony)'.
   */
  flavor?: SdxlFlavor
  label?: string
  runnable: boolean
  /** Why it cannot run yet (recognised, not yet runnable), when runnable is false. */
  reason?: string
  /** Storage dtype of most weights. */
  dtype?: DType
  /** Weight files the record was built from (one for single files, one per component for folders). */
  files: Record<string, string>
  predictionType?: 'epsilon' | 'v_prediction' | 'sample'
  unet?: UnetArch
  vae?: VaeArch
  /** [te] for SD 1/2, [te1, te2] for SDXL base, [te2] for the SDXL refiner. */
  textEncoders?: TextEncoderArch[]
  lora?: LoraInfo
  embedding?: EmbeddingInfo
  /** Hints read from `__metadata__` (kohya ss_*, modelspec.*), not the whole metadata. */
  hints?: Record<string, string>
}

export class ProbeError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
    this.name = 'ProbeError'
  }
}
