import fs from 'node:fs'
import path from 'node:path'
import type { IpAdapterInfo } from '../../engine/ipadapter/adapter'
import { looksLikeIpAdapter, probeIpAdapter } from '../../engine/ipadapter/adapter'
import { locateImageEncoder } from '../../engine/ipadapter/image-encoder'
import { tensorShapes } from '../../model-formats/tensor-file'

/**
 * IP-Adapter and CLIP image encoder files under the library folders, by the folder names Atelier, A1111
 * (ControlNet extension) and ComfyUI use, then probed by content (tensor names only). Used when a request
 * names no adapter / encoder: the first one that fits the checkpoint (and the adapter) is taken.
 */

export const IP_ADAPTER_DIRS = [
  'ip-adapters',
  'ipadapter',
  'ip-adapter',
  'models/ipadapter',
  'models/ip-adapter',
  'models/ControlNet',
  'extensions/sd-webui-controlnet/models',
]
export const IMAGE_ENCODER_DIRS = [
  'image-encoders',
  'image_encoder',
  'clip-vision',
  'clip_vision',
  'models/clip_vision',
  'models/image_encoder',
]

const WEIGHTS = /\.(safetensors|bin|pt|pth)$/i

function listDir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true })
  } catch {
    return []
  }
}

/** Candidate adapter files under the roots (not yet probed), sorted by name. */
export function adapterCandidates(roots: string[]): string[] {
  const out: string[] = []
  for (const root of roots)
    for (const d of IP_ADAPTER_DIRS)
      for (const e of listDir(path.join(root, d)))
        if (e.isFile() && WEIGHTS.test(e.name)) out.push(path.join(root, d, e.name))
  return [...new Set(out)].sort((a, b) => path.basename(a).localeCompare(path.basename(b)))
}

/** Candidate encoders: weight files and Hugging Face folders (config.json + weights) under the roots. */
export function encoderCandidates(roots: string[]): string[] {
  const out: string[] = []
  for (const root of roots)
    for (const d of IMAGE_ENCODER_DIRS) {
      const dir = path.join(root, d)
      if (fs.existsSync(path.join(dir, 'config.json'))) out.push(dir)
      for (const e of listDir(dir)) {
        const full = path.join(dir, e.name)
        if (e.isFile() && WEIGHTS.test(e.name) && !fs.existsSync(path.join(dir, 'config.json')))
          out.push(full)
        if (e.isDirectory() && fs.existsSync(path.join(full, 'config.json'))) out.push(full)
      }
    }
  return [...new Set(out)]
}

/** The adapter's layout, or null when the file is not an IP-Adapter (or unreadable). */
export async function adapterInfo(file: string): Promise<IpAdapterInfo | null> {
  const shapes = await tensorShapes(file)
  if (!shapes || !looksLikeIpAdapter(shapes.keys())) return null
  return probeIpAdapter(file).catch(() => null)
}

/** Output width of an image encoder (visual_projection rows), or null when it is not one. */
export async function encoderEmbedDim(p: string): Promise<number | null> {
  let weights: string
  try {
    weights = locateImageEncoder(p).weights
  } catch {
    return null
  }
  const shapes = await tensorShapes(weights)
  if (!shapes || ![...shapes.keys()].some((k) => k.startsWith('vision_model.'))) return null
  return shapes.get('visual_projection.weight')?.[0] ?? null
}
