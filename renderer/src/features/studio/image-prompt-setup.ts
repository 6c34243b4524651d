/**
 * Can image prompts (Blend, --iw, reference images) run with what the library holds? They need an
 * IP-Adapter that fits the checkpoint's family and a CLIP image encoder. When one is missing, the studio says
 * so before any image is picked and offers the files to install from Hugging Face (h94/IP-Adapter, the
 * adapters A1111 and ComfyUI users install). Pure: unit-tested.
 */

export const IP_ADAPTER_REPO = 'h94/IP-Adapter'

export interface SetupFile {
  repo: string
  path: string
  what: 'IP-Adapter' | 'image encoder'
  /** Approximate download size, for the offer's label. */
  size: string
}

/** The ViT-H/14 encoder both the SD 1.5 adapter and SDXL's "vit-h" adapter take. */
const VIT_H: SetupFile = {
  repo: IP_ADAPTER_REPO,
  path: 'models/image_encoder/model.safetensors',
  what: 'image encoder',
  size: '2.5 GB',
}

const SOURCES: Record<string, { adapter: SetupFile; encoder: SetupFile }> = {
  'sd-1': {
    adapter: {
      repo: IP_ADAPTER_REPO,
      path: 'models/ip-adapter_sd15.safetensors',
      what: 'IP-Adapter',
      size: '44 MB',
    },
    encoder: VIT_H,
  },
  sdxl: {
    adapter: {
      repo: IP_ADAPTER_REPO,
      path: 'sdxl_models/ip-adapter_sdxl_vit-h.safetensors',
      what: 'IP-Adapter',
      size: '698 MB',
    },
    encoder: VIT_H,
  },
}

export interface SetupCheck {
  /** No IP-Adapter that fits the checkpoint (an adapter of unknown family counts as fitting). */
  adapter: boolean
  /** No CLIP image encoder at all. */
  encoder: boolean
}

export function missingForImagePrompts(
  family: string | null | undefined,
  adapters: readonly { family: string | null }[],
  encoders: readonly unknown[],
): SetupCheck {
  return {
    adapter: !adapters.some((a) => !family || !a.family || a.family === family),
    encoder: encoders.length === 0,
  }
}

/** The files to install for what is missing, or undefined when the family has no known adapter. */
export function setupFiles(family: string | null | undefined, missing: SetupCheck): SetupFile[] | undefined {
  const src = SOURCES[family ?? 'sd-1']
  if (!src) return undefined
  return [...(missing.adapter ? [src.adapter] : []), ...(missing.encoder ? [src.encoder] : [])]
}

/** "Blend needs an IP-Adapter for SD 1.x and a CLIP image encoder; neither is installed." */
export function missingText(purpose: string, familyName: string, missing: SetupCheck): string {
  const parts = [
    ...(missing.adapter ? [`an IP-Adapter for ${familyName}`] : []),
    ...(missing.encoder ? ['a CLIP image encoder'] : []),
  ]
  const none = parts.length > 1 ? 'neither is installed' : 'none is installed'
  return `${purpose} needs ${parts.join(' and ')}; ${none}.`
}
