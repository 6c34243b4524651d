/**
 * THE contract between renderer and main: every request channel with its request schema (validated at
 * runtime in main) and response type, and every pushed event. Channels are `domain:verb`.
 *
 * To add a channel: add its zod schema to `requestSchemas`, its response type to `Responses`, then a
 * handler in main/services/api.ts (the mapped `Handlers` type makes a missing one a compile error).
 */
import { z } from 'zod'
import type {
  ActiveGeneration,
  AppInfo,
  GenerationEstimateInfo,
  ProviderTestResult,
  GenerationProgress,
  GenerationResult,
  ImageParameters,
  JobInfo,
  JobRef,
  MidjourneyParse,
  OutputImage,
  SecretStatus,
  Settings,
} from './contract-types'
import {
  modelsEventNames,
  modelsRequestSchemas,
  type ModelsEvents,
  type ModelsResponses,
} from './contract-models'

export * from './contract-types'
export * from './contract-models'

const secretName = z.enum(['civitaiApiKey', 'hfToken'])

export const settingsPatchSchema = z
  .object({
    civitaiBaseUrl: z.url(),
    hfBaseUrl: z.url(),
    libraryRoot: z.string().min(1).max(4096),
    extraLibraryRoots: z.array(z.string().min(1).max(4096)).max(64),
    concurrentDownloads: z.number().int().min(1).max(8),
    nsfw: z.enum(['hide', 'blur', 'show']),
    executionProvider: z.enum(['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu']),
    computePrecision: z.enum(['fp16', 'fp32']),
  })
  .partial()
  .strict()

const empty = z.object({}).strict()

const bytes = z.instanceof(Uint8Array)
const multipleOf8 = (what: string) =>
  z
    .number()
    .int()
    .min(8, `${what} must be at least 8`)
    .max(4096, `${what} must be at most 4096`)
    .refine((v) => v % 8 === 0, `${what} must be a multiple of 8`)
const outputId = z.string().regex(/^[\w.-]{1,200}$/, 'not a gallery id')

export const generateRequestSchema = z
  .object({
    mode: z.enum(['txt2img', 'img2img', 'inpaint', 'outpaint']),
    model: z.string().min(1).max(4096),
    prompt: z.string().max(20000),
    negativePrompt: z.string().max(20000).optional(),
    sampler: z.string().min(1).max(100).optional(),
    scheduleType: z.string().min(1).max(100).optional(),
    samplerConvention: z.enum(['a1111', 'comfy', 'diffusers']).optional(),
    steps: z.number().int().min(1).max(500).optional(),
    cfgScale: z.number().min(0).max(50).optional(),
    seed: z
      .number()
      .int()
      .min(-1)
      .max(2 ** 32 - 1)
      .optional(),
    width: multipleOf8('width').optional(),
    height: multipleOf8('height').optional(),
    batchSize: z.number().int().min(1).max(16).optional(),
    batchCount: z.number().int().min(1).max(100).optional(),
    clipSkip: z.number().int().min(1).max(12).optional(),
    vae: z.string().min(1).max(4096).optional(),
    loras: z
      .array(z.object({ name: z.string().min(1).max(500), weight: z.number().min(-10).max(10) }).strict())
      .max(32)
      .optional(),
    image: bytes.optional(),
    mask: bytes.optional(),
    strength: z.number().min(0).max(1).optional(),
    exactSteps: z.boolean().optional(),
    draftDecode: z.boolean().optional(),
    lowMemory: z.boolean().optional(),
    previewDecoder: z.enum(['taesd', 'approx']).optional(),
    resizeMode: z.enum(['just-resize', 'crop-and-resize', 'resize-and-fill']).optional(),
    maskBlur: z.number().int().min(0).max(256).optional(),
    maskedContent: z.enum(['fill', 'original', 'latent-noise', 'latent-nothing']).optional(),
    inpaintArea: z.enum(['whole-picture', 'only-masked']).optional(),
    onlyMaskedPadding: z.number().int().min(0).max(1024).optional(),
    invertMask: z.boolean().optional(),
    outpaint: z
      .object({
        left: z.number().int().min(0).max(2048).optional(),
        right: z.number().int().min(0).max(2048).optional(),
        top: z.number().int().min(0).max(2048).optional(),
        bottom: z.number().int().min(0).max(2048).optional(),
        overlap: z.number().int().min(0).max(512).optional(),
        repeat: z.number().int().min(1).max(16).optional(),
        zoomOut: z.number().min(1).max(16).optional(),
      })
      .strict()
      .optional(),
    hires: z
      .object({
        scale: z.number().min(1).max(8).optional(),
        width: multipleOf8('hires width').optional(),
        height: multipleOf8('hires height').optional(),
        upscaler: z.string().min(1).max(4096).optional(),
        strength: z.number().gt(0).max(1).optional(),
        steps: z.number().int().min(0).max(500).optional(),
      })
      .strict()
      .optional(),
    variationSeed: z
      .number()
      .int()
      .min(-1)
      .max(2 ** 32 - 1)
      .optional(),
    variationStrength: z.number().min(0).max(1).optional(),
    sameSeed: z.boolean().optional(),
    sdUpscale: z
      .object({
        scale: z.number().min(1).max(8).optional(),
        upscaler: z.string().min(1).max(4096).optional(),
        tileOverlap: z.number().int().min(0).max(512).optional(),
      })
      .strict()
      .optional(),
    rng: z.enum(['cpu', 'gpu']).optional(),
    sdxl: z
      .object({
        originalWidth: z.number().int().min(0).max(16384).optional(),
        originalHeight: z.number().int().min(0).max(16384).optional(),
        cropTop: z.number().int().min(0).max(16384).optional(),
        cropLeft: z.number().int().min(0).max(16384).optional(),
        targetWidth: z.number().int().min(0).max(16384).optional(),
        targetHeight: z.number().int().min(0).max(16384).optional(),
      })
      .strict()
      .optional(),
    imagePrompts: z
      .array(
        z
          .object({
            image: bytes.optional(),
            galleryId: outputId.optional(),
            url: z
              .string()
              .max(4096)
              .regex(/^https?:\/\//i, 'an http(s) URL')
              .optional(),
            weight: z.number().min(0).max(2).optional(),
          })
          .strict()
          .refine(
            (p) => [p.image, p.galleryId, p.url].filter((x) => x !== undefined).length === 1,
            'give exactly one of image, galleryId or url',
          ),
      )
      .max(8)
      .optional(),
    ipAdapter: z.string().min(1).max(4096).optional(),
    imageEncoder: z.string().min(1).max(4096).optional(),
  })
  .strict()

export const requestSchemas = {
  ...modelsRequestSchemas,
  'prompt:midjourney': z
    .object({
      text: z.string().max(20000),
      negativePrompt: z.string().max(20000).optional(),
      /** The checkpoint (library id/name): its family sets the base size of --ar. */
      model: z.string().min(1).max(4096).optional(),
    })
    .strict(),
  'generate:active': empty,
  'app:info': empty,
  'engine:test-provider': z.object({ provider: z.enum(['cpu', 'cuda', 'dml', 'coreml', 'webgpu']) }).strict(),
  'settings:get': empty,
  'settings:update': z.object({ patch: settingsPatchSchema }).strict(),
  'secrets:status': empty,
  'secrets:set': z.object({ name: secretName, value: z.string().max(4096) }).strict(),
  'secrets:clear': z.object({ name: secretName }).strict(),
  'jobs:list': empty,
  'jobs:cancel': z.object({ jobId: z.string().min(1).max(200) }).strict(),
  'generate:start': generateRequestSchema,
  'generate:cancel': z.object({ jobId: z.string().min(1).max(200) }).strict(),
  'generate:estimate': generateRequestSchema,
  'gallery:list': empty,
  'gallery:image': z.object({ id: outputId }).strict(),
  'gallery:delete': z.object({ id: outputId }).strict(),
  'gallery:parameters': z.object({ png: bytes }).strict(),
  'upscale:start': z
    .object({
      galleryId: outputId.optional(),
      png: bytes.optional(),
      upscaler: z.string().min(1).max(4096),
      scale: z.number().gt(0).max(16),
      tile: z.number().int().min(0).max(4096).optional(),
      tilePad: z.number().int().min(0).max(256).optional(),
    })
    .strict()
    .refine((r) => r.galleryId !== undefined || r.png !== undefined, 'give galleryId or png'),
} as const

export interface Responses extends ModelsResponses {
  'app:info': AppInfo
  'engine:test-provider': ProviderTestResult
  'settings:get': Settings
  'settings:update': Settings
  'secrets:status': SecretStatus[]
  'secrets:set': SecretStatus
  'secrets:clear': SecretStatus
  'jobs:list': JobInfo[]
  'jobs:cancel': JobRef
  'generate:start': JobRef
  'generate:cancel': JobRef
  'generate:estimate': GenerationEstimateInfo
  /** Generation jobs still queued or running, with their requests and latest progress. */
  'generate:active': ActiveGeneration[]
  /** Parses a prompt line with the one Midjourney parser (highlighting, size, warnings). */
  'prompt:midjourney': MidjourneyParse
  'gallery:list': OutputImage[]
  'gallery:image': Uint8Array
  'gallery:delete': { id: string }
  'gallery:parameters': ImageParameters
  /** Upscale a gallery image or PNG; the result is saved to the gallery (progress: jobs:progress). */
  'upscale:start': JobRef
}

export interface Events extends ModelsEvents {
  'jobs:progress': JobInfo
  'settings:changed': Settings
  'generate:progress': GenerationProgress
  'generate:finished': GenerationResult
}

export type Channel = keyof typeof requestSchemas
export type EventName = keyof Events
export type Req<C extends Channel> = z.input<(typeof requestSchemas)[C]>
export type ParsedReq<C extends Channel> = z.output<(typeof requestSchemas)[C]>
export type Res<C extends Channel> = Responses[C]

export const channels = Object.keys(requestSchemas) as Channel[]
export const eventNames = [
  ...modelsEventNames,
  'jobs:progress',
  'settings:changed',
  'generate:progress',
  'generate:finished',
] as const satisfies readonly EventName[]

// Compile-time proof that schemas and response types list the same channels.
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never
export const contractIsComplete: Exact<keyof Responses, Channel> = true
type _EventsListed = Exact<(typeof eventNames)[number], EventName>
export const eventsAreListed: _EventsListed = true
