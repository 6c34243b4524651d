import fs from 'node:fs'
import path from 'node:path'
import type { ModelType, RootLayout } from './types'

/** One folder scanned for models; `type` null means "decide per file from the probe". */
export interface TypeDir {
  dir: string
  type: ModelType | null
}

/** Atelier's own layout (also ComfyUI's `models/` folder and most "models" folders people keep). */
export const ATELIER_DIRS: Record<ModelType, string> = {
  checkpoint: 'checkpoints',
  lora: 'loras',
  vae: 'vaes',
  embedding: 'embeddings',
  upscaler: 'upscalers',
  'ip-adapter': 'ip-adapters',
  'image-encoder': 'image-encoders',
  taesd: 'taesd',
}

const ATELIER_TYPE_DIRS: Array<[string, ModelType]> = [
  ['checkpoints', 'checkpoint'],
  ['loras', 'lora'],
  ['vaes', 'vae'],
  ['vae', 'vae'],
  ['embeddings', 'embedding'],
  ['upscalers', 'upscaler'],
  ['ip-adapters', 'ip-adapter'],
  ['ipadapter', 'ip-adapter'],
  ['image-encoders', 'image-encoder'],
  ['clip_vision', 'image-encoder'],
  ['taesd', 'taesd'],
  ['vae_approx', 'taesd'],
]

// A1111 webui root (also Forge / SD.Next, which keep the same names).
const A1111_TYPE_DIRS: Array<[string, ModelType]> = [
  ['models/Stable-diffusion', 'checkpoint'],
  ['models/Lora', 'lora'],
  ['models/LyCORIS', 'lora'],
  ['models/VAE', 'vae'],
  ['embeddings', 'embedding'],
  ['models/embeddings', 'embedding'],
  ['models/ESRGAN', 'upscaler'],
  ['models/RealESRGAN', 'upscaler'],
  ['models/VAE-approx', 'taesd'],
]

// The same, for someone who points at the webui's `models/` folder itself.
const A1111_MODELS_TYPE_DIRS: Array<[string, ModelType]> = [
  ['Stable-diffusion', 'checkpoint'],
  ['Lora', 'lora'],
  ['LyCORIS', 'lora'],
  ['VAE', 'vae'],
  ['../embeddings', 'embedding'],
  ['embeddings', 'embedding'],
  ['ESRGAN', 'upscaler'],
  ['RealESRGAN', 'upscaler'],
  ['VAE-approx', 'taesd'],
]

const COMFY_TYPE_DIRS: Array<[string, ModelType]> = [
  ['models/checkpoints', 'checkpoint'],
  ['models/loras', 'lora'],
  ['models/vae', 'vae'],
  ['models/embeddings', 'embedding'],
  ['models/upscale_models', 'upscaler'],
  ['models/ipadapter', 'ip-adapter'],
  ['models/clip_vision', 'image-encoder'],
  ['models/vae_approx', 'taesd'],
]

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isDirectory()
  } catch {
    return false
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isFile()
  } catch {
    return false
  }
}

async function existingDirs(root: string, table: Array<[string, ModelType]>): Promise<TypeDir[]> {
  const out: TypeDir[] = []
  const seen = new Set<string>()
  for (const [rel, type] of table) {
    const dir = path.resolve(root, rel)
    // Case-insensitive file systems would list models/vae and models/VAE twice.
    let key = dir
    try {
      key = await fs.promises.realpath(dir)
    } catch {
      continue
    }
    if (seen.has(key) || !(await isDir(dir))) continue
    seen.add(key)
    out.push({ dir, type })
  }
  return out
}

/** Recognise how a folder is laid out. */
export async function detectLayout(root: string): Promise<RootLayout> {
  // A1111's capitalised names (ComfyUI's are lowercase plurals, so even a case-insensitive disk tells them apart).
  for (const rel of [
    'models/Stable-diffusion',
    'models/Lora',
    'models/LyCORIS',
    'Stable-diffusion',
    'Lora',
    'LyCORIS',
  ])
    if (await isDir(path.join(root, rel))) return 'a1111'
  if (await isFile(path.join(root, 'webui.py'))) return 'a1111'
  if (
    (await isDir(path.join(root, 'models', 'checkpoints'))) ||
    (await isDir(path.join(root, 'models', 'loras')))
  )
    return 'comfyui'
  for (const [rel] of ATELIER_TYPE_DIRS) if (await isDir(path.join(root, rel))) return 'atelier'
  return 'folder'
}

/** The folders to scan under a root and the type each one holds. */
export async function typeDirs(root: string, layout: RootLayout): Promise<TypeDir[]> {
  switch (layout) {
    case 'atelier':
      return existingDirs(root, ATELIER_TYPE_DIRS)
    case 'a1111': {
      const webui = await existingDirs(root, A1111_TYPE_DIRS)
      return webui.length > 0 ? webui : existingDirs(root, A1111_MODELS_TYPE_DIRS)
    }
    case 'comfyui':
      return existingDirs(root, COMFY_TYPE_DIRS)
    case 'folder':
      return (await isDir(root)) ? [{ dir: root, type: null }] : []
  }
}
