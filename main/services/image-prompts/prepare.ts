import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import type { GenerateRequest, ImagePromptRequest, MidjourneyParse } from '../../../preload/contract-types'
import type { IpAdapterInfo } from '../../engine/ipadapter/adapter'
import { familyForContextDim } from '../../engine/ipadapter/adapter'
import type { MidjourneyLine } from '../../engine/prompt/midjourney-line'
import {
  isMidjourneyLine,
  MIDJOURNEY_SYNTAX,
  MidjourneyPromptError,
  midjourneySpans,
  parseMidjourneyLine,
} from '../../engine/prompt/midjourney-line'
import { probeModel } from '../../model-formats/probe'
import { AppError } from '../errors'
import type { ResolvedImagePrompt, ResolvedModel } from '../generation/protocol'
import { fetchPublic, isPublicAddress } from '../../remote/public-fetch'
import type { ImageFetcher } from '../models/images'
import { adapterInfo, encoderEmbedDim } from './discover'

/**
 * The main-process side of image prompts, before a job reaches the worker:
 *
 * 1. Midjourney syntax in the prompt, in every mode (engine/prompt/midjourney-line.ts): `/imagine`, --ar,
 *    --no, --seed, `::` weights, leading image URLs or gallery ids, `--iw`, `/blend`. Explicit
 *    `imagePrompts` (the A1111 / ComfyUI-style controls) come after.
 * 2. Every reference becomes bytes: uploaded bytes as they are, gallery images read from the gallery,
 *    URLs fetched here in main (never in the renderer) without credentials, public hosts only.
 * 3. The IP-Adapter and image encoder: the named ones, else the first in the library folders that fits the
 *    checkpoint's family (token width) and whose encoder gives the adapter's embedding width.
 */

export interface NamedFile {
  path: string
  name: string
  sha256?: string
}

export interface ImagePromptResolvers {
  ipAdapter?(name: string): Promise<NamedFile> | NamedFile
  imageEncoder?(name: string): Promise<NamedFile> | NamedFile
  /** Adapter and encoder files to choose a default from (library records, library folders). */
  imagePromptCandidates?(): Promise<{ adapters: NamedFile[]; encoders: NamedFile[] }>
}

export interface PrepareDeps {
  resolvers: ImagePromptResolvers
  gallery?: { dir: string; image(id: string): Promise<Uint8Array> }
  fetchImage?: ImageFetcher
  signal?: AbortSignal
}

export interface PreparedImagePrompts {
  request: GenerateRequest
  imagePrompt?: ResolvedImagePrompt
  warnings: string[]
  /** The prompt line as typed when it used Midjourney syntax (the infotext's `Midjourney prompt`). */
  midjourneyPrompt?: string
}

const GALLERY_PREFIX = 'gallery:'
const ID_RE = /^[\w.-]{1,200}$/

/** Largest image prompt fetched from a URL (the download stops as soon as more bytes arrive). */
export const MAX_PROMPT_IMAGE_BYTES = 15 * 1024 * 1024

/**
 * Fetches an image prompt URL: public addresses only (checked after resolving, pinned, every redirect
 * checked again), no credentials, at most MAX_PROMPT_IMAGE_BYTES.
 */
export const fetchPromptImage: ImageFetcher = async (url, signal) => {
  const r = await fetchPublic(url, {
    maxBytes: MAX_PROMPT_IMAGE_BYTES,
    accept: 'image/',
    acceptHeader: 'image/avif,image/webp,image/png,image/jpeg,image/*',
    ...(signal ? { signal } : {}),
  })
  return { bytes: r.bytes, contentType: r.contentType }
}

/** Refuses URLs main should not fetch for a prompt: non-http(s), credentials, local and private hosts. */
export function checkImageUrl(raw: string): URL {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new AppError('invalid-input', `"${raw}" is not a URL.`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new AppError('invalid-input', `Image prompt ${raw}: only http(s) URLs are fetched.`)
  if (u.username || u.password)
    throw new AppError('invalid-input', `Image prompt ${u.host}: URLs with credentials are not fetched.`)
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  // Literal addresses are judged here (every IPv6 spelling of 127.0.0.1 included); names are resolved and
  // every address checked when the image is fetched (fetchPromptImage).
  const local =
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host.endsWith('.local') ||
    host.endsWith('.internal') ||
    (net.isIP(host) !== 0 && !isPublicAddress(host))
  if (local)
    throw new AppError(
      'invalid-input',
      `Image prompt ${u.host}: local and private network addresses are not fetched; drop the image in instead.`,
    )
  return u
}

function galleryId(token: string): string | undefined {
  const id = token.startsWith(GALLERY_PREFIX) ? token.slice(GALLERY_PREFIX.length) : token
  return ID_RE.test(id) && !id.startsWith('.') ? id : undefined
}

/** Image references of the prompt: URLs, and gallery ids (`gallery:<id>` or a bare id that exists). */
function refPredicate(deps: PrepareDeps): (token: string) => boolean {
  return (token) => {
    if (token.startsWith(GALLERY_PREFIX)) return true
    const id = galleryId(token)
    return !!id && !!deps.gallery && fs.existsSync(path.join(deps.gallery.dir, `${id}.png`))
  }
}

function refToRequest(ref: string, weight: number): ImagePromptRequest {
  if (/^https?:\/\//i.test(ref)) return { url: ref, weight }
  const id = galleryId(ref)
  if (!id) throw new AppError('invalid-input', `"${ref}" is neither an image URL nor a gallery id.`)
  return { galleryId: id, weight }
}

export async function baseSizeOf(
  model: ResolvedModel,
): Promise<{ size: number; contextDim?: number; family?: string }> {
  try {
    const p = await probeModel(model.path)
    return {
      size: p.base === 'sdxl' ? 1024 : p.base === 'sd-2' ? 768 : 512,
      ...(p.unet?.contextDim ? { contextDim: p.unet.contextDim } : {}),
      ...(p.base ? { family: p.base } : {}),
    }
  } catch {
    return { size: 512 }
  }
}

/** Applies a parsed Midjourney line (text flags and image syntax) to the request. */
function applyMidjourney(req: GenerateRequest, mj: MidjourneyLine, warnings: string[]): GenerateRequest {
  const out: GenerateRequest = { ...req, prompt: mj.prompt }
  if (mj.negativePrompt !== '' || req.negativePrompt !== undefined) out.negativePrompt = mj.negativePrompt
  if (mj.width && mj.height) Object.assign(out, { width: mj.width, height: mj.height })
  if (mj.seed !== undefined) out.seed = mj.seed
  const explicit = req.imagePrompts ?? []
  // --iw also sets the weight of the images in the image-prompt slots
  const iwScale = mj.iw !== undefined && !mj.blend ? mj.imageScale : undefined
  warnings.push(...mj.warnings.filter((w) => !(explicit.length && w.startsWith('--iw was given'))))
  if (mj.images.length || iwScale !== undefined)
    out.imagePrompts = [
      ...mj.images.map((r) => refToRequest(r, mj.imageScale)),
      ...explicit.map((p) => (iwScale !== undefined ? { ...p, weight: iwScale } : p)),
    ]
  return out
}

async function bytesOf(p: ImagePromptRequest, i: number, deps: PrepareDeps): Promise<Uint8Array> {
  if (p.image) return p.image
  if (p.galleryId !== undefined) {
    if (!deps.gallery) throw new AppError('unsupported', 'Gallery images cannot be used here.')
    return deps.gallery.image(p.galleryId)
  }
  if (p.url !== undefined) {
    const u = checkImageUrl(p.url)
    try {
      return (await (deps.fetchImage ?? fetchPromptImage)(u.href, deps.signal)).bytes
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err)
      throw new AppError('not-found', `Image prompt ${i + 1} (${u.href}): ${why}`)
    }
  }
  throw new AppError('invalid-input', `Image prompt ${i + 1} has no image, galleryId or url.`)
}

async function pickAdapter(
  req: GenerateRequest,
  deps: PrepareDeps,
  contextDim: number | undefined,
  modelName: string,
): Promise<{ file: NamedFile; info: IpAdapterInfo }> {
  if (req.ipAdapter) {
    if (!deps.resolvers.ipAdapter) throw new AppError('unsupported', 'No IP-Adapter resolver is configured.')
    const file = await deps.resolvers.ipAdapter(req.ipAdapter)
    const info = await adapterInfo(file.path)
    if (!info) throw new AppError('unsupported', `${file.name} (${file.path}) is not an IP-Adapter model.`)
    if (contextDim && info.crossAttentionDim !== contextDim)
      throw new AppError(
        'unsupported',
        `${file.name} is an IP-Adapter for ${label(info.family)} but ${modelName} is ${label(familyForContextDim(contextDim))}; pick an adapter for this model's family.`,
      )
    return { file, info }
  }
  const candidates = (await deps.resolvers.imagePromptCandidates?.())?.adapters ?? []
  const seen: string[] = []
  for (const file of candidates) {
    const info = await adapterInfo(file.path)
    if (!info) continue
    seen.push(`${file.name} (${label(info.family)})`)
    if (!contextDim || info.crossAttentionDim === contextDim) return { file, info }
  }
  throw new AppError(
    'not-found',
    seen.length
      ? `No IP-Adapter in the library fits ${modelName} (${label(familyForContextDim(contextDim ?? 0))}); found ${seen.join(', ')}.`
      : 'Image prompts need an IP-Adapter model (e.g. h94/IP-Adapter ip-adapter_sd15.safetensors) and its CLIP image encoder in the library; none was found.',
  )
}

function label(f: string | null | undefined): string {
  return f === 'sd-1' ? 'SD 1.x' : f === 'sdxl' ? 'SDXL' : f === 'sd-2' ? 'SD 2.x' : 'an unknown family'
}

async function pickEncoder(
  req: GenerateRequest,
  deps: PrepareDeps,
  adapter: IpAdapterInfo,
): Promise<NamedFile> {
  const want = adapter.clipEmbeddingsDim
  const check = async (file: NamedFile): Promise<number | null> => encoderEmbedDim(file.path)
  if (req.imageEncoder) {
    if (!deps.resolvers.imageEncoder)
      throw new AppError('unsupported', 'No image encoder resolver is configured.')
    const file = await deps.resolvers.imageEncoder(req.imageEncoder)
    const dim = await check(file)
    if (dim === null)
      throw new AppError('unsupported', `${file.name} (${file.path}) is not a CLIP image encoder.`)
    if (dim !== want)
      throw new AppError(
        'unsupported',
        `${file.name} gives ${dim}-wide image embeddings but ${path.basename(adapter.file)} needs ${want}-wide ones (${want === 1024 ? 'OpenCLIP ViT-H/14' : want === 1280 ? 'OpenCLIP ViT-bigG/14' : 'another encoder'}).`,
      )
    return file
  }
  for (const file of (await deps.resolvers.imagePromptCandidates?.())?.encoders ?? [])
    if ((await check(file)) === want) return file
  throw new AppError(
    'not-found',
    `No CLIP image encoder with ${want}-wide embeddings in the library (${path.basename(adapter.file)} needs ${want === 1024 ? 'OpenCLIP ViT-H/14, h94/IP-Adapter models/image_encoder' : want === 1280 ? 'OpenCLIP ViT-bigG/14, h94/IP-Adapter sdxl_models/image_encoder' : 'its encoder'}).`,
  )
}

export async function prepareImagePrompts(
  req: GenerateRequest,
  model: ResolvedModel,
  deps: PrepareDeps,
): Promise<PreparedImagePrompts> {
  const warnings: string[] = []
  let out = req
  let midjourneyPrompt: string | undefined
  const isRef = refPredicate(deps)
  // One parser for every mode: /imagine, --ar, --no, --seed, ::, leading images, --iw, /blend.
  if (isMidjourneyLine(req.prompt, isRef)) {
    const { size } = await baseSizeOf(model)
    try {
      const line = parseMidjourneyLine(req.prompt, {
        negativePrompt: req.negativePrompt ?? '',
        baseSize: size,
        isImageRef: isRef,
      })
      out = applyMidjourney(req, line, warnings)
      midjourneyPrompt = line.original
    } catch (err) {
      if (err instanceof MidjourneyPromptError) throw new AppError('invalid-input', err.message)
      throw err
    }
  }
  const mjField = midjourneyPrompt !== undefined ? { midjourneyPrompt } : {}
  const prompts = out.imagePrompts ?? []
  if (prompts.length === 0) {
    const { imagePrompts: _drop, ...rest } = out
    return { request: rest, warnings, ...mjField }
  }
  if (out.mode !== 'txt2img' && out.mode !== 'img2img')
    throw new AppError('invalid-input', `Image prompts work in txt2img and img2img, not in ${out.mode}.`)
  if (prompts.every((p) => (p.weight ?? 1) === 0)) {
    warnings.push('Every image prompt has weight 0: generating from the text alone.')
    const { imagePrompts: _drop, ...rest } = out
    return { request: rest, warnings, ...mjField }
  }
  const resolved: ImagePromptRequest[] = []
  for (const [i, p] of prompts.entries())
    resolved.push({ image: await bytesOf(p, i, deps), weight: p.weight ?? 1 })
  const { contextDim } = await baseSizeOf(model)
  const adapter = await pickAdapter(out, deps, contextDim, model.name)
  const encoder = await pickEncoder(out, deps, adapter.info)
  return {
    request: { ...out, imagePrompts: resolved },
    imagePrompt: {
      adapter: {
        path: adapter.file.path,
        name: adapter.file.name,
        ...(adapter.file.sha256 ? { sha256: adapter.file.sha256 } : {}),
      },
      encoder: { path: encoder.path, name: encoder.name },
    },
    warnings,
    ...mjField,
  }
}

/**
 * What the one Midjourney parser makes of a line, for the prompt bar: highlighted spans, the resulting
 * prompt, negative prompt and size (at the model's base size when given), warnings, or why it cannot run.
 */
export async function describeMidjourney(
  text: string,
  opts: { negativePrompt?: string; model?: ResolvedModel; gallery?: PrepareDeps['gallery'] },
): Promise<MidjourneyParse> {
  const isRef = refPredicate({ resolvers: {}, ...(opts.gallery ? { gallery: opts.gallery } : {}) })
  const spans = midjourneySpans(text, isRef)
  const syntax = MIDJOURNEY_SYNTAX.map((r) => ({ ...r }))
  const negativePrompt = opts.negativePrompt ?? ''
  const base = { text, spans, syntax }
  try {
    const line = parseMidjourneyLine(text, {
      negativePrompt,
      baseSize: opts.model ? (await baseSizeOf(opts.model)).size : 512,
      isImageRef: isRef,
    })
    return {
      ...base,
      midjourney: line.original !== undefined,
      prompt: line.prompt,
      negativePrompt: line.negativePrompt,
      ...(line.width && line.height ? { width: line.width, height: line.height } : {}),
      ...(line.seed !== undefined ? { seed: line.seed } : {}),
      images: line.images,
      blend: line.blend,
      ...(line.iw !== undefined ? { iw: line.iw } : {}),
      warnings: line.warnings,
    }
  } catch (err) {
    if (!(err instanceof MidjourneyPromptError)) throw err
    return {
      ...base,
      midjourney: true,
      prompt: text,
      negativePrompt,
      images: [],
      blend: false,
      warnings: [],
      error: err.message,
    }
  }
}
