/** Remote DTOs and download jobs → what the renderer sees (contract-models.ts). */
import type {
  AccessNote,
  CardImage,
  DownloadInfo,
  PreviewParams,
  InstallStateName,
  ModelCard,
  ModelDetails,
  ModelFile,
  ModelImage,
  ModelVersion,
  NsfwPreference,
} from '../../../preload/contract'
import type { DownloadJob, DownloadProgress } from '../../downloads/types'
import type { RemoteFile, RemoteImage, RemoteImageMeta, RemoteModel, RemoteVersion } from '../../remote/types'
import type { InstalledIndex } from './badges'
import { remoteCompat } from './compat'
import { imageResources, imageRng, imageSampler } from './image-settings'
import { thumbnailUrl, type ImageProxy } from './images'

const SFW_LEVEL = 1

function isNsfwImage(img: RemoteImage): boolean {
  return (img.nsfwLevel ?? SFW_LEVEL) > SFW_LEVEL
}

/** The first still image the preference allows (hide: SFW only). */
export function pickImage(versions: RemoteVersion[], pref: NsfwPreference): RemoteImage | null {
  for (const v of versions) {
    for (const img of v.images) {
      if (img.type !== 'image') continue
      if (pref === 'hide' && isNsfwImage(img)) continue
      return img
    }
  }
  return null
}

function cardImage(img: RemoteImage | null, proxy: ImageProxy): CardImage | null {
  if (!img) return null
  return {
    url: proxy.allow(thumbnailUrl(img.url)),
    width: img.width,
    height: img.height,
    nsfw: isNsfwImage(img),
  }
}

export function toCard(
  m: RemoteModel,
  index: InstalledIndex,
  pref: NsfwPreference,
  proxy: ImageProxy,
): ModelCard {
  const badges = index.badges(m)
  return {
    source: m.source,
    id: m.id,
    name: m.name,
    kind: m.kind,
    rawType: m.rawType,
    creator: m.creator,
    baseModels: m.baseModels,
    downloads: m.stats.downloads,
    likes: m.stats.likes,
    image: cardImage(pickImage(m.versions, pref), proxy),
    nsfw: m.nsfw,
    ...badges,
    latestVersionId: m.versions[0]?.id ?? null,
    earlyAccess: m.versions[0]?.earlyAccess ?? false,
    gated: m.gated,
  }
}

export function toParams(meta: RemoteImageMeta | null): PreviewParams | null {
  if (!meta) return null
  const size = /^(\d{2,5})\s*x\s*(\d{2,5})$/i.exec(meta.size ?? '')
  const model = meta.raw.Model
  const resources = imageResources(meta.raw, meta.prompt)
  const vae = resources.find((r) => r.kind === 'vae')
  const sampling = imageSampler(meta.sampler, meta.raw)
  const p: PreviewParams = {
    prompt: meta.prompt,
    negativePrompt: meta.negativePrompt,
    seed: meta.seed,
    steps: meta.steps,
    sampler: sampling.sampler,
    cfgScale: meta.cfgScale,
    clipSkip: meta.clipSkip,
    width: size ? Number(size[1]) : null,
    height: size ? Number(size[2]) : null,
    model: typeof model === 'string' ? model : null,
    scheduleType: sampling.scheduleType,
    vae: vae ? (vae.name ?? vae.hash) : null,
    rng: imageRng(meta.raw),
    resources,
  }
  return Object.values(p).some((v) => v !== null && !(Array.isArray(v) && v.length === 0)) ? p : null
}

function toImage(img: RemoteImage, proxy: ImageProxy): ModelImage {
  return {
    url: proxy.allow(img.type === 'image' ? thumbnailUrl(img.url, 640) : img.url),
    width: img.width,
    height: img.height,
    nsfw: isNsfwImage(img),
    type: img.type,
    params: toParams(img.meta),
  }
}

/** Weights Atelier installs: safetensors only (pickled .ckpt / .pt files are refused by the library). */
export function isInstallable(f: RemoteFile): boolean {
  if (/^(training data|config|archive)$/i.test(f.fileType)) return false
  return f.format === 'safetensors' || (f.format === null && /\.safetensors$/i.test(f.name))
}

function toFile(f: RemoteFile, m: RemoteModel, index: InstalledIndex): ModelFile {
  const rec = index.fileRecord(f, m)
  return {
    id: f.id,
    name: f.name,
    path: f.path,
    sizeBytes: f.sizeBytes,
    sizeExact: f.sizeExact,
    fileType: f.fileType,
    format: f.format,
    precision: f.precision,
    sizeVariant: f.sizeVariant,
    primary: f.primary,
    sha256: f.sha256,
    pickleScan: f.pickleScan,
    virusScan: f.virusScan,
    scanMessage: f.scanMessage,
    installable: isInstallable(f),
    installed: rec !== null,
    libraryId: rec?.id ?? null,
  }
}

export function toVersion(
  v: RemoteVersion,
  m: RemoteModel,
  index: InstalledIndex,
  pref: NsfwPreference,
  proxy: ImageProxy,
): ModelVersion {
  return {
    id: v.id,
    name: v.name,
    baseModel: v.baseModel,
    baseModelType: v.baseModelType,
    trainedWords: v.trainedWords,
    publishedAt: v.publishedAt,
    earlyAccess: v.earlyAccess,
    earlyAccessEndsAt: v.earlyAccessEndsAt,
    descriptionHtml: v.description,
    // HF repos list every file of the repo; show the weights and the folder structure the user may pick from.
    files: v.files.map((f) => toFile(f, m, index)),
    images: v.images.filter((i) => pref !== 'hide' || !isNsfwImage(i)).map((i) => toImage(i, proxy)),
    downloads: v.stats.downloads,
    likes: v.stats.likes,
    installed: index.versionInstalled(v, m),
    compat: remoteCompat(m.kind, v.baseModel, index.checkpoints),
  }
}

function accessNote(m: RemoteModel, selected: RemoteVersion | undefined, hasKey: boolean): AccessNote | null {
  if (m.archived) {
    return {
      kind: 'archived',
      message: 'This model was archived on Civitai: its files can no longer be downloaded.',
      url: m.pageUrl,
    }
  }
  if (m.gated) {
    return {
      kind: 'gated',
      message: `${m.id} is gated: request access on its Hugging Face page, then add a Hugging Face token in Settings${hasKey ? ' (your token is set; access may still be pending)' : ''}.`,
      url: m.pageUrl,
    }
  }
  if (selected?.earlyAccess) {
    const until = selected.earlyAccessEndsAt ? ` until ${selected.earlyAccessEndsAt.slice(0, 10)}` : ''
    return {
      kind: 'early-access',
      message: `This version is in Civitai Early Access${until}: buy access on civitai.com with the account of your API key${hasKey ? '' : ' (add the key in Settings)'}, or wait until it ends.`,
      url: m.pageUrl,
    }
  }
  return null
}

/**
 * The version a model page opens on: the newest one that is not in Early Access (Civitai lists newest first),
 * or the newest where every version is.
 */
export function defaultVersion<V extends { earlyAccess: boolean }>(versions: readonly V[]): V | undefined {
  return versions.find((v) => !v.earlyAccess) ?? versions[0]
}

export function toDetails(
  m: RemoteModel,
  selected: RemoteVersion | undefined,
  extra: { readme: string | null; diffusers: boolean; hasKey: boolean },
  index: InstalledIndex,
  pref: NsfwPreference,
  proxy: ImageProxy,
): ModelDetails {
  const versions = m.versions.map((v) => (selected && v.id === selected.id ? selected : v))
  const badges = index.badges(m)
  return {
    source: m.source,
    id: m.id,
    name: m.name,
    kind: m.kind,
    rawType: m.rawType,
    creator: m.creator,
    tags: m.tags,
    nsfw: m.nsfw,
    pageUrl: m.pageUrl,
    descriptionHtml: m.description,
    readme: extra.readme,
    license: m.license,
    commercialUse: m.commercialUse,
    gated: m.gated,
    archived: m.archived,
    downloads: m.stats.downloads,
    likes: m.stats.likes,
    versions: versions.map((v) => toVersion(v, m, index, pref, proxy)),
    selectedVersionId: selected?.id ?? versions[0]?.id ?? null,
    access: accessNote(m, selected ?? versions[0], extra.hasKey),
    diffusers: extra.diffusers,
    installed: badges.installed,
    updateAvailable: badges.updateAvailable,
  }
}

export interface InstallStatus {
  state: InstallStateName
  libraryId: string | null
  message: string | null
}

export function jobLabel(job: DownloadJob): string {
  const label = job.request.meta?.label
  return typeof label === 'string'
    ? label
    : (job.request.fileName ?? job.fileName ?? new URL(job.request.url).pathname)
}

export function toDownloadInfo(
  job: DownloadJob,
  progress: DownloadProgress | undefined,
  install: InstallStatus,
): DownloadInfo {
  const group = job.request.meta?.group
  const running = job.state === 'downloading'
  return {
    id: job.id,
    label: jobLabel(job),
    fileName: job.fileName ?? job.request.fileName ?? null,
    source: job.request.source ?? 'url',
    state: job.state,
    bytes: progress && running ? Math.max(progress.bytes, job.bytes) : job.bytes,
    total: job.total ?? progress?.total ?? null,
    speedBps: running ? (progress?.speedBps ?? 0) : 0,
    etaMs: running ? (progress?.etaMs ?? null) : null,
    error: job.error,
    verified: job.verified,
    install,
    group: typeof group === 'string' ? group : null,
    createdAt: job.createdAt,
    finishedAt: job.finishedAt,
  }
}
