/**
 * Installs: pick the file of a Civitai version or HF repo, queue its download with the hash the service
 * published, and when the verified file lands, register it in the library (`.civitai.info` + preview image
 * beside it). HF diffusers repos install as a whole folder: one download per file, assembled when all are done.
 * Every decision a finished download needs is in its persisted `meta`, so installs complete after a restart.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { InstallResult } from '../../../preload/contract'
import type { DownloadManager } from '../../downloads/manager'
import type { DownloadJob, DownloadRequest } from '../../downloads/types'
import { civitaiJsonFromRemote } from '../../library/civitai-info'
import type { Library } from '../../library/library'
import type { CivitaiVersionJson, ModelType } from '../../library/types'
import type { CivitaiClient } from '../../remote/civitai/client'
import { gatedMessage } from '../../remote/huggingface/errors'
import type { HuggingFaceClient } from '../../remote/huggingface/client'
import type { RemoteFile, RemoteModel, RemoteModelKind } from '../../remote/types'
import { AppError } from '../errors'
import { MAX_INPUT_PIXELS } from '../../engine/image/limits'
import { sanitizeFileName } from '../../downloads/filename'
import { resolveInside } from '../../platform/contain'
import { InstalledIndex } from './badges'
import { isInstallable, pickImage } from './dto'
import type { ImageFetcher } from './images'
import { readMeta, toJsonValue, type InstallMeta, type InstallStatusStore } from './install-meta'
import { installFileName, isImagePromptPickle } from './image-prompt-files'

export interface InstallerDeps {
  library: Library
  downloads: DownloadManager
  statuses: InstallStatusStore
  /** Folder where downloads land before the library moves them into place. */
  stagingDir: string
  fetchImage: ImageFetcher
  /** Push the job's new state to the renderer. */
  changed(jobId: string): void
  log(message: string): void
}

const KIND_TO_TYPE: Partial<Record<RemoteModelKind, ModelType>> = {
  checkpoint: 'checkpoint',
  lora: 'lora',
  embedding: 'embedding',
  vae: 'vae',
  upscaler: 'upscaler',
}

/**
 * Upscalers ship as PyTorch .pth files and embeddings as .pt: those install too (the library reads them with the
 * safe pickle reader, which refuses a pickle that names a forbidden global).
 */
function installable(kind: RemoteModelKind | undefined, f: RemoteFile): boolean {
  if (isInstallable(f)) return true
  if (/^(training data|config|archive)$/i.test(f.fileType)) return false
  if (kind === 'upscaler' && /\.(pth|pt)$/i.test(f.name)) return true
  // Textual-inversion embeddings are mostly A1111 .pt files (and diffusers .bin): read by the safe reader too.
  if (kind === 'embedding' && /\.(pt|bin)$/i.test(f.name)) return true
  // IP-Adapters (ip-adapter_sd15.bin) and image encoders (pytorch_model.bin) often ship as pickles too.
  return isImagePromptPickle(f)
}

function typeFor(kind: RemoteModelKind | undefined, file: RemoteFile): ModelType | undefined {
  if (/^vae$/i.test(file.fileType)) return 'vae'
  return kind ? KIND_TO_TYPE[kind] : undefined
}

export class Installer {
  private readonly finishing = new Set<string>()

  constructor(private readonly d: InstallerDeps) {}

  private index(): InstalledIndex {
    return new InstalledIndex(this.d.library.list())
  }

  /** A job for the same URL that has not finished (double clicks, a CLI run repeated). */
  private unfinished(url: string): DownloadJob | undefined {
    return this.d.downloads
      .list()
      .find(
        (j) => j.request.url === url && j.state !== 'cancelled' && j.state !== 'done' && j.state !== 'failed',
      )
  }

  private async enqueue(req: DownloadRequest): Promise<string> {
    const again = this.unfinished(req.url)
    if (again) return again.id
    const job = await this.d.downloads.enqueue(req)
    // The queue may start (and even finish and install) the job before enqueue() returns: never go back.
    if (!this.d.statuses.get(job.id))
      this.d.statuses.set(job.id, { state: 'pending', libraryId: null, message: null })
    this.d.changed(job.id)
    return job.id
  }

  private staging(): string {
    return path.join(this.d.stagingDir, crypto.randomUUID().slice(0, 8))
  }

  async civitai(
    client: CivitaiClient,
    versionId: string,
    fileId: string | undefined,
    hasKey: boolean,
  ): Promise<InstallResult> {
    const v = await client.getVersion(versionId)
    const m: RemoteModel | null = await client.getModel(v.modelId).catch(() => null)
    const file = fileId
      ? v.files.find((f) => f.id === fileId)
      : (v.files.find((f) => f.primary && installable(m?.kind, f)) ??
        v.files.find((f) => installable(m?.kind, f)))
    const title = `${m?.name ?? `Civitai model ${v.modelId}`} ${v.name}`
    if (!file) {
      throw new AppError(
        'not-found',
        fileId ? `${title} has no file with id ${fileId}.` : `${title} has no .safetensors file to install.`,
      )
    }
    if (!installable(m?.kind, file)) {
      throw new AppError(
        'unsupported',
        `${file.name} is not a .safetensors weights file (${file.fileType}, ${file.format ?? 'unknown format'}); Atelier installs safetensors only.`,
      )
    }
    if (m?.archived) {
      throw new AppError(
        'not-found',
        `${title} was archived on Civitai: its files can no longer be downloaded.`,
      )
    }
    if (v.earlyAccess && !hasKey) {
      throw new AppError(
        'unauthorized',
        `${title} is in Civitai Early Access: add the API key of an account that bought access in Settings, or wait until it ends.`,
      )
    }
    const existing = this.index().fileRecord(file, { source: 'civitai', id: v.modelId })
    if (existing) return { downloadIds: [], alreadyInstalled: existing.id }
    const info: CivitaiVersionJson = civitaiJsonFromRemote(
      v,
      m ? { name: m.name, kind: m.kind, rawType: m.rawType, nsfw: m.nsfw } : undefined,
    )
    const meta: InstallMeta = {
      install: 'civitai',
      label: title,
      type: typeFor(m?.kind, file),
      civitai: info as Record<string, unknown>,
      previewUrl: pickImage([v], 'hide')?.url,
    }
    const id = await this.enqueue({
      url: file.downloadUrl || client.downloadUrl(v.id, file.id),
      destDir: this.staging(),
      fileName: file.name,
      expectedSha256: file.sha256 ?? undefined,
      expectedSize: file.sizeExact && file.sizeBytes !== null ? file.sizeBytes : undefined,
      source: 'civitai',
      meta: toJsonValue(meta) as DownloadRequest['meta'],
    })
    return { downloadIds: [id], alreadyInstalled: null }
  }

  async huggingface(
    client: HuggingFaceClient,
    repo: string,
    filePath: string | undefined,
    revision: string | undefined,
    hasToken: boolean,
  ): Promise<InstallResult> {
    const model = await client.getModel(repo, revision)
    const version = model.versions[0]
    if (!version) throw new AppError('not-found', `${repo} lists no files.`)
    if (model.gated && !hasToken) throw new AppError('unauthorized', gatedMessage(repo, client.baseUrl, 401))
    const commit = version.id
    const isDiffusers = version.files.some((f) => f.path === 'model_index.json')
    if (!filePath && isDiffusers) return this.huggingfaceFolder(client, model, commit)
    const file = filePath
      ? version.files.find((f) => f.path === filePath)
      : version.files.find((f) => f.primary)
    if (!file) {
      throw new AppError(
        'not-found',
        filePath
          ? `${repo} has no file ${filePath}.`
          : `${repo} has no single .safetensors file at its top level; pick a file.`,
      )
    }
    if (!installable(model.kind, file)) {
      throw new AppError(
        'unsupported',
        `${file.path} is not a .safetensors weights file; Atelier installs safetensors only.`,
      )
    }
    const existing = this.index().fileRecord(file, model)
    if (existing) return { downloadIds: [], alreadyInstalled: existing.id }
    const sha = file.sha256 ?? (await client.fileInfo(repo, file.path, commit)).sha256
    const meta: InstallMeta = {
      install: 'hf-file',
      label: `${repo} ${file.path}`,
      type: typeFor(model.kind, file),
      hf: { repo, revision: commit, path: file.path },
      expectedSha256: sha ?? undefined,
    }
    const id = await this.enqueue({
      url: file.downloadUrl,
      destDir: this.staging(),
      fileName: installFileName(file, repo),
      expectedSha256: sha ?? undefined,
      expectedSize: file.sizeBytes ?? undefined,
      source: 'huggingface',
      meta: toJsonValue(meta) as DownloadRequest['meta'],
    })
    return { downloadIds: [id], alreadyInstalled: null }
  }

  private async huggingfaceFolder(
    client: HuggingFaceClient,
    model: RemoteModel,
    commit: string,
  ): Promise<InstallResult> {
    const installed = this.d.library
      .list()
      .find((r) => r.folder && r.huggingface?.repo.toLowerCase() === model.id.toLowerCase())
    if (installed && installed.huggingface?.revision === commit)
      return { downloadIds: [], alreadyInstalled: installed.id }
    const files = await client.diffusersFiles(model.id, { revision: commit })
    const group = crypto.randomUUID()
    const folderDir = path.join(
      this.d.stagingDir,
      'folders',
      group.slice(0, 8),
      sanitizeFileName(model.name) ?? 'model',
    )
    // Every path of the remote tree must stay inside the folder (`unet/../../../outside/evil.txt` is refused).
    const targets = files.map((f) => {
      try {
        return resolveInside(folderDir, f.path)
      } catch {
        throw new AppError(
          'invalid-input',
          `${model.id}: the file list holds a path that leaves the model folder ("${f.path}"); nothing was downloaded.`,
        )
      }
    })
    const ids: string[] = []
    for (const [i, f] of files.entries()) {
      const target = targets[i] as string
      const meta: InstallMeta = {
        install: 'hf-folder',
        label: `${model.id} (${i + 1}/${files.length}) ${f.path}`,
        type: 'checkpoint',
        hf: { repo: model.id, revision: commit, path: '' },
        group,
        groupSize: files.length,
        folderDir,
      }
      ids.push(
        await this.enqueue({
          url: f.downloadUrl,
          destDir: path.dirname(target),
          fileName: path.basename(target),
          expectedSha256: f.sha256 ?? undefined,
          expectedSize: f.sizeBytes ?? undefined,
          source: 'huggingface',
          meta: toJsonValue(meta) as DownloadRequest['meta'],
        }),
      )
    }
    return { downloadIds: ids, alreadyInstalled: null }
  }

  // ------------------------------------------------------------------------------------------ finishing

  /** Called for every job that reached 'done' (now or in a previous run). */
  async finish(job: DownloadJob): Promise<void> {
    const meta = readMeta(job.request.meta)
    if (!meta || meta.install === 'tokenizer' || job.state !== 'done') return
    const status = this.d.statuses.get(job.id)
    if (status?.state === 'installed' || status?.state === 'failed') return
    if (meta.install === 'hf-folder') return this.finishFolder(meta)
    if (this.finishing.has(job.id)) return
    this.finishing.add(job.id)
    try {
      const file = job.destPath
      if (!file || !fs.existsSync(file)) {
        this.set(
          job.id,
          'failed',
          null,
          `${job.fileName ?? 'The file'} is no longer in the download folder; retry the install.`,
        )
        return
      }
      this.set(job.id, 'installing', null, null)
      const preview = meta.previewUrl ? await this.preview(meta.previewUrl) : undefined
      const record = await this.d.library.add(file, {
        sha256: job.sha256 ?? undefined,
        source: meta.install === 'civitai' ? 'civitai' : 'huggingface',
        civitai: (meta.civitai as CivitaiVersionJson | undefined) ?? null,
        huggingface: meta.hf ?? null,
        expectedSha256: meta.expectedSha256 ?? null,
        type: meta.type,
        move: true,
        ...(preview ? { preview } : {}),
      })
      await fs.promises.rm(path.dirname(file), { recursive: true, force: true }).catch(() => undefined)
      this.set(job.id, 'installed', record.id, null)
    } catch (err) {
      this.set(job.id, 'failed', null, err instanceof Error ? err.message : String(err))
    } finally {
      this.finishing.delete(job.id)
    }
  }

  private async finishFolder(meta: InstallMeta): Promise<void> {
    const group = meta.group
    const folder = meta.folderDir
    if (!group || !folder || this.finishing.has(group)) return
    const members = this.d.downloads.list().filter((j) => readMeta(j.request.meta)?.group === group)
    if (members.length < (meta.groupSize ?? 0) || members.some((j) => j.state !== 'done')) return
    this.finishing.add(group)
    const mark = (
      state: 'installing' | 'installed' | 'failed',
      id: string | null,
      msg: string | null,
    ): void => {
      for (const j of members) this.set(j.id, state, id, msg)
    }
    try {
      if (!fs.existsSync(folder)) {
        mark('failed', null, `The downloaded folder ${path.basename(folder)} is gone; retry the install.`)
        return
      }
      mark('installing', null, null)
      const record = await this.d.library.add(folder, {
        source: 'huggingface',
        huggingface: meta.hf ?? null,
        type: 'checkpoint',
        move: true,
      })
      await fs.promises.rm(path.dirname(folder), { recursive: true, force: true }).catch(() => undefined)
      mark('installed', record.id, null)
    } catch (err) {
      mark('failed', null, err instanceof Error ? err.message : String(err))
    } finally {
      this.finishing.delete(group)
    }
  }

  /** The first SFW preview as PNG (`<name>.preview.png`); a failure only costs the preview. */
  private async preview(url: string): Promise<{ data: Uint8Array; ext: string } | undefined> {
    try {
      const { bytes } = await this.d.fetchImage(url)
      const { default: sharp } = await import('sharp')
      const png = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS })
        .rotate()
        .resize({ width: 512, height: 768, fit: 'inside', withoutEnlargement: true })
        .png()
        .toBuffer()
      return { data: new Uint8Array(png), ext: 'png' }
    } catch (err) {
      this.d.log(`preview image ${url}: ${err instanceof Error ? err.message : String(err)}`)
      return undefined
    }
  }

  private set(
    id: string,
    state: 'installing' | 'installed' | 'failed',
    libraryId: string | null,
    message: string | null,
  ): void {
    this.d.statuses.set(id, { state, libraryId, message })
    this.d.changed(id)
  }
}
