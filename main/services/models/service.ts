/**
 * ModelsService: the models domain behind the contract and the CLI. It composes the Civitai / Hugging Face
 * clients (remote/), the persistent download queue (downloads/) and the library (library/):
 *
 *   const models = new ModelsService({ home, settings, secrets, bus, jobs })
 *   await models.search({ source: 'civitai', query: 'anime', types: ['lora'] })    // cards with badges
 *   await models.details({ source: 'civitai', id: '1002' })                         // versions, compat, images
 *   await models.install({ source: 'civitai', versionId: '2003' })                  // → download ids
 *   await models.ensureClipTokenizer()                                              // → tokenizer folder
 *
 * Settings are read per call (base URLs, keys, NSFW preference); a new library folder or download concurrency
 * reopens the library and the queue (transfers pause and resume by themselves). The queue is opened at start
 * when it has jobs, so downloads of a previous run resume without waiting for the UI.
 */
import fs from 'node:fs'
import path from 'node:path'
import type {
  DoctorResult,
  DownloadInfo,
  HashLookup,
  InstallResult,
  JobRef,
  LibraryModel,
  LibraryModelDetails,
  LibraryRootInfo,
  ModelDetails,
  ModelFilterOptions,
  ModelSearchPage,
  Req,
  SecretName,
  SecretTestResult,
} from '../../../preload/contract'
import { DownloadManager } from '../../downloads/manager'
import type { DownloadProgress } from '../../downloads/types'
import { FINAL_STATES } from '../../downloads/types'
import { lookupFromCivitai } from '../../library/civitai-info'
import { Library, type MatchSummary } from '../../library/library'
import { publicRecord, type LibraryQuery, type ModelRecord } from '../../library/types'
import { isReallyInside } from '../../platform/contain'
import { credentialOrigins } from '../../remote/credentials'
import { appPaths } from '../../platform/paths'
import { CivitaiClient } from '../../remote/civitai/client'
import { HuggingFaceClient } from '../../remote/huggingface/client'
import type { RetryPolicy } from '../../remote/retry'
import { AppError } from '../errors'
import type { Dispose, EventBus } from '../events'
import type { JobManager } from '../jobs'
import type { SecretsService } from '../secrets'
import type { SettingsService } from '../settings'
import { InstalledIndex } from './badges'
import {
  civitaiDetails,
  filterOptions,
  hfDetails,
  searchCivitai,
  searchHf,
  type BrowseContext,
} from './browse'
import { libraryCompat } from './compat'
import { toDownloadInfo, type InstallStatus } from './dto'
import { mapped } from './errors'
import { fetchImage, ImageProxy, type ImageFetcher } from './images'
import { InstallStatusStore, readMeta } from './install-meta'
import { Installer } from './installer'
import { testSecret } from './secret-test'
import { fetchClipTokenizer, hasTokenizer, tokenizerDir } from './tokenizer'

export interface ModelsServiceOptions {
  home: string
  settings: SettingsService
  secrets: SecretsService
  bus: EventBus
  jobs: JobManager
  /** Retry policy of the API clients and the queue (tests shorten the waits). */
  retry?: Partial<RetryPolicy>
  fetchImage?: ImageFetcher
  /** Open the queue at once even when it is empty (the CLI and tests do). */
  eager?: boolean
  /**
   * false: open the library only, never the download queue (CLI commands that do not download: a one-shot
   * `txt2img` must not resume, or fight over, the app's downloads). Default true.
   */
  queue?: boolean
}

interface Core {
  library: Library
  /** null when the service was made with `queue: false`. */
  queue: { downloads: DownloadManager; installer: Installer } | null
  close(): Promise<void>
}

export class ModelsService {
  private core: Promise<Core> | null = null
  private readonly statuses: InstallStatusStore
  private readonly progress = new Map<string, DownloadProgress>()
  readonly images: ImageProxy
  private readonly fetcher: ImageFetcher
  private readonly listeners = new Set<(d: DownloadInfo) => void>()
  private readonly unsubscribe: Dispose
  private tokenizer: Promise<string> | null = null
  private disposed = false
  private readonly statusesLoaded: Promise<void>
  /** The settings the current core was opened with. */
  private opened: { libraryRoot: string; concurrency: number } | null = null

  constructor(private readonly o: ModelsServiceOptions) {
    this.fetcher = o.fetchImage ?? fetchImage
    this.images = new ImageProxy(this.fetcher)
    this.statuses = new InstallStatusStore(appPaths(o.home).downloads)
    this.statusesLoaded = this.statuses.load()
    this.unsubscribe = o.bus.subscribe((e) => {
      if (e.name === 'settings:changed') this.settingsChanged()
    })
    const queueFile = path.join(appPaths(o.home).downloads, 'downloads.json')
    if (o.queue !== false && (o.eager || fs.existsSync(queueFile)))
      void this.open().catch((err: unknown) => this.log(`cannot open the download queue: ${String(err)}`))
  }

  // ------------------------------------------------------------------------------------------ plumbing

  private log(message: string): void {
    console.warn(`[models] ${message}`)
  }

  private civitai(): CivitaiClient {
    const s = this.o.settings.get()
    return new CivitaiClient({
      baseUrl: s.civitaiBaseUrl,
      token: this.o.secrets.get('civitaiApiKey'),
      retry: this.o.retry,
    })
  }

  private hf(): HuggingFaceClient {
    const s = this.o.settings.get()
    return new HuggingFaceClient({
      baseUrl: s.hfBaseUrl,
      token: this.o.secrets.get('hfToken'),
      retry: this.o.retry,
    })
  }

  /** The library and queue, opened on first use (or at start when downloads are waiting). */
  open(): Promise<Core> {
    if (this.disposed) return Promise.reject(new AppError('unavailable', 'The models service was closed.'))
    if (!this.core) {
      const s = this.o.settings.get()
      this.opened = { libraryRoot: s.libraryRoot, concurrency: s.concurrentDownloads }
      this.core = this.openCore()
    }
    return this.core
  }

  private async openCore(): Promise<Core> {
    await this.statusesLoaded
    const s = this.o.settings.get()
    const paths = appPaths(this.o.home)
    // A relative folder would depend on the working directory: only absolute ones are honoured.
    const libraryDir = path.isAbsolute(s.libraryRoot) ? s.libraryRoot : paths.library
    const library = await Library.open(this.o.home, { libraryDir })
    if (this.o.queue === false) {
      const off = library.on('changed', (e) => this.o.bus.emit('library:changed', e))
      return {
        library,
        queue: null,
        close: async () => {
          off()
          await library.dispose()
        },
      }
    }
    const downloads = await DownloadManager.open({
      stateDir: paths.downloads,
      concurrency: s.concurrentDownloads,
      credentials: (source) =>
        source === 'civitai'
          ? this.o.secrets.get('civitaiApiKey')
          : source === 'huggingface'
            ? this.o.secrets.get('hfToken')
            : undefined,
      // Keys go to the configured API origins only (and Civitai's documented sister domain).
      credentialOrigins: (source) => {
        const now = this.o.settings.get()
        return credentialOrigins(
          source === 'civitai' ? now.civitaiBaseUrl : source === 'huggingface' ? now.hfBaseUrl : null,
        )
      },
      retry: this.o.retry,
    })
    const installer = new Installer({
      library,
      downloads,
      statuses: this.statuses,
      stagingDir: path.join(paths.downloads, 'files'),
      fetchImage: this.fetcher,
      changed: (id) => this.emitDownload(id, downloads),
      log: (m) => this.log(m),
    })
    const offs = [
      downloads.on('progress', (p) => {
        this.progress.set(p.id, p)
        this.emitDownload(p.id, downloads)
      }),
      downloads.on('state', (job) => {
        if (job.state !== 'downloading') this.progress.delete(job.id)
        this.emitDownload(job.id, downloads)
        if (job.state === 'done') void installer.finish(job)
      }),
      library.on('changed', (e) => this.o.bus.emit('library:changed', e)),
    ]
    this.statuses.retain(new Set(downloads.list().map((j) => j.id)))
    // Installs whose download finished while the app was closed (or whose install was interrupted).
    for (const job of downloads.list()) {
      this.emitDownload(job.id, downloads)
      if (job.state === 'done') void installer.finish(job)
    }
    return {
      library,
      queue: { downloads, installer },
      close: async () => {
        for (const off of offs) off()
        await downloads.dispose()
        await library.dispose()
      },
    }
  }

  /** The download queue and installer (an error where this service was made without them). */
  private async queued(): Promise<{ downloads: DownloadManager; installer: Installer }> {
    const { queue } = await this.open()
    if (!queue) throw new AppError('unavailable', 'Downloads are not open here.')
    return queue
  }

  /** A new library folder or download concurrency: close and reopen (synchronously swapped, so no call sees the old one). */
  private settingsChanged(): void {
    if (!this.core || this.disposed || !this.opened) return
    const s = this.o.settings.get()
    if (this.opened.libraryRoot === s.libraryRoot && this.opened.concurrency === s.concurrentDownloads) return
    const prev = this.core
    this.opened = { libraryRoot: s.libraryRoot, concurrency: s.concurrentDownloads }
    this.core = (async () => {
      const old = await prev.catch(() => null)
      await old?.close()
      return this.openCore()
    })()
  }

  async dispose(): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    this.unsubscribe()
    const core = await this.core?.catch(() => null)
    await core?.close()
    await this.statuses.flush()
  }

  private installStatus(id: string, meta: ReturnType<typeof readMeta>): InstallStatus {
    const s = this.statuses.get(id)
    if (s) return s
    return {
      state: meta && meta.install !== 'tokenizer' ? 'pending' : 'none',
      libraryId: null,
      message: null,
    }
  }

  private info(id: string, downloads: DownloadManager): DownloadInfo | undefined {
    const job = downloads.get(id)
    if (!job) return undefined
    return toDownloadInfo(job, this.progress.get(id), this.installStatus(id, readMeta(job.request.meta)))
  }

  private emitDownload(id: string, downloads: DownloadManager): void {
    const info = this.info(id, downloads)
    if (!info) return
    this.o.bus.emit('downloads:progress', info)
    for (const fn of this.listeners) fn(info)
  }

  /** Every download update (the CLI draws its bar from these). */
  onDownload(fn: (d: DownloadInfo) => void): Dispose {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  private async browseContext(): Promise<BrowseContext> {
    const core = await this.open()
    return {
      index: new InstalledIndex(core.library.list()),
      pref: this.o.settings.get().nsfw,
      proxy: this.images,
    }
  }

  // ------------------------------------------------------------------------------------------ browse

  search(req: Req<'models:search'>): Promise<ModelSearchPage> {
    return mapped(async () => {
      const ctx = await this.browseContext()
      return req.source === 'civitai'
        ? searchCivitai(this.civitai(), req, ctx)
        : searchHf(this.hf(), req, ctx)
    })
  }

  options(source: 'civitai' | 'huggingface'): Promise<ModelFilterOptions> {
    return filterOptions(source, this.civitai())
  }

  details(req: Req<'models:details'>): Promise<ModelDetails> {
    return mapped(async () => {
      const ctx = await this.browseContext()
      if (req.source === 'civitai') {
        if (!/^\d{1,12}$/.test(req.id))
          throw new AppError('invalid-input', `"${req.id}" is not a Civitai model id.`)
        return civitaiDetails(this.civitai(), req.id, req.versionId, {
          ...ctx,
          hasKey: Boolean(this.o.secrets.get('civitaiApiKey')),
        })
      }
      const token = this.o.secrets.get('hfToken')
      return hfDetails(this.hf(), req.id, { ...ctx, hasKey: Boolean(token), token })
    })
  }

  /** The model a Civitai version belongs to (for references that name only the version). */
  modelIdOfVersion(versionId: string): Promise<string> {
    return mapped(async () => (await this.civitai().getVersion(versionId)).modelId)
  }

  /** The Civitai version of a hash ("use these settings" resolves resources the image names by hash). */
  byHash(hash: string): Promise<HashLookup | null> {
    return mapped(async () => {
      const v = await this.civitai().getVersionByHash(hash)
      return v ? { versionId: v.id, modelId: v.modelId, versionName: v.name, baseModel: v.baseModel } : null
    })
  }

  async image(url: string): Promise<Uint8Array> {
    try {
      return await this.images.get(url)
    } catch (err) {
      if (err instanceof AppError) throw err
      throw new AppError(
        'unavailable',
        `Could not load the image: ${err instanceof Error ? err.message : String(err)}`,
      )
    }
  }

  // ------------------------------------------------------------------------------------------ install

  install(req: Req<'models:install'>): Promise<InstallResult> {
    return mapped(async () => {
      const { installer } = await this.queued()
      if (req.source === 'civitai') {
        return installer.civitai(
          this.civitai(),
          req.versionId,
          req.fileId,
          Boolean(this.o.secrets.get('civitaiApiKey')),
        )
      }
      return installer.huggingface(
        this.hf(),
        req.repo,
        req.path,
        req.revision,
        Boolean(this.o.secrets.get('hfToken')),
      )
    })
  }

  /** Resolves when every listed download is installed or has failed; the final infos. */
  async whenInstalled(ids: string[]): Promise<DownloadInfo[]> {
    const { downloads } = await this.queued()
    const settled = (d: DownloadInfo | undefined): boolean =>
      !d ||
      d.state === 'failed' ||
      d.state === 'cancelled' ||
      (d.state === 'done' &&
        (d.install.state === 'installed' || d.install.state === 'failed' || d.install.state === 'none'))
    return new Promise((resolve) => {
      const check = (): void => {
        const infos = ids.map((id) => this.info(id, downloads))
        if (infos.every(settled)) {
          off()
          resolve(infos.filter((d): d is DownloadInfo => d !== undefined))
        }
      }
      const off = this.onDownload(check)
      check()
    })
  }

  /** The CLIP tokenizer folder, downloading vocab.json + merges.txt once (the engine calls this). */
  async ensureClipTokenizer(): Promise<string> {
    const dir = tokenizerDir(appPaths(this.o.home).tokenizers)
    if (hasTokenizer(dir)) return dir
    this.tokenizer ??= mapped(async () => {
      const { downloads } = await this.queued()
      return fetchClipTokenizer(appPaths(this.o.home).tokenizers, this.hf(), downloads)
    }).finally(() => {
      this.tokenizer = null
    })
    return this.tokenizer
  }

  // ------------------------------------------------------------------------------------------ downloads

  async downloads(): Promise<DownloadInfo[]> {
    const { downloads } = await this.queued()
    return downloads
      .list()
      .filter((j) => readMeta(j.request.meta)?.install !== 'tokenizer' || !FINAL_STATES.includes(j.state))
      .map((j) => this.info(j.id, downloads))
      .filter((d): d is DownloadInfo => d !== undefined)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
  }

  async downloadAction(action: 'pause' | 'resume' | 'cancel' | 'retry', id: string): Promise<DownloadInfo> {
    const { downloads, installer } = await this.queued()
    const job = downloads.get(id)
    if (!job) throw new AppError('not-found', 'That download is no longer in the list.')
    if (action === 'retry') {
      const status = this.statuses.get(id)
      if (job.state === 'done' && status?.state === 'failed') {
        // The download is fine, the install step failed: run it again.
        this.statuses.set(id, { state: 'pending', libraryId: null, message: null })
        void installer.finish(job)
      } else if (job.state === 'failed' || job.state === 'cancelled') {
        this.statuses.set(id, { state: 'pending', libraryId: null, message: null })
      }
    }
    downloads[action](id)
    this.emitDownload(id, downloads)
    const info = this.info(id, downloads)
    if (!info) throw new AppError('not-found', 'That download is no longer in the list.')
    return info
  }

  async clearDownloads(): Promise<{ removed: number }> {
    const { downloads } = await this.queued()
    let removed = 0
    for (const j of downloads.list()) {
      const status = this.statuses.get(j.id)
      const installing = j.state === 'done' && (status?.state === 'pending' || status?.state === 'installing')
      if (FINAL_STATES.includes(j.state) && !installing && downloads.remove(j.id)) removed++
    }
    this.statuses.retain(new Set(downloads.list().map((j) => j.id)))
    return { removed }
  }

  // ------------------------------------------------------------------------------------------ library

  async library(): Promise<Library> {
    return (await this.open()).library
  }

  async libraryList(q: LibraryQuery): Promise<LibraryModel[]> {
    const lib = await this.library()
    return lib.list(q).map(publicRecord)
  }

  private sourceUrl(r: ModelRecord): string | null {
    const s = this.o.settings.get()
    if (r.civitai)
      return `${s.civitaiBaseUrl.replace(/\/+$/, '')}/models/${r.civitai.modelId}?modelVersionId=${r.civitai.versionId}`
    if (r.huggingface) return `${s.hfBaseUrl.replace(/\/+$/, '')}/${r.huggingface.repo}`
    return null
  }

  libraryGet(id: string): Promise<LibraryModelDetails> {
    return mapped(async () => {
      const lib = await this.library()
      const r = lib.resolve(id)
      const checkpoints = lib.list({ type: 'checkpoint' }).filter((c) => !c.problem)
      return {
        model: publicRecord(r),
        sourceUrl: this.sourceUrl(r),
        compat: libraryCompat(r, checkpoints),
        location: r.root,
      }
    })
  }

  libraryPreview(id: string): Promise<Uint8Array> {
    return mapped(async () => {
      const r = (await this.library()).resolve(id)
      if (!r.preview) throw new AppError('not-found', `${r.name} has no preview image.`)
      // A `x.preview.png` symlinked to /etc/passwd is not a preview: the real file must be in the library.
      if (!isReallyInside([r.root, path.dirname(r.path)], r.preview))
        throw new AppError('forbidden', `The preview of ${r.name} is a link that leaves the library.`)
      const st = await fs.promises.stat(r.preview)
      if (!st.isFile()) throw new AppError('not-found', `${r.name} has no preview image.`)
      if (st.size > 20 * 1024 * 1024)
        throw new AppError('unsupported', `The preview of ${r.name} is too large.`)
      return new Uint8Array(await fs.promises.readFile(r.preview))
    })
  }

  libraryRename(id: string, name: string): Promise<LibraryModel> {
    return mapped(async () => publicRecord(await (await this.library()).rename(id, name)))
  }

  libraryDelete(id: string): Promise<{ id: string }> {
    return mapped(async () => {
      const { record } = await (await this.library()).delete(id)
      return { id: record.id }
    })
  }

  async libraryScan(): Promise<JobRef> {
    const lib = await this.library()
    const job = this.o.jobs.start('library-scan', 'Scanning the library', async (ctx) => {
      const summary = await mapped(() =>
        lib.scan({
          signal: ctx.signal,
          onProgress: (p) => {
            const frac =
              p.phase === 'hash' && p.bytesTotal > 0
                ? p.bytesDone / p.bytesTotal
                : p.total > 0
                  ? p.done / p.total
                  : 0
            ctx.report(
              p.phase === 'discover' ? 0 : p.phase === 'probe' ? frac * 0.2 : 0.2 + frac * 0.8,
              `${p.phase}${p.file ? ` ${path.basename(p.file)}` : ''}`,
            )
          },
        }),
      )
      return `${summary.models} models (${summary.added} new, ${summary.removed} gone${summary.problems ? `, ${summary.problems} with problems` : ''})`
    })
    return { jobId: job.id }
  }

  libraryDoctor(rehash: boolean): Promise<DoctorResult> {
    return mapped(async () => {
      const report = await (await this.library()).doctor({ rehash })
      return {
        ok: report.ok,
        checked: report.checked,
        issues: report.issues.map((i) => ({
          kind: i.kind,
          id: i.id,
          name: i.name,
          message: i.message,
          ...(i.others ? { others: i.others } : {}),
        })),
      }
    })
  }

  /**
   * Identify library models on Civitai by SHA-256 (100 per request) and save their metadata beside them: the
   * configured Civitai with the stored key, or `baseUrl` (a mirror), which gets no key.
   */
  async libraryMatch(opts: { all?: boolean; baseUrl?: string } = {}): Promise<MatchSummary> {
    const lib = await this.library()
    const client = opts.baseUrl
      ? new CivitaiClient({ baseUrl: opts.baseUrl, retry: this.o.retry })
      : this.civitai()
    return mapped(() => lib.matchCivitai(lookupFromCivitai(client), { all: opts.all }))
  }

  async libraryRoots(): Promise<LibraryRootInfo[]> {
    const lib = await this.library()
    return lib
      .getRoots()
      .map((r) => ({ path: r.path, layout: r.layout, own: path.resolve(r.path) === lib.libraryDir }))
  }

  /** Add a folder the user typed and scan it. The path is checked here: absolute, an existing folder, not a system root. */
  libraryAddRoot(folder: string): Promise<LibraryRootInfo & JobRef> {
    return mapped(async () => {
      const text = folder.trim()
      if (text.includes('\0') || !path.isAbsolute(text)) {
        throw new AppError(
          'invalid-input',
          `"${folder}" is not an absolute folder path (e.g. /home/me/stable-diffusion-webui).`,
        )
      }
      const abs = path.resolve(text)
      if (path.parse(abs).root === abs)
        throw new AppError(
          'invalid-input',
          `${abs} is the root of a disk; pick the folder that holds the models.`,
        )
      let st: fs.Stats
      try {
        st = await fs.promises.stat(abs)
      } catch {
        throw new AppError('not-found', `${abs} does not exist.`)
      }
      if (!st.isDirectory()) throw new AppError('invalid-input', `${abs} is a file, not a folder.`)
      const lib = await this.library()
      const root = await lib.addRoot(abs)
      const { jobId } = await this.libraryScan()
      return { path: root.path, layout: root.layout, own: false, jobId }
    })
  }

  // ------------------------------------------------------------------------------------------ keys

  testSecret(name: SecretName, value?: string): Promise<SecretTestResult> {
    const s = this.o.settings.get()
    const key = value ?? this.o.secrets.get(name)
    return testSecret(name, key, name === 'civitaiApiKey' ? s.civitaiBaseUrl : s.hfBaseUrl)
  }
}
