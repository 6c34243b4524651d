/**
 * What an install download carries in its (persisted) `meta`, so that a job that finishes after a restart can
 * still be registered in the library, and the install states kept beside the download queue
 * (`<home>/downloads/installs.json`).
 */
import fs from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { writeFileAtomic } from '../../platform/atomic-write'
import type { JsonValue } from '../../remote/types'
import type { InstallStatus } from './dto'

export const installMetaSchema = z.object({
  install: z.enum(['civitai', 'hf-file', 'hf-folder', 'tokenizer']),
  label: z.string(),
  type: z
    .enum(['checkpoint', 'lora', 'vae', 'embedding', 'upscaler', 'ip-adapter', 'image-encoder', 'taesd'])
    .optional(),
  /** Civitai: the model-version JSON written as `.civitai.info`. */
  civitai: z.record(z.string(), z.unknown()).optional(),
  previewUrl: z.string().optional(),
  hf: z.object({ repo: z.string(), revision: z.string(), path: z.string() }).optional(),
  expectedSha256: z.string().optional(),
  /** hf-folder: files of one folder install share a group; the folder is assembled in `folderDir`. */
  group: z.string().optional(),
  groupSize: z.number().optional(),
  folderDir: z.string().optional(),
})

export type InstallMeta = z.infer<typeof installMetaSchema>

export function readMeta(meta: { [key: string]: JsonValue } | undefined): InstallMeta | null {
  const r = installMetaSchema.safeParse(meta ?? null)
  return r.success ? r.data : null
}

export function toJsonValue(v: unknown): JsonValue {
  return JSON.parse(JSON.stringify(v ?? null)) as JsonValue
}

const statusSchema = z.record(
  z.string(),
  z.object({
    state: z.enum(['none', 'pending', 'installing', 'installed', 'failed']),
    libraryId: z.string().nullable(),
    message: z.string().nullable(),
  }),
)

/** Install states by download id; written atomically, serialised. */
export class InstallStatusStore {
  private readonly file: string
  private states: Record<string, InstallStatus> = {}
  private writing: Promise<void> = Promise.resolve()

  constructor(dir: string) {
    this.file = path.join(dir, 'installs.json')
  }

  async load(): Promise<void> {
    try {
      const parsed = statusSchema.safeParse(JSON.parse(await fs.promises.readFile(this.file, 'utf8')))
      this.states = parsed.success ? parsed.data : {}
    } catch {
      this.states = {}
    }
    // An install that was running when the app stopped runs again.
    for (const s of Object.values(this.states)) if (s.state === 'installing') s.state = 'pending'
  }

  get(id: string): InstallStatus | undefined {
    return this.states[id]
  }

  set(id: string, status: InstallStatus): void {
    this.states[id] = status
    this.save()
  }

  /** Keep only these ids (the queue forgot the others). */
  retain(ids: Set<string>): void {
    let changed = false
    for (const id of Object.keys(this.states)) {
      if (!ids.has(id)) {
        delete this.states[id]
        changed = true
      }
    }
    if (changed) this.save()
  }

  flush(): Promise<void> {
    return this.writing
  }

  private save(): void {
    const snapshot = JSON.stringify(this.states, null, 2)
    this.writing = this.writing
      .catch(() => undefined)
      .then(async () => {
        await writeFileAtomic(this.file, snapshot, { mkdir: true, fsync: false })
      })
      .catch(() => undefined)
  }
}
