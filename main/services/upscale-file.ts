/**
 * `atelier upscale`: one picture file to another through an upscaler model (ESRGAN / Real-ESRGAN / compact) or
 * Lanczos. Upscaler names resolve as generation resolves them: a keyword, a file, or an upscaler in the library.
 */
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { decodeImageWithAlpha, encodePng } from '../engine/image/codec'
import type { ProviderSkip } from '../engine/runtime/providers'
import { isProviderPreference, PROVIDERS } from '../engine/runtime/providers'
import type { UpscaleProgress, UpscalerChoice } from '../engine/upscale/service'
import { resolveUpscaler, UpscaleService } from '../engine/upscale/service'
import { describeArch } from '../model-formats/probe/upscaler'
import type { Services } from './container'
import { AppError } from './errors'

export type { UpscaleProgress }

export interface UpscaleFileRequest {
  /** lanczos, nearest, a .pth / .safetensors file, or a library upscaler (name or id). */
  upscaler: string
  input: string
  output: string
  /** Default: the model's own factor, 2 for Lanczos; ignored when width or height is given. */
  scale?: number
  width?: number
  height?: number
  tile?: number
  tilePad?: number
  /** Execution provider: auto, cpu, cuda, dml, coreml, webgpu. */
  provider?: string
  signal?: AbortSignal
  onProgress?: (p: UpscaleProgress) => void
  /** What runs: "Lanczos" or "<file>: <architecture> on <provider>". */
  onStart?: (label: string) => void
  onFallback?: (s: ProviderSkip) => void
}

export interface UpscaleFileResult {
  width: number
  height: number
  inputWidth: number
  inputHeight: number
}

/** An execution provider name from a user, or a clear error naming the ones there are. */
export function providerPreference(name: string): 'auto' | (typeof PROVIDERS)[number] {
  if (!isProviderPreference(name))
    throw new AppError(
      'invalid-input',
      `unknown execution provider "${name}"; use auto, ${PROVIDERS.join(', ')}`,
    )
  return name
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err))

async function choice(services: Pick<Services, 'resolvers'>, name: string): Promise<UpscalerChoice> {
  try {
    return resolveUpscaler(name)
  } catch {
    // Not a keyword or a file: the library (by name or id) or a file of that name in its folders.
  }
  let file: string | undefined
  try {
    file = await services.resolvers.upscaler?.(name)
  } catch {
    // not found there either: the engine's message below names every form an upscaler may take
  }
  try {
    return resolveUpscaler(name, () => file)
  } catch (err) {
    throw new AppError('not-found', message(err))
  }
}

export async function upscaleFile(
  services: Pick<Services, 'resolvers'>,
  req: UpscaleFileRequest,
): Promise<UpscaleFileResult> {
  const preference = providerPreference(req.provider ?? 'auto')
  const upscaler = await choice(services, req.upscaler)
  let bytes: Buffer
  try {
    bytes = await readFile(req.input)
  } catch {
    throw new AppError('not-found', `${req.input}: cannot read the input picture`)
  }
  const img = await decodeImageWithAlpha(bytes, { name: req.input }).catch((err: unknown) => {
    throw new AppError('invalid-input', message(err))
  })
  const service = new UpscaleService({
    preference,
    ...(req.onFallback ? { onFallback: req.onFallback } : {}),
  })
  try {
    let scale = req.scale
    let label = 'Lanczos'
    if (upscaler.kind === 'nearest') label = 'Nearest'
    if (upscaler.kind === 'model') {
      const model = await service.model(upscaler.file).catch((err: unknown) => {
        throw new AppError('invalid-input', message(err))
      })
      label = `${path.basename(upscaler.file)}: ${describeArch(model.arch)} on ${model.provider}`
      scale ??= req.width === undefined && req.height === undefined ? model.scale : undefined
    }
    req.onStart?.(label)
    const out = await service
      .upscale(img, {
        upscaler,
        scale,
        width: req.width,
        height: req.height,
        tile: req.tile,
        tilePad: req.tilePad,
        signal: req.signal,
        onProgress: req.onProgress,
      })
      .catch((err: unknown) => {
        if (req.signal?.aborted) throw new AppError('cancelled', 'cancelled')
        throw new AppError('invalid-input', message(err))
      })
    await writeFile(req.output, await encodePng(out))
    return { width: out.width, height: out.height, inputWidth: img.width, inputHeight: img.height }
  } finally {
    await service.release()
  }
}
