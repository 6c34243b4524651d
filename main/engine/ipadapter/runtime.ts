import type { SessionConfig } from '../runtime/session'
import { loadIpAdapter } from './adapter'
import { ImageEncoder } from './image-encoder'
import type { ImagePrompt, ImageTokens } from './image-prompt'
import { ImagePromptEncoder } from './image-prompt'
import { decodeForClip } from './preprocess'

/**
 * What a generation worker keeps for image prompts: one image encoder + adapter loaded at a time (switching
 * releases the previous encoder session), and the reference images turned into image tokens per job.
 */

export interface ImagePromptFiles {
  /** IP-Adapter weights (.safetensors or .bin). */
  adapter: string
  /** CLIP image encoder folder or file. */
  encoder: string
}

export interface EncodedImagePrompt {
  /** PNG / JPEG / WebP bytes. */
  bytes: Uint8Array
  weight: number
  label?: string
}

export class ImagePromptRuntime {
  private loaded: { key: string; enc: ImagePromptEncoder } | undefined

  constructor(private readonly session: SessionConfig = {}) {}

  async encoder(
    files: ImagePromptFiles,
    opts: { cacheRoot?: string; signal?: AbortSignal } = {},
  ): Promise<ImagePromptEncoder> {
    const key = JSON.stringify([files.adapter, files.encoder])
    if (this.loaded?.key === key) return this.loaded.enc
    await this.release()
    const enc = await ImageEncoder.open(files.encoder, { ...opts, session: this.session })
    try {
      this.loaded = { key, enc: new ImagePromptEncoder(enc, await loadIpAdapter(files.adapter)) }
    } catch (err) {
      await enc.release()
      throw err
    }
    return this.loaded.enc
  }

  /** Decodes the images (RGB, alpha dropped, as CLIPImageProcessor does) and computes the image tokens. */
  async tokens(
    files: ImagePromptFiles,
    images: EncodedImagePrompt[],
    opts: { cacheRoot?: string; signal?: AbortSignal } = {},
  ): Promise<ImageTokens> {
    const enc = await this.encoder(files, opts)
    const prompts: ImagePrompt[] = []
    for (const [i, img] of images.entries()) {
      const label = img.label ?? `image prompt ${i + 1}`
      prompts.push({ image: await decodeForClip(img.bytes, label), weight: img.weight, label })
    }
    return enc.imageTokens(prompts)
  }

  async release(): Promise<void> {
    const l = this.loaded
    this.loaded = undefined
    await l?.enc.release()
  }
}
