import path from 'node:path'
import { appPaths } from '../platform/paths'
import { AppError } from './errors'
import { EventBus } from './events'
import { GalleryStore } from './generation/gallery'
import { readImageParameters } from './generation/parameters'
import { createResolvers, type GenerationResolvers } from './generation/resolve'
import { delegateImagePromptResolvers } from './image-prompts/resolvers'
import { GenerationService } from './generation/service'
import { JobManager } from './jobs'
import { UpscaleJobs } from '../engine/upscale/jobs'
import { ModelsService } from './models/service'
import { tokenizerDir } from './models/tokenizer'
import { keyFileSecretBox, SecretsService, type SecretBox } from './secrets'
import { SettingsService } from './settings'
import { fileStore, type KeyValueStore } from './store'

export const APP_VERSION = '0.1.0'

export interface ServicesOptions {
  home: string
  mode: 'desktop' | 'server'
  store?: KeyValueStore
  secretBox?: SecretBox
  env?: NodeJS.ProcessEnv
  /**
   * The CLI's differences, each a folder or a rule, never another code path: requests may name any existing
   * file (the user types paths; over IPC and the WebSocket a path must lie inside a library folder), extra
   * embedding folders, a tokenizer, and where images and conversions go.
   */
  allowPaths?: boolean
  embeddingDirs?: string[]
  tokenizer?: string
  /** Default `<home>/outputs` (the gallery). */
  outputsDir?: string
  /** Default `<home>/cache/onnx`. */
  conversionCache?: string
  /** false: the library without the download queue (nothing resumes or downloads). Default true. */
  downloads?: boolean
}

/** The composition of every service; each door (IPC, serve, CLI) builds one and calls it through the handlers. */
export interface Services {
  version: string
  mode: 'desktop' | 'server'
  home: string
  bus: EventBus
  settings: SettingsService
  secrets: SecretsService
  jobs: JobManager
  gallery: GalleryStore
  generation: GenerationService
  models: ModelsService
  upscale: UpscaleJobs
  /** Model, LoRA, embedding, upscaler and image-prompt names to files, through the library the settings name. */
  resolvers: GenerationResolvers
  /** `<home>/cache/onnx` unless the options name another. */
  conversionCache: string
  dispose(): Promise<void>
}

export function createServices(opts: ServicesOptions): Services {
  const paths = appPaths(opts.home)
  const env = opts.env ?? process.env
  const store = opts.store ?? fileStore(opts.home)
  const bus = new EventBus()
  const jobs = new JobManager(bus)
  const gallery = new GalleryStore(opts.outputsDir ?? paths.outputs, readImageParameters)
  const conversionCache = opts.conversionCache ?? paths.conversionCache
  const settings = new SettingsService(store, opts.home, bus, env)
  const secrets = new SecretsService(store, opts.secretBox ?? keyFileSecretBox(paths.keyFile), env)
  const models = new ModelsService({
    home: opts.home,
    settings,
    secrets,
    bus,
    jobs,
    ...(opts.downloads === false ? { queue: false } : {}),
  })
  const tokenizers = tokenizerDir(paths.tokenizers)
  // Names resolve through the library the Models section manages (its folder follows the settings; the
  // folders added to it, e.g. by `atelier library scan <folder>`, count as library folders too).
  let latest: GenerationResolvers | undefined
  const current = async (): Promise<GenerationResolvers> => {
    const s = settings.get()
    const library = await models.library()
    const roots = [
      ...new Set([s.libraryRoot, ...library.getRoots().map((r) => r.path), ...s.extraLibraryRoots]),
    ]
    latest = createResolvers({
      library,
      roots,
      // Requests over IPC / the WebSocket name library models; a path must lie inside a library folder.
      allowPaths: opts.allowPaths ?? false,
      ...(opts.embeddingDirs ? { embeddingDirs: opts.embeddingDirs } : {}),
    })
    return latest
  }
  const resolvers: GenerationResolvers = {
    ...delegateImagePromptResolvers(current),
    // Single-file checkpoints carry no tokenizer: the worker uses the data folder's copy when there is one,
    // else the CLIP vocabulary bundled in resources/ (never the network).
    model: async (ref) => (await current()).model(ref),
    lora: async (name, from) => (await current()).lora(name, from),
    vae: async (ref) => {
      const r = await current()
      if (!r.vae) throw new AppError('unsupported', 'This host cannot resolve VAE names.')
      return r.vae(ref)
    },
    embeddings: async () => (await current()).embeddings?.() ?? [],
    upscaler: async (name) => {
      const r = await current()
      return r.upscaler ? r.upscaler(name) : name
    },
    // Synchronous: the library of the model this request resolved a moment before.
    taesd: () => latest?.taesd?.() ?? [],
  }
  const generation = new GenerationService({
    executionProvider: () => settings.get().executionProvider,
    computePrecision: () => settings.get().computePrecision,
    bus,
    jobs,
    gallery,
    resolvers,
    cacheRoot: conversionCache,
    calibrationFile: path.join(paths.home, 'calibration.json'),
    tokenizerCacheDir: tokenizers,
    appVersion: APP_VERSION,
    ...(opts.tokenizer ? { tokenizer: opts.tokenizer } : {}),
  })
  const upscale = new UpscaleJobs({
    session: () => ({ preference: settings.get().executionProvider }),
    jobs,
    gallery,
    resolve: (name) => resolvers.upscaler?.(name) ?? name,
  })
  return {
    version: APP_VERSION,
    mode: opts.mode,
    home: opts.home,
    bus,
    settings,
    secrets,
    jobs,
    models,
    gallery,
    generation,
    upscale,
    resolvers,
    conversionCache,
    async dispose() {
      jobs.dispose()
      await generation.dispose()
      await upscale.dispose()
      await models.dispose()
    },
  }
}
