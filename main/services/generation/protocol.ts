/**
 * Messages between the generation service (main thread) and its worker thread. Everything here is
 * structured-clone data; images travel as Uint8Array (transferred, not copied, where possible).
 */
import type { ApiError, GenerateRequest } from '../../../preload/contract-types'
import type { ProviderPreference } from '../../engine/runtime/providers'
import type { ComputePrecision } from '../../engine/runtime/session'

export interface ResolvedModel {
  /** Checkpoint file, diffusers folder or ONNX folder. */
  path: string
  /** Shown in metadata (`Model: name`). */
  name: string
  /** Full-file SHA-256 when already known (library); else the worker hashes once (cached). */
  sha256?: string
  civitaiVersionId?: number
}

/** A standalone VAE that replaces the checkpoint's (request `vae`). */
export interface ResolvedVae {
  path: string
  /** A1111 writes the file name with its extension (`VAE: vae-ft-mse-840000-ema-pruned.safetensors`). */
  name: string
  /** Full-file SHA-256 when already known (library); else the worker hashes once (cached). */
  sha256?: string
  /** The library's family for it ('sd-1', 'sdxl', 'any'), from Civitai's base model or the probe. */
  family?: string | null
}

export interface TaesdFile {
  path: string
  name: string
  family: 'sd-1' | 'sdxl'
}

export interface ResolvedLora {
  path: string
  name: string
  /** Text-encoder multiplier (the weight users see); also the UNet's unless `unetWeight` is set. */
  weight: number
  /** UNet multiplier from A1111's `<lora:name:te:unet>`. */
  unetWeight?: number
  civitaiVersionId?: number
}

/** Image prompts of a job: the models, resolved to files (the images are bytes in request.imagePrompts). */
export interface ResolvedImagePrompt {
  adapter: { path: string; name: string; sha256?: string }
  encoder: { path: string; name: string }
}

/** A request with defaults applied and names resolved to files (what the worker runs). */
export interface WorkerJob {
  jobId: string
  request: GenerateRequest
  /** The seed actually used (the request's, or a random one). */
  seed: number
  model: ResolvedModel
  loras: ResolvedLora[]
  /** A VAE that decodes and encodes instead of the checkpoint's own. */
  vae?: ResolvedVae
  /** Set when the request has image prompts (IP-Adapter). */
  imagePrompt?: ResolvedImagePrompt
  /** TAESD / TAESDXL models in the library (live previews, draft decode); the worker picks by family. */
  taesd?: TaesdFile[]
  /** The prompt line as typed, when it used Midjourney syntax (infotext `Midjourney prompt`). */
  midjourneyPrompt?: string
  /** Embedding files whose names occur in the prompt or negative prompt (the worker matches them on tokens). */
  embeddings?: { name: string; path: string }[]
  /** Conversion cache folder. */
  cacheRoot: string
  /** Where pre-flight estimate calibrations live; the worker adds one per family when missing. */
  calibrationFile?: string
  /** Tokenizer folder / BPE file; default lookup when absent. */
  tokenizer?: string
  /** The data folder's tokenizer cache (default lookup). */
  tokenizerCacheDir?: string
  /** Stored in the PNG (`Version: ...`). */
  appVersion: string
  /** The Settings execution provider (auto tries GPU providers, then CPU). */
  executionProvider?: ProviderPreference
  /** The Settings GPU compute precision (the CPU provider computes fp32 either way). */
  computePrecision?: ComputePrecision
}

export interface WorkerImage {
  png: Uint8Array
  seed: number
  width: number
  height: number
}

export type ToWorker =
  { type: 'run'; job: WorkerJob } | { type: 'cancel'; jobId: string } | { type: 'dispose' }

export type FromWorker =
  | {
      type: 'progress'
      jobId: string
      batch: number
      batchCount: number
      step: number
      total: number
      etaMs: number
      preview?: Uint8Array
    }
  | { type: 'status'; jobId: string; message: string }
  | { type: 'images'; jobId: string; batch: number; images: WorkerImage[] }
  | { type: 'done'; jobId: string }
  /** The provider the job's sessions opened on, and why a preferred one was not used (once per reason). */
  | {
      type: 'engine'
      jobId: string
      preference: ProviderPreference
      provider: string
      fallbackReason?: string
      /** What the UNet computed in ('fp16', 'fp16 (emulated on CPU)' or 'fp32'). */
      compute?: string
    }
  | { type: 'error'; jobId: string; error: ApiError }
  | { type: 'ready' }
