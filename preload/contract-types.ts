/** DTOs that cross the contract. Plain JSON-able data plus Uint8Array for binary payloads. */

export type ErrorCode =
  | 'invalid-input'
  | 'unknown-channel'
  | 'not-found'
  | 'unauthorized'
  | 'forbidden'
  | 'conflict'
  | 'cancelled'
  | 'unavailable'
  | 'rate-limited'
  | 'disk-full'
  | 'unsupported'
  | 'out-of-memory'
  | 'internal'

export interface ApiError {
  code: ErrorCode
  message: string
  /** Field-level details for invalid-input. */
  issues?: { path: string; message: string }[]
}

export type Result<V> = { ok: true; value: V } | { ok: false; error: ApiError }

export interface ExecutionProviderInfo {
  /**
   * The provider the latest generation's sessions opened on ('cpu', 'cuda', 'dml', 'coreml', 'webgpu'), or
   * the preference ('auto' too) while nothing has opened yet (`opened` false).
   */
  name: string
  /** The Settings preference. */
  preference?: string
  /** Whether `name` is a provider that actually opened (a generation ran with it). */
  opened?: boolean
  /** Providers this build of onnxruntime-node offers. */
  available: string[]
  /** Why a preferred provider was not used (shown in the status bar), if any. */
  fallbackReason?: string
  /** What the latest generation's UNet computed in ('fp16' or 'fp32'), once one ran. */
  compute?: string
}

export interface AppInfo {
  version: string
  mode: 'desktop' | 'server'
  platform: string
  executionProvider: ExecutionProviderInfo
  home: string
}

/** Result of Settings' per-provider "Test": a tiny conv/norm/attention graph on exactly that provider. */
export interface ProviderTestResult {
  provider: string
  /** The provider opened and its result matched the CPU's. */
  ok: boolean
  /** The provider that actually ran (CPU when the asked one did not start). */
  ran: string
  createMs: number
  runMs: number
  maxDiff: number
  message: string
}

export type NsfwPreference = 'hide' | 'blur' | 'show'

export interface Settings {
  civitaiBaseUrl: string
  hfBaseUrl: string
  libraryRoot: string
  extraLibraryRoots: string[]
  concurrentDownloads: number
  nsfw: NsfwPreference
  executionProvider: 'auto' | 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu'
  /**
   * Compute precision on GPU providers: 'fp16' (default) runs the text encoders and UNet in half precision
   * with fp32 islands (norms, softmax, timestep embedding; the VAE stays fp32); 'fp32' everywhere. The CPU
   * provider always computes fp32.
   */
  computePrecision: 'fp16' | 'fp32'
}

export type SecretName = 'civitaiApiKey' | 'hfToken'

export interface SecretStatus {
  name: SecretName
  isSet: boolean
  /** Where the value comes from: the encrypted store or an environment variable. */
  source: 'store' | 'env' | 'none'
  /** Last four characters, for recognition only. */
  hint?: string
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled'

export interface JobInfo {
  id: string
  kind: string
  label: string
  state: JobState
  progress: number
  message?: string
  startedAt: number
}

export interface JobRef {
  jobId: string
}

// --- generation (txt2img / img2img / inpaint / outpaint) and the gallery ---

export type GenerateMode = 'txt2img' | 'img2img' | 'inpaint' | 'outpaint'
/** A1111's resize modes for an input image whose size differs from the requested one. */
export type ResizeMode = 'just-resize' | 'crop-and-resize' | 'resize-and-fill'
/** A1111 "Masked content": what the masked area starts from. */
export type MaskedContent = 'fill' | 'original' | 'latent-noise' | 'latent-nothing'
export type InpaintArea = 'whole-picture' | 'only-masked'

export interface LoraRequest {
  /** Library name (file stem / alias) as in `<lora:name:weight>`. */
  name: string
  weight: number
}

/**
 * An image prompt (IP-Adapter reference image): encoded bytes, a gallery image, or an http(s) URL that main
 * fetches (the renderer never does). `weight` is the adapter scale (A1111 / ComfyUI IP-Adapter weight,
 * default 1); several images are averaged by weight before the projection and run at the largest weight.
 */
export interface ImagePromptRequest {
  image?: Uint8Array
  galleryId?: string
  url?: string
  weight?: number
}

export interface OutpaintRequest {
  left?: number
  right?: number
  top?: number
  bottom?: number
  /** Band of original pixels (px) repainted along each extended side; default 32. */
  overlap?: number
  /** Repeat the extension N times, each on the previous result; default 1. */
  repeat?: number
  /**
   * Zoom out by this factor (> 1): extend all sides in steps of at most 1.5x, scaling back to the input
   * size after each; the sides above are ignored. Output size = input size.
   */
  zoomOut?: number
}

export type SamplerConvention = 'a1111' | 'comfy' | 'diffusers'

export interface GenerateRequest {
  mode: GenerateMode
  /** Library id or name (the CLI also accepts a file or folder path). */
  model: string
  prompt: string
  negativePrompt?: string
  /** A1111 sampler name, e.g. 'Euler a', 'DPM++ 2M', 'DDIM' (older names such as 'DPM++ 2M Karras' imply a schedule). */
  sampler?: string
  /**
   * A1111 "Schedule type": 'Automatic' (the sampler's default; absent = Automatic), 'Uniform', 'Karras',
   * 'Exponential', 'Polyexponential', 'SGM Uniform', 'KL Optimal', 'Align Your Steps', 'Simple', 'Normal',
   * 'DDIM', 'Beta'. With samplerConvention 'comfy': a ComfyUI scheduler name; with 'diffusers': 'Karras' or a
   * timestep spacing ('leading', 'trailing', 'linspace').
   */
  scheduleType?: string
  /**
   * How the sampler runs: 'a1111' (k-diffusion as A1111 / Forge do; the default for A1111 sampler names),
   * 'comfy' (ComfyUI's KSampler), 'diffusers' (diffusers' schedulers and timestep spacings, the engine's earlier behaviour).
   */
  samplerConvention?: SamplerConvention
  steps?: number
  cfgScale?: number
  /** -1 or absent: random. Batch images use seed, seed + 1, ... */
  seed?: number
  /** Multiples of 8; for img2img/inpaint the input image's size (rounded down to 8) when absent. */
  width?: number
  height?: number
  /** Images per UNet call. */
  batchSize?: number
  /** Batches run one after another. */
  batchCount?: number
  /** A1111 Clip skip, 1 (the last text-encoder layer) to 12; SD 1.x only (SDXL ignores it, as A1111 does). */
  clipSkip?: number
  /**
   * A standalone VAE (library id or name; a file path from the CLI) that decodes and encodes instead of the
   * checkpoint's own (A1111's "SD VAE"). Absent, 'Automatic' or 'None': the checkpoint's VAE.
   */
  vae?: string
  /** LoRAs besides `<lora:...>` tags in the prompt. */
  loras?: LoraRequest[]
  /** Encoded image (PNG/JPEG/WebP) for img2img, inpaint, outpaint. */
  image?: Uint8Array
  /** Encoded mask image for inpaint: white = repaint. */
  mask?: Uint8Array
  /** Denoising strength (img2img, inpaint); default 0.75 (outpaint: 1). */
  strength?: number
  /** Run exactly `steps` steps of a longer schedule instead of int(steps x strength). */
  exactSteps?: boolean
  /**
   * Decode the final image with TAESD (the library's TAESD / TAESDXL for the model's family) instead of
   * the full VAE: much faster, a little softer ("VAE Decoder: TAESD" in the infotext).
   */
  draftDecode?: boolean
  /**
   * Low-memory mode (fp16 weights cast per layer, one stage loaded at a time): slower, about half the
   * peak. Default: on for SDXL below 32 GiB of RAM.
   */
  lowMemory?: boolean
  /** Live previews: 'taesd' (default when a TAESD for the family is in the library) or 'approx' (linear). */
  previewDecoder?: 'taesd' | 'approx'
  resizeMode?: ResizeMode
  maskBlur?: number
  maskedContent?: MaskedContent
  inpaintArea?: InpaintArea
  /** Padding (px) around the mask for only-masked inpainting; default 32. */
  onlyMaskedPadding?: number
  invertMask?: boolean
  outpaint?: OutpaintRequest
  /** txt2img hires fix: an img2img pass at a larger size after the base image (A1111 "Hires. fix"). */
  hires?: HiresRequest
  /** img2img SD upscale: upscale, then img2img tile by tile at the model's size (A1111 "SD upscale"). */
  sdUpscale?: SdUpscaleRequest
  /** Noise generator: 'cpu' = torch CPU (diffusers), 'gpu' = CUDA Philox (A1111's default). */
  rng?: 'cpu' | 'gpu'
  /** SDXL size conditioning (advanced; ignored by SD 1.x models). */
  sdxl?: SdxlConditioning
  /** Image prompts (IP-Adapter) for txt2img and img2img; Midjourney image URLs / --iw / /blend also land here. */
  imagePrompts?: ImagePromptRequest[]
  /** IP-Adapter model (library id/name or file); default: the library's adapter for the checkpoint's family. */
  ipAdapter?: string
  /** CLIP image encoder (library id/name, folder or file); default: the library's encoder the adapter needs. */
  imageEncoder?: string
  /**
   * A1111 "Variation seed": the start noise is slerp(variationStrength, noise(seed), noise(variationSeed)),
   * batch images use variationSeed, variationSeed + 1, ... (-1 or absent: random). Written to the infotext.
   */
  variationSeed?: number
  /** A1111 "Variation seed strength", 0 (off, default) … 1 (the variation seed's noise alone). */
  variationStrength?: number
  /** Every image of the batch uses `seed` (not seed, seed + 1, ...): with a variation seed, Midjourney's V. */
  sameSeed?: boolean
}

/**
 * SDXL's six time ids, in pixels. Defaults (diffusers and A1111): original and target size = the generated
 * size, crop 0, 0. A smaller original size imitates low-resolution training images; a crop offset, cropped ones.
 */
export interface SdxlConditioning {
  originalWidth?: number
  originalHeight?: number
  cropTop?: number
  cropLeft?: number
  targetWidth?: number
  targetHeight?: number
}

/**
 * Hires fix (A1111 defaults: scale 2, upscaler 'Latent', strength 0.7, steps 0 = the base pass's steps).
 * Upscalers: 'Latent', 'Latent (nearest)', 'Latent (nearest-exact)', 'Latent (bicubic)' (in latent space),
 * 'Lanczos', 'Nearest', or an upscaler model (library name or file).
 */
export interface HiresRequest {
  scale?: number
  /** Target size instead of the factor (one of them keeps the aspect ratio). */
  width?: number
  height?: number
  upscaler?: string
  strength?: number
  steps?: number
}

/** SD upscale (A1111 defaults: scale 2, tile overlap 64; tiles of the request's width/height or the model's size). */
export interface SdUpscaleRequest {
  scale?: number
  /** 'Lanczos' (default), 'Nearest', or an upscaler model (library name or file). */
  upscaler?: string
  tileOverlap?: number
}

export interface GenerationProgress {
  jobId: string
  /** Batch being run (0-based) of batchCount. */
  batch: number
  batchCount: number
  step: number
  total: number
  etaMs: number
  /** Small PNG preview of the current latents, every few steps. */
  preview?: Uint8Array
}

/** A generation job still queued or running (the studio reattaches to it after a reload). */
export interface ActiveGeneration {
  jobId: string
  state: 'queued' | 'running'
  /** The request as sent (input images and image-prompt bytes left out). */
  request: GenerateRequest
  /** The latest progress, with the latest preview. */
  progress?: GenerationProgress
  startedAt: number
}

/** One highlighted piece of a Midjourney prompt line (the pieces concatenate back to the line). */
export interface MidjourneySpanDto {
  kind: 'text' | 'command' | 'image' | 'flag' | 'value' | 'weight' | 'unsupported' | 'unknown'
  text: string
  title?: string
}

/** What the one Midjourney parser makes of a prompt line (the prompt bar shows it as the user types). */
export interface MidjourneyParse {
  text: string
  /** The line uses Midjourney syntax (then the request changes as below). */
  midjourney: boolean
  prompt: string
  negativePrompt: string
  width?: number
  height?: number
  seed?: number
  images: string[]
  blend: boolean
  iw?: number
  warnings: string[]
  /** Set when the line cannot run (a bad --iw, /blend with one image): the message. */
  error?: string
  spans: MidjourneySpanDto[]
  /** The syntax table (popover). */
  syntax: { syntax: string; mapsTo: string; supported: boolean }[]
}

export interface OutputImage {
  /** Gallery id (file stem). */
  id: string
  fileName: string
  width: number
  height: number
  sizeBytes: number
  createdAt: number
  seed?: number
}

/** Pre-flight estimate of a request (`generate:estimate`). */
export interface GenerationEstimateInfo {
  seconds: number
  breakdown: { load: number; text: number; sampling: number; decode: number; encode: number }
  stepSeconds: number
  stepsRun: number
  peakBytes: number
  availableBytes: number
  fits: boolean
  /**
   * When it does not fit: draft decode (TAESD for the final decode), low-memory mode, both, or the largest
   * size of the same aspect that fits.
   */
  suggestion?: { lowMemory?: true; draftDecode?: true; width?: number; height?: number }
  /** false: no calibration on this machine yet (a rough default; the first generation calibrates). */
  calibrated: boolean
  family: 'sd-1' | 'sdxl'
  provider: string
  lowMemory: boolean
  width: number
  height: number
}

export interface GenerationResult {
  jobId: string
  state: 'done' | 'failed' | 'cancelled'
  images: OutputImage[]
  error?: ApiError
  elapsedMs: number
}

/** Generation parameters read back from a PNG (A1111 `parameters` text, or InvokeAI metadata). */
export interface ImageParameters {
  /** The raw metadata text; null when the PNG has none. */
  text: string | null
  source?: 'parameters' | 'invokeai_metadata' | 'comfyui'
  /** ComfyUI graphs: what the graph holds that was not restored (other node types, a second pass, ...). */
  notRestored?: string[]
  prompt: string
  negativePrompt: string
  steps?: number
  sampler?: string
  scheduleType?: string
  cfgScale?: number
  seed?: number
  width?: number
  height?: number
  model?: string
  modelHash?: string
  /** A1111 `VAE` (the VAE's file name) and `VAE hash` (first 10 hex of its SHA-256): a separate VAE. */
  vae?: string
  vaeHash?: string
  denoisingStrength?: number
  exactSteps?: boolean
  clipSkip?: number
  /** A1111 `RNG` as written ('CPU', 'GPU', 'NV'); absent in A1111 infotexts made with its default (GPU). */
  rng?: string
  maskBlur?: number
  maskedContent?: string
  inpaintArea?: string
  maskedAreaPadding?: number
  loraHashes?: { name: string; hash: string }[]
  civitaiResources?: { type: string; modelVersionId?: number; air?: string; weight?: number }[]
  /** Every other `Key: value` (unquoted). */
  settings: Record<string, string>
}
