import type { Channel, ParsedReq, Res } from '../../preload/contract'
import type { Services, ServicesOptions } from './container'
import { createServices } from './container'
import { executionProviderInfo } from './engine-info'
import { testProvider } from '../engine/runtime/provider-check'
import { modelsHandlers } from './models/handlers'

export interface CallContext {
  /** Which door the call came through. */
  transport: 'ipc' | 'ws' | 'test'
}

/** One handler per channel; the mapped type makes a missing handler a compile error. */
export type Handlers = {
  [C in Channel]: (req: ParsedReq<C>, ctx: CallContext) => Promise<Res<C>> | Res<C>
}

export function createHandlers(s: Services): Handlers {
  return {
    ...modelsHandlers(s.models),
    'app:info': () => ({
      version: s.version,
      mode: s.mode,
      platform: process.platform,
      executionProvider: executionProviderInfo(s.settings.get().executionProvider, s.generation.engine),
      home: s.home,
    }),
    'engine:test-provider': ({ provider }) => testProvider(provider),
    'settings:get': () => s.settings.get(),
    'settings:update': ({ patch }) => s.settings.update(patch),
    'secrets:status': () => s.secrets.all(),
    'secrets:set': ({ name, value }) => s.secrets.set(name, value),
    'secrets:clear': ({ name }) => s.secrets.clear(name),
    'jobs:list': () => s.jobs.list(),
    'jobs:cancel': ({ jobId }) => {
      s.jobs.cancel(jobId)
      return { jobId }
    },
    'generate:start': (req) => s.generation.start(req),
    'generate:cancel': ({ jobId }) => s.generation.cancel(jobId),
    'generate:estimate': (req) => s.generation.estimate(req),
    'generate:active': () => s.generation.activeJobs(),
    'prompt:midjourney': ({ text, negativePrompt, model }) =>
      s.generation.describePrompt(text, negativePrompt, model),
    'gallery:list': () => s.gallery.list(),
    'gallery:image': ({ id }) => s.gallery.image(id),
    'gallery:delete': async ({ id }) => {
      await s.gallery.delete(id)
      return { id }
    },
    'gallery:parameters': ({ png }) => s.gallery.parameters(png),
    'upscale:start': (req) => s.upscale.start(req),
  }
}

/** The services and their request handlers: what every door (IPC, serve, CLI) builds once. */
export function createApi(opts: ServicesOptions): { services: Services; handlers: Handlers } {
  const services = createServices(opts)
  return { services, handlers: createHandlers(services) }
}
