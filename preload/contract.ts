/**
 * THE contract between renderer and main: every request channel with its request schema (validated at
 * runtime in main) and response type, and every pushed event. Channels are `domain:verb`.
 *
 * To add a channel: add its zod schema to `requestSchemas`, its response type to `Responses`, then a
 * handler in main/services/api.ts (the mapped `Handlers` type makes a missing one a compile error).
 */
import { z } from 'zod'
import type { AppInfo, JobInfo, JobRef, SecretStatus, Settings } from './contract-types'

export * from './contract-types'

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
  })
  .partial()
  .strict()

const empty = z.object({}).strict()

export const requestSchemas = {
  'app:info': empty,
  'settings:get': empty,
  'settings:update': z.object({ patch: settingsPatchSchema }).strict(),
  'secrets:status': empty,
  'secrets:set': z.object({ name: secretName, value: z.string().max(4096) }).strict(),
  'secrets:clear': z.object({ name: secretName }).strict(),
  'jobs:list': empty,
  'jobs:cancel': z.object({ jobId: z.string().min(1).max(200) }).strict(),
} as const

export interface Responses {
  'app:info': AppInfo
  'settings:get': Settings
  'settings:update': Settings
  'secrets:status': SecretStatus[]
  'secrets:set': SecretStatus
  'secrets:clear': SecretStatus
  'jobs:list': JobInfo[]
  'jobs:cancel': JobRef
}

export interface Events {
  'jobs:progress': JobInfo
  'settings:changed': Settings
}

export type Channel = keyof typeof requestSchemas
export type EventName = keyof Events
export type Req<C extends Channel> = z.input<(typeof requestSchemas)[C]>
export type ParsedReq<C extends Channel> = z.output<(typeof requestSchemas)[C]>
export type Res<C extends Channel> = Responses[C]

export const channels = Object.keys(requestSchemas) as Channel[]
export const eventNames = ['jobs:progress', 'settings:changed'] as const satisfies readonly EventName[]

// Compile-time proof that schemas and response types list the same channels.
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never
export const contractIsComplete: Exact<keyof Responses, Channel> = true
type _EventsListed = Exact<(typeof eventNames)[number], EventName>
export const eventsAreListed: _EventsListed = true
