import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { FromWorker, ToWorker } from './protocol'

/**
 * How to start the worker thread in each way Atelier runs:
 * - from source (vitest, tsx): this module is `worker-client.ts`; the worker is `worker.ts` beside it,
 *   started through tsx's ESM loader (registered inside the worker, which does not inherit it);
 * - bundled (the CLI's out/cli/atelier.mjs, Electron's out/main/index.js): the bundler emits
 *   `generation-worker.mjs` / `.js` beside the bundle (scripts/build-cli.mjs, electron.vite.config.ts).
 */
export function workerSpec(moduleUrl = import.meta.url): { code: string; eval: true } | { file: string } {
  const here = fileURLToPath(moduleUrl)
  if (here.endsWith('.ts')) {
    const target = pathToFileURL(path.join(path.dirname(here), 'worker.ts')).href
    const cjs = createRequire(moduleUrl).resolve('tsx/esm/api')
    const api = pathToFileURL(path.join(path.dirname(cjs), 'index.mjs')).href
    return {
      code: `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(target)}) })`,
      eval: true,
    }
  }
  // beside the bundle, or one level up when the bundler put this code in a chunk folder
  for (const dir of [path.dirname(here), path.dirname(path.dirname(here))])
    for (const name of ['generation-worker.mjs', 'generation-worker.js']) {
      const file = path.join(dir, name)
      if (fs.existsSync(file)) return { file }
    }
  throw new Error(
    `the generation worker is missing beside ${here} (expected generation-worker.mjs); rebuild Atelier`,
  )
}

export interface WorkerHandlers {
  message(m: FromWorker): void
  /** The thread died (crash, out of memory, terminated); `reason` is readable. */
  exit(reason: string): void
}

/** One worker thread; the service restarts it when it dies. */
export class GenerationWorker {
  private readonly worker: Worker
  private exited = false

  constructor(handlers: WorkerHandlers, spec = workerSpec()) {
    this.worker =
      'code' in spec
        ? new Worker(spec.code, { eval: true, stderr: false, stdout: false })
        : new Worker(spec.file, { stderr: false, stdout: false })
    this.worker.on('message', (m: FromWorker) => handlers.message(m))
    this.worker.on('error', (err) => {
      if (this.exited) return
      this.exited = true
      const msg = err instanceof Error ? err.message : String(err)
      const oom = /ERR_WORKER_OUT_OF_MEMORY|out of memory|heap/i.test(
        `${(err as { code?: string }).code} ${msg}`,
      )
      handlers.exit(
        oom ? `the generation worker ran out of memory (${msg})` : `the generation worker crashed: ${msg}`,
      )
    })
    this.worker.on('exit', (code) => {
      if (this.exited) return
      this.exited = true
      handlers.exit(`the generation worker stopped (exit code ${code})`)
    })
  }

  get alive(): boolean {
    return !this.exited
  }

  send(m: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(m, transfer)
  }

  async terminate(): Promise<void> {
    this.exited = true
    await this.worker.terminate()
  }
}
