/**
 * Child process of provider.test.ts: the generation service with its worker thread, run once per Settings
 * execution provider given on the command line (the test starts it with SwiftShader's Vulkan environment),
 * printing per provider what the service reports and what the PNG's infotext says.
 * Usage: provider.child.ts <tmp dir> <checkpoint> <bpe> <provider>[:fp16|fp32]...
 */
import path from 'node:path'
import type { GenerateRequest, GenerationResult } from '../../../preload/contract-types'
import type { ProviderPreference } from '../../engine/runtime/providers'
import type { ComputePrecision } from '../../engine/runtime/session'
import { EventBus } from '../events'
import { JobManager } from '../jobs'
import { GalleryStore } from './gallery'
import { readImageParameters } from './parameters'
import { createResolvers } from './resolve'
import { GenerationService } from './service'

async function main(): Promise<void> {
  const [tmp, model, bpe, ...providers] = process.argv.slice(2) as [string, string, string, ...string[]]
  const bus = new EventBus()
  const jobs = new JobManager(bus)
  const gallery = new GalleryStore(path.join(tmp, 'outputs'), readImageParameters)
  let preference: ProviderPreference = 'auto'
  let precision: ComputePrecision = 'fp16'
  const service = new GenerationService({
    bus,
    jobs,
    gallery,
    resolvers: createResolvers({ roots: [path.join(tmp, 'models')] }),
    cacheRoot: path.join(tmp, 'cache'),
    appVersion: 'test',
    tokenizer: bpe,
    executionProvider: () => preference,
    computePrecision: () => precision,
  })
  const out: unknown[] = []
  try {
    for (const p of providers) {
      const [name, compute] = p.split(':')
      preference = name as ProviderPreference
      precision = compute === 'fp32' ? 'fp32' : 'fp16'
      const statuses: string[] = []
      let jobId = ''
      const done = new Promise<GenerationResult>((resolve) =>
        bus.subscribe((e) => {
          if (e.name === 'jobs:progress' && e.payload.id === jobId && e.payload.message)
            statuses.push(e.payload.message)
          if (e.name === 'generate:finished' && e.payload.jobId === jobId) resolve(e.payload)
        }),
      )
      jobId = (
        await service.start({
          mode: 'txt2img',
          model,
          prompt: 'a photo of a cat',
          steps: 1,
          seed: 3,
          width: 64,
          height: 64,
        } as GenerateRequest)
      ).jobId
      const result = await done
      const image = result.images[0]
      const params = image ? readImageParameters(await gallery.image(image.id)) : undefined
      out.push({
        provider: p,
        state: result.state,
        error: result.error,
        engine: service.engine,
        params,
        statuses,
      })
    }
  } finally {
    jobs.dispose()
    await service.dispose()
  }
  process.stdout.write(`${JSON.stringify(out)}\n`)
}

void main()
