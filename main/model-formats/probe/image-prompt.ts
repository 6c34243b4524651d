import path from 'node:path'
import { tensorShapes } from '../tensor-file'
import type { ProbeInfo } from './identify'
import { describeIpAdapter, looksLikeIpAdapter } from './ip-adapter'

/**
 * The library's view of image-prompt models, from tensor names and shapes only: IP-Adapters (`ip-adapter`,
 * family by token width) and CLIP image encoders (`image-encoder`, Hugging Face `vision_model.*` naming), as
 * .safetensors or pickles read with the safe reader. null for anything else (the generic probe takes over).
 */

const FILES = /\.(safetensors|sft|bin|pt|pth)$/i

function towerName(width: number, layers: number, proj: number | undefined): string {
  const known: Record<string, string> = {
    '1280x32': 'OpenCLIP ViT-H/14',
    '1664x48': 'OpenCLIP ViT-bigG/14',
    '1024x24': 'CLIP ViT-L/14',
    '768x12': 'CLIP ViT-B',
  }
  const name = known[`${width}x${layers}`] ?? `CLIP vision ${width} wide, ${layers} layers`
  return `${name} image encoder${proj ? ` (embeddings ${proj})` : ''}`
}

export async function imagePromptModelInfo(file: string): Promise<ProbeInfo | null> {
  if (!FILES.test(file)) return null
  const shapes = await tensorShapes(file)
  if (!shapes) return null
  const format = /\.(safetensors|sft)$/i.test(file) ? 'safetensors' : 'pickle'
  if (looksLikeIpAdapter(shapes.keys())) {
    try {
      const a = describeIpAdapter(file, shapes)
      return {
        format,
        type: 'ip-adapter',
        family: a.family === 'sd-1' || a.family === 'sdxl' || a.family === 'sd-2' ? a.family : null,
        variant: null,
        architecture: `IP-Adapter (${a.tokens} image tokens, ${a.layers.length} layers, CLIP embeddings ${a.clipEmbeddingsDim})`,
        note: null,
      }
    } catch (err) {
      return {
        format,
        type: 'ip-adapter',
        family: null,
        variant: null,
        architecture: 'IP-Adapter',
        note: err instanceof Error ? err.message.replace(` (${file})`, '') : String(err),
      }
    }
  }
  const patch = shapes.get('vision_model.embeddings.patch_embedding.weight')
  if (patch) {
    let layers = 0
    while (shapes.has(`vision_model.encoder.layers.${layers}.self_attn.q_proj.weight`)) layers++
    const proj = shapes.get('visual_projection.weight')?.[0]
    return {
      format,
      type: 'image-encoder',
      family: null,
      variant: null,
      architecture: towerName(patch[0] ?? 0, layers, proj),
      note: proj
        ? null
        : `${path.basename(file)} has no visual_projection: IP-Adapter needs CLIPVisionModelWithProjection weights`,
    }
  }
  return null
}
