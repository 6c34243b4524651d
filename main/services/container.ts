import path from 'node:path'
import { appPaths } from '../platform/paths'
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
  dispose(): Promise<void>
}

export function createServices(opts: ServicesOptions): Services {
  const paths = appPaths(opts.home)
  const env = opts.env ?? process.env
  const store = opts.store ?? fileStore(opts.home)
  const bus = new EventBus()
  const jobs = new JobManager(bus)
  const gallery = new GalleryStore(paths.outputs, readImageParameters)
  const settings = new SettingsService(store, opts.home, bus, env)
  const secrets = new SecretsService(store, opts.secretBox ?? keyFileSecretBox(paths.keyFile), env)
  const models = new ModelsService({ home: opts.home, settings, secrets, bus, jobs })
  const tokenizers = tokenizerDir(paths.tokenizers)
  // Names resolve through the library the Models section manages (its folder follows the settings).
  const current = async (): Promise<GenerationResolvers> => {
    const s = settings.get()
    return createResolvers({
      library: await models.library(),
      roots: [s.libraryRoot, ...s.extraLibraryRoots],
      // Requests over IPC / the WebSocket name library models; a path must lie inside a library folder.
      allowPaths: false,
    })
  }
  const resolvers: GenerationResolvers = {
    ...delegateImagePromptResolvers(current),
    // Single-file checkpoints carry no tokenizer: the worker uses the data folder's copy when there is one,
    // else the CLIP vocabulary bundled in resources/ (never the network).
    model: async (ref) => (await current()).model(ref),
    lora: async (name, from) => (await current()).lora(name, from),
    embeddings: async () => (await current()).embeddings?.() ?? [],
    upscaler: async (name) => {
      const r = await current()
      return r.upscaler ? r.upscaler(name) : name
    },
  }
  const generation = new GenerationService({
    executionProvider: () => settings.get().executionProvider,
    computePrecision: () => settings.get().computePrecision,
    bus,
    jobs,
    gallery,
    resolvers,
    cacheRoot: paths.conversionCache,
    calibrationFile: path.join(paths.home, 'calibration.json'),
    tokenizerCacheDir: tokenizers,
    appVersion: APP_VERSION,
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
    async dispose() {
      jobs.dispose()
      await generation.dispose()
      await upscale.dispose()
      await models.dispose()
    },
  }
}
