import fs from 'node:fs'
import type { Command } from 'commander'
import type { ImagePromptRequest } from '../../../preload/contract-types'
import { CliError } from '../errors'

/**
 * Image-prompt flags shared by txt2img, img2img and blend: `--ip-image file[:weight]` (repeatable; the
 * weight is the IP-Adapter scale, default 1; a path may itself contain ':' as on Windows), `--ip-adapter`
 * and `--image-encoder` (library name/id, file, or for the encoder a Hugging Face image_encoder/ folder).
 */

export interface ImagePromptOptions {
  ipImage?: string[]
  ipAdapter?: string
  imageEncoder?: string
}

/** `file[:weight]` -> path and weight (a trailing `:<number>` is the weight). */
export function parseIpImageFlag(v: string): { path: string; weight: number } {
  const m = /^(.+?):(-?[0-9]*\.?[0-9]+)$/.exec(v.trim())
  const file = m && !fs.existsSync(v) ? (m[1] as string) : v.trim()
  const weight = m && !fs.existsSync(v) ? Number(m[2]) : 1
  if (!file) throw new CliError(`--ip-image: "${v}" is not file[:weight]`)
  if (!(weight >= 0 && weight <= 2)) throw new CliError(`--ip-image ${v}: the weight must be between 0 and 2`)
  return { path: file, weight }
}

export function imagePromptsFromFlags(flags: string[], flag = '--ip-image'): ImagePromptRequest[] {
  return flags.map((v) => {
    const { path, weight } = parseIpImageFlag(v)
    let image: Uint8Array
    try {
      image = new Uint8Array(fs.readFileSync(path))
    } catch (err) {
      const code = (err as { code?: string }).code
      throw new CliError(`${flag} ${path}: ${code === 'ENOENT' ? 'no such file' : String(err)}`)
    }
    return { image, weight }
  })
}

/** The request fields the flags describe (nothing when no --ip-image is given). */
export function imagePromptRequest(o: ImagePromptOptions): {
  imagePrompts?: ImagePromptRequest[]
  ipAdapter?: string
  imageEncoder?: string
} {
  return {
    ...(o.ipImage?.length ? { imagePrompts: imagePromptsFromFlags(o.ipImage) } : {}),
    ...(o.ipAdapter ? { ipAdapter: o.ipAdapter } : {}),
    ...(o.imageEncoder ? { imageEncoder: o.imageEncoder } : {}),
  }
}

const collect = (v: string, acc: string[]): string[] => [...acc, v]

export function addImagePromptOptions(cmd: Command, withImages = true): Command {
  if (withImages)
    cmd.option(
      '--ip-image <file[:weight]>',
      'image prompt (IP-Adapter reference image) with its weight = adapter scale, default 1 (repeatable; several are averaged)',
      collect,
      [],
    )
  return cmd
    .option(
      '--ip-adapter <name|file>',
      'IP-Adapter model (default: the library adapter for the model family)',
    )
    .option(
      '--image-encoder <name|path>',
      'CLIP image encoder: library name, weights file or image_encoder/ folder (default: the one the adapter needs)',
    )
}
