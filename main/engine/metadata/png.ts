import pkg from '../../../package.json'
import { encodePng } from '../image/codec'
import type { RawImage } from '../image/types'
import { formatInfotext, parseInfotext } from './infotext'
import type { GenerationParameters } from './infotext'
import { parseComfyGraph } from './comfy'
import { parseInvokeAIMetadata } from './invokeai'
import { insertPngText, readPngText } from './png-chunks'

/** `Version:` written by Atelier. */
export const ATELIER_VERSION = `atelier-${pkg.version}`

export const PARAMETERS_KEYWORD = 'parameters'

/**
 * Encode an image (sharp, fixed options) and add the A1111 `parameters` chunk. The pixel data (IDAT) is exactly
 * what encodePng gives, so the same seed and settings give the same file.
 * `version` defaults to ATELIER_VERSION when the parameters carry none.
 */
export async function encodePngWithParameters(img: RawImage, params: GenerationParameters): Promise<Buffer> {
  return addParametersToPng(await encodePng(img), params)
}

/** Add (or replace) the `parameters` chunk of an existing PNG; all other bytes are kept. */
export function addParametersToPng(png: Uint8Array, params: GenerationParameters, name = 'image'): Buffer {
  const text = formatInfotext({ ...params, version: params.version ?? ATELIER_VERSION })
  return insertPngText(png, [{ keyword: PARAMETERS_KEYWORD, text }], name)
}

export interface ReadParametersResult {
  params: GenerationParameters
  /** Where they came from. */
  source: 'parameters' | 'invokeai_metadata' | 'comfyui'
  /** The raw text of that chunk. */
  raw: string
  /** ComfyUI: parts of the graph that were not restored (readable). */
  notRestored?: string[]
}

/**
 * Generation parameters stored in a PNG: A1111-style `parameters` (tEXt, zTXt or iTXt; also what Atelier, Forge,
 * Fooocus in A1111 mode and SD.Next write), InvokeAI's `invokeai_metadata`, or ComfyUI's `prompt` / `workflow`
 * graph (comfy.ts). Undefined when there are none.
 * Throws PngFormatError for a file that is not a PNG.
 */
export function readGenerationParameters(png: Uint8Array, name = 'image'): ReadParametersResult | undefined {
  const entries = readPngText(png, name)
  const a1111 = entries.find((e) => e.keyword === PARAMETERS_KEYWORD)
  if (a1111) return { params: parseInfotext(a1111.text), source: 'parameters', raw: a1111.text }
  const invoke = entries.find((e) => e.keyword === 'invokeai_metadata')
  if (invoke) {
    const params = parseInvokeAIMetadata(invoke.text)
    if (params) return { params, source: 'invokeai_metadata', raw: invoke.text }
  }
  // ComfyUI: the API graph (`prompt`), else the editor graph (`workflow`); plain-text `prompt` chunks of other
  // tools are not JSON objects and are left alone.
  const json = (k: string) => entries.find((e) => e.keyword === k && e.text.trimStart().startsWith('{'))
  const comfy = json('prompt') ?? json('workflow')
  if (comfy) {
    const r = parseComfyGraph(comfy.text, comfy.keyword === 'prompt' ? 'prompt' : 'workflow')
    return { params: r.params, source: 'comfyui', raw: comfy.text, notRestored: r.notRestored }
  }
  return undefined
}
