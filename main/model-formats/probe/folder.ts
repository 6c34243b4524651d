import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { MAX_SIDECAR_BYTES, readTextCapped } from '../../platform/read-capped'
import { detectPickle, PickleRefusedError } from '../pickle'
import { readHeader } from '../safetensors'
import { KeyView } from './keys'
import type { ProbeDraft } from './single-file'
import { finalize, variantFromInChannels, withFileName } from './single-file'
import { civitaiBaseModelBeside } from './flavor'
import { hfClipArch } from './text-encoder'
import type { Base, ProbeResult, TextEncoderArch, Variant } from './types'
import { ProbeError } from './types'
import { unetFromDiffusers, withAdditionTimeDim, withConfigHeads, withHeads } from './unet'
import { DEFAULT_SCALING, vaeArch, vaeBase } from './vae'

type Json = Record<string, unknown>

async function readJson(file: string): Promise<Json | undefined> {
  if (!existsSync(file)) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(await readTextCapped(file, MAX_SIDECAR_BYTES))
  } catch (err) {
    throw new ProbeError(
      `${file}: not valid JSON (${err instanceof Error ? err.message : String(err)})`,
      'bad-config',
    )
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ProbeError(`${file}: expected a JSON object`, 'bad-config')
  }
  return parsed as Json
}

const str = (j: Json | undefined, k: string) => (typeof j?.[k] === 'string' ? (j[k] as string) : undefined)
const num = (j: Json | undefined, k: string) => (typeof j?.[k] === 'number' ? (j[k] as number) : undefined)

/** The component's safetensors weights (full precision preferred); pickles are refused. */
async function weightsOf(dir: string, stem: string): Promise<string | undefined> {
  if (!existsSync(dir)) return undefined
  const names = await readdir(dir)
  for (const n of [`${stem}.safetensors`, `${stem}.fp16.safetensors`])
    if (names.includes(n)) return path.join(dir, n)
  const any = names.find((n) => n.endsWith('.safetensors'))
  if (any) return path.join(dir, any)
  const pickled = names.find((n) => /\.(bin|pt|pth|ckpt)$/.test(n))
  if (pickled) {
    const file = path.join(dir, pickled)
    throw new PickleRefusedError(file, (await detectPickle(file)) ?? 'pickle')
  }
  return undefined
}

async function view(file: string): Promise<KeyView> {
  return KeyView.of((await readHeader(file)).tensors)
}

/** Like withFileName, for async work: ProbeErrors name the file they came from. */
async function guarded<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    return withFileName(file, () => {
      throw err
    })
  }
}

async function textEncoder(dir: string, defaultAct: TextEncoderArch['hiddenAct']) {
  const file = await weightsOf(dir, 'model')
  if (!file) return undefined
  const cfg = await readJson(path.join(dir, 'config.json'))
  const act =
    str(cfg, 'hidden_act') === 'gelu'
      ? 'gelu'
      : str(cfg, 'hidden_act') === 'quick_gelu'
        ? 'quick_gelu'
        : defaultAct
  return { file, arch: await guarded(file, async () => hfClipArch(await view(file), act)) }
}

function onnxDraft(dir: string, index: Json | undefined): ProbeDraft {
  const cls = str(index, '_class_name') ?? ''
  const sdxl = /XL/.test(cls) || existsSync(path.join(dir, 'text_encoder_2'))
  const files: Record<string, string> = {}
  for (const c of ['unet', 'vae_decoder', 'vae_encoder', 'text_encoder', 'text_encoder_2']) {
    const f = path.join(dir, c, 'model.onnx')
    if (existsSync(f)) files[c] = f
  }
  const base: Base | null = sdxl ? 'sdxl' : null
  return { path: dir, format: 'onnx', type: 'checkpoint', base, variant: 'normal', files }
}

/** A diffusers `vae/` folder (AutoencoderKL config + weights) probed on its own. */
async function vaeFolder(dir: string, cfg: Json): Promise<ProbeDraft> {
  const file = await weightsOf(dir, 'diffusion_pytorch_model')
  if (!file) throw new ProbeError(`${dir}: no diffusion_pytorch_model.safetensors`, 'missing-weights')
  const scaling = num(cfg, 'scaling_factor') ?? DEFAULT_SCALING['sd-1']
  const vae = await guarded(file, async () => vaeArch(await view(file), scaling))
  const scalingFactor = num(cfg, 'scaling_factor')
  // A diffusers vae/ folder is named after its repo (sdxl-vae, sd-vae-ft-mse) or sits in one.
  const named = path.basename(dir) === 'vae' ? path.dirname(dir) : dir
  return {
    path: dir,
    format: 'diffusers',
    type: 'vae',
    base: vaeBase({
      file: named,
      latentChannels: vae.latentChannels,
      ...(scalingFactor !== undefined ? { scalingFactor } : {}),
    }),
    variant: 'normal',
    files: { vae: file },
    vae,
  }
}

/** Probe a diffusers pipeline folder, an ONNX pipeline folder or a diffusers VAE folder. */
export async function probeFolder(dir: string): Promise<ProbeResult> {
  const index = await readJson(path.join(dir, 'model_index.json'))
  const cls = str(index, '_class_name') ?? ''
  if (cls.startsWith('Onnx') || existsSync(path.join(dir, 'unet', 'model.onnx')))
    return finalize(onnxDraft(dir, index))
  const own = await readJson(path.join(dir, 'config.json'))
  if (!index && str(own, '_class_name') === 'AutoencoderKL') return finalize(await vaeFolder(dir, own!))
  if (!index && !existsSync(path.join(dir, 'unet'))) {
    throw new ProbeError(
      `${dir}: not a model folder (no model_index.json or unet/); Atelier reads diffusers and ONNX pipeline folders`,
      'unknown-model',
    )
  }

  const unetDir = path.join(dir, 'unet')
  const unetFile = await weightsOf(unetDir, 'diffusion_pytorch_model')
  if (!unetFile)
    throw new ProbeError(
      `${unetDir}: no UNet weights (diffusion_pytorch_model.safetensors)`,
      'missing-weights',
    )
  const unetCfg = await readJson(path.join(unetDir, 'config.json'))
  const unetView = await view(unetFile)
  const unetShape = withFileName(unetFile, () => unetFromDiffusers(unetView))
  const te1 = await textEncoder(path.join(dir, 'text_encoder'), 'quick_gelu')
  const te2 = await textEncoder(path.join(dir, 'text_encoder_2'), 'gelu')
  const ctx = unetShape.contextDim

  let base: Base
  let variant: Variant = variantFromInChannels(unetShape.inChannels, unetFile)
  if (
    te2 ||
    str(unetCfg, 'addition_embed_type') === 'text_time' ||
    unetShape.additionEmbedInDim !== undefined
  ) {
    base = 'sdxl'
    if ((te2 && !te1) || (!te1 && ctx === 1280) || num(index, 'requires_aesthetics_score') !== undefined)
      variant = 'refiner'
  } else if (ctx === 768) base = 'sd-1'
  else if (ctx === 1024 || te1?.arch?.hiddenAct === 'gelu' || unetShape.linearProjection) base = 'sd-2'
  else base = 'sd-1'

  const textEncoders = [te1?.arch, te2?.arch].filter((t) => t !== undefined)
  const heads = (unetCfg && withConfigHeads(unetShape, unetCfg)) ?? withHeads(unetShape, base)
  const unet = withAdditionTimeDim(heads, te2?.arch?.projectionDim, variant === 'refiner')

  const files: Record<string, string> = { unet: unetFile }
  const vaeDir = path.join(dir, 'vae')
  const vaeFile = await weightsOf(vaeDir, 'diffusion_pytorch_model')
  const vaeCfg = await readJson(path.join(vaeDir, 'config.json'))
  let vae
  if (vaeFile) {
    files.vae = vaeFile
    const scaling = num(vaeCfg, 'scaling_factor') ?? DEFAULT_SCALING[base]
    vae = await guarded(vaeFile, async () => vaeArch(await view(vaeFile), scaling))
  }
  if (te1) files.text_encoder = te1.file
  if (te2) files.text_encoder_2 = te2.file
  for (const t of ['tokenizer', 'tokenizer_2'])
    if (existsSync(path.join(dir, t))) files[t] = path.join(dir, t)
  const sched = await readJson(path.join(dir, 'scheduler', 'scheduler_config.json'))
  const pt = str(sched, 'prediction_type')
  const predictionType = pt === 'epsilon' || pt === 'v_prediction' || pt === 'sample' ? pt : undefined
  const dtype = unetView.dominantDtype()

  const civitai = await civitaiBaseModelBeside(dir)
  return finalize(
    {
      path: dir,
      format: 'diffusers',
      type: 'checkpoint',
      base,
      variant,
      files,
      ...(dtype ? { dtype } : {}),
      ...(predictionType ? { predictionType } : {}),
      unet,
      ...(vae ? { vae } : {}),
      textEncoders,
    },
    civitai,
  )
}
