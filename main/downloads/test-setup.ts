/** Shared setup for the download tests: fixture models + Civitai / HF fixture servers in a temp dir. */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { CivitaiFixtureServer } from '../../e2e/fixtures/remote/civitai-server'
import { makeFixtureModels, type FixtureModels } from '../../e2e/fixtures/remote/fixture-models'
import { HfFixtureServer } from '../../e2e/fixtures/remote/hf-server'
import { DownloadManager, type DownloadManagerOptions } from './manager'

export interface DownloadTestEnv {
  root: string
  models: FixtureModels
  civitai: CivitaiFixtureServer
  hf: HfFixtureServer
  sleeps: number[]
  managers: DownloadManager[]
  /** A fresh temp folder under root. */
  tempDir(prefix: string): Promise<string>
  open(stateDir: string, extra?: Partial<DownloadManagerOptions>): Promise<DownloadManager>
  reset(): void
  close(): Promise<void>
}

export async function setupDownloadEnv(): Promise<DownloadTestEnv> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'atelier-dl-'))
  const models = await makeFixtureModels(path.join(root, 'models'))
  const civitai = new CivitaiFixtureServer({ models })
  const hf = new HfFixtureServer({ models })
  await civitai.start()
  await hf.start()
  const sleeps: number[] = []
  const managers: DownloadManager[] = []
  let n = 0
  return {
    root,
    models,
    civitai,
    hf,
    sleeps,
    managers,
    async tempDir(prefix) {
      const dir = path.join(root, `${prefix}-${n++}`)
      await fs.mkdir(dir, { recursive: true })
      return dir
    },
    async open(stateDir, extra = {}) {
      const m = await DownloadManager.open({
        stateDir,
        credentials: (source) =>
          source === 'civitai' ? 'civitai-test-key' : source === 'huggingface' ? 'hf_atelier_ok' : undefined,
        progressIntervalMs: 10,
        ...extra,
        retry: { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5, ...extra.retry },
      })
      managers.push(m)
      return m
    },
    reset() {
      civitai.resetFaults()
      hf.resetFaults()
      civitai.log.length = 0
      hf.log.length = 0
      sleeps.length = 0
    },
    async close() {
      await Promise.all(managers.map((m) => m.dispose()))
      await civitai.close()
      await hf.close()
      await fs.rm(root, { recursive: true, force: true })
    },
  }
}
