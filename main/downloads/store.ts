/**
 * The download queue's state file (`<stateDir>/downloads.json`), written atomically: a temp file in the same
 * folder, fsync, rename. Writes are serialised and coalesced (the newest snapshot wins).
 */
import fs from 'node:fs'
import path from 'node:path'
import type { DownloadJob } from './types'

interface StateFile {
  version: 1
  jobs: DownloadJob[]
}

export class JobStore {
  readonly file: string
  private writing: Promise<void> = Promise.resolve()
  private pending: DownloadJob[] | null = null

  constructor(readonly dir: string) {
    this.file = path.join(dir, 'downloads.json')
  }

  async load(): Promise<DownloadJob[]> {
    await fs.promises.mkdir(this.dir, { recursive: true })
    let text: string
    try {
      text = await fs.promises.readFile(this.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      // A torn or hand-edited file must not brick the app: keep a copy aside and start empty.
      await fs.promises.rename(this.file, `${this.file}.broken-${Date.now()}`).catch(() => undefined)
      return []
    }
    const jobs = (parsed as Partial<StateFile> | null)?.jobs
    return Array.isArray(jobs) ? jobs.filter(isJob) : []
  }

  /** Queue a snapshot for writing; resolves when it (or a newer one) is on disk. */
  save(jobs: DownloadJob[]): Promise<void> {
    this.pending = jobs.map((j) => structuredClone(j))
    this.writing = this.writing.catch(() => undefined).then(() => this.flush())
    return this.writing
  }

  private async flush(): Promise<void> {
    const jobs = this.pending
    if (!jobs) return
    this.pending = null
    const data: StateFile = { version: 1, jobs }
    const tmp = `${this.file}.${process.pid}.tmp`
    const fh = await fs.promises.open(tmp, 'w')
    try {
      await fh.writeFile(JSON.stringify(data, null, 2))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await fs.promises.rename(tmp, this.file)
  }
}

function isJob(v: unknown): v is DownloadJob {
  if (!v || typeof v !== 'object') return false
  const j = v as Partial<DownloadJob>
  return (
    typeof j.id === 'string' &&
    typeof j.state === 'string' &&
    typeof j.partialPath === 'string' &&
    !!j.request
  )
}
