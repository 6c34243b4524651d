/**
 * Image prompts (IP-Adapter reference images) of the studio: slots with bytes or a gallery id and a weight,
 * and how they join a request. The renderer never fetches a URL: URLs typed in the prompt (Midjourney
 * style) are resolved by main. Pure apart from the store: unit-tested.
 */
import type { GenerateMode, GenerateRequest } from '../../../../preload/contract-types'
import { createStore } from './store'

export const MAX_IMAGE_PROMPTS = 5
export const BLEND_MIN = 2
export const BLEND_MAX = 5

export interface ImagePromptSlot {
  id: number
  /** Shown under the thumbnail. */
  name: string
  /** Dropped / opened image bytes, or a gallery image. */
  bytes?: Uint8Array
  galleryId?: string
  /** Object URL of the thumbnail (revoked on removal). */
  url?: string
  /** IP-Adapter scale, 0–2 (A1111 / ComfyUI weight). */
  weight: number
}

export interface ImagePromptState {
  slots: ImagePromptSlot[]
  /** Library id of the adapter / encoder; empty = the library's default for the checkpoint. */
  adapter: string
  encoder: string
}

export const imagePrompts = createStore<ImagePromptState>({ slots: [], adapter: '', encoder: '' })

let nextId = 1

/** A slot's default weight: 1 alone, then what the others use (they are averaged, scale = the largest). */
export const DEFAULT_WEIGHT = 1

export function addImagePrompt(slot: Omit<ImagePromptSlot, 'id' | 'weight'> & { weight?: number }): boolean {
  const s = imagePrompts.get()
  if (s.slots.length >= MAX_IMAGE_PROMPTS) return false
  imagePrompts.set({ slots: [...s.slots, { weight: DEFAULT_WEIGHT, ...slot, id: nextId++ }] })
  return true
}

export function removeImagePrompt(id: number): void {
  const s = imagePrompts.get()
  const gone = s.slots.find((x) => x.id === id)
  if (gone?.url) URL.revokeObjectURL(gone.url)
  imagePrompts.set({ slots: s.slots.filter((x) => x.id !== id) })
}

export function setImagePromptWeight(id: number, weight: number): void {
  const w = Math.min(2, Math.max(0, Number.isFinite(weight) ? weight : DEFAULT_WEIGHT))
  imagePrompts.set((s) => ({ slots: s.slots.map((x) => (x.id === id ? { ...x, weight: w } : x)) }))
}

export function clearImagePrompts(): void {
  for (const x of imagePrompts.get().slots) if (x.url) URL.revokeObjectURL(x.url)
  imagePrompts.set({ slots: [] })
}

/** Modes that take image prompts. */
export function takesImagePrompts(mode: GenerateMode): boolean {
  return mode === 'txt2img' || mode === 'img2img'
}

/** Midjourney's --iw for an adapter scale (the inverse of main's iwToScale: 0.5 ↔ 1, 1.0 ↔ 3). */
export function iwOf(scale: number): number {
  const s = Math.min(1, Math.max(0, scale))
  return s <= 0.5 ? s / 0.5 : 1 + (s - 0.5) / 0.25
}

/** The request with the slots' image prompts (and the chosen models) for modes that take them. */
export function withImagePrompts(
  mode: GenerateMode,
  req: GenerateRequest,
  s: ImagePromptState = imagePrompts.get(),
): GenerateRequest {
  if (!takesImagePrompts(mode) || s.slots.length === 0) return req
  return {
    ...req,
    imagePrompts: [
      ...(req.imagePrompts ?? []),
      ...s.slots.map((x) =>
        x.bytes
          ? { image: x.bytes, weight: x.weight }
          : { galleryId: x.galleryId as string, weight: x.weight },
      ),
    ],
    ...(s.adapter ? { ipAdapter: s.adapter } : {}),
    ...(s.encoder ? { imageEncoder: s.encoder } : {}),
  }
}

export type BlendShape = 'square' | 'portrait' | 'landscape'

/** /blend --dimensions at a family's base size (multiples of 64: SD1 512 → 448×640 portrait). */
export function blendSize(shape: BlendShape, base: number): { width: number; height: number } {
  if (shape === 'square') return { width: base, height: base }
  const [w, h] = shape === 'portrait' ? [2, 3] : [3, 2]
  const snap = (v: number): number => Math.max(64, Math.round(v / 64) * 64)
  return { width: snap(Math.sqrt((base * base * w) / h)), height: snap(Math.sqrt((base * base * h) / w)) }
}

/**
 * Midjourney /blend as a txt2img request: 2–5 gallery images, no text, equal weights (main averages their
 * embeddings and runs them at scale 1), the studio's model and sampling settings.
 */
export function blendRequest(
  base: GenerateRequest,
  galleryIds: string[],
  size: { width: number; height: number },
  s: Pick<ImagePromptState, 'adapter' | 'encoder'> = imagePrompts.get(),
): GenerateRequest {
  if (galleryIds.length < BLEND_MIN || galleryIds.length > BLEND_MAX)
    throw new Error(`Blend takes ${BLEND_MIN} to ${BLEND_MAX} images (${galleryIds.length} selected).`)
  const { image: _image, strength: _s, exactSteps: _e, resizeMode: _r, imagePrompts: _i, ...rest } = base
  return {
    ...rest,
    mode: 'txt2img',
    prompt: '',
    ...size,
    imagePrompts: galleryIds.map((galleryId) => ({ galleryId, weight: 1 })),
    ...(s.adapter ? { ipAdapter: s.adapter } : {}),
    ...(s.encoder ? { imageEncoder: s.encoder } : {}),
  }
}
