import fs from 'node:fs'
import path from 'node:path'
import { probeUpscaler } from '../../upscale/weights'
import { loadUpscalerWeights } from '../../upscale/weights'
import type { UpscalerWeights } from '../../upscale/weights'
import { UpscalerModel } from '../../upscale/model'
import type { FloatImage } from '../../upscale/model'
import {
  enhanceFloat,
  fromUint8Hwc,
  modScaleFor,
  padForModel,
  planTiles,
  toUint8Hwc,
} from '../../upscale/tiling'
import type { ReferenceCase, ReferenceManifest } from '../manifest'
import { caseText } from '../manifest'
import type { CaseContext, CaseRunner, RefTensor } from './types'
import { f32 } from './types'

/**
 * Upscaler cases (ESRGAN-family golden sets): the model is found from the case's `model` entry in the
 * manifest (its files), else from file names in the case text, else by probing every model file beside
 * the manifest; architecture and scale come from the weights. The image goes through RealESRGANer's
 * pre-pad / mod-pad / tiling rules with the case's parameters. Every other file of the same model (other
 * namings, .pth vs .safetensors) must give the same canonical weights, or the case fails.
 */

type Json = Record<string, unknown>

function obj(v: unknown): Json | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined
}

function num(p: Json | undefined, ...keys: string[]): number | undefined {
  for (const k of keys) if (typeof p?.[k] === 'number') return p[k] as number
  return undefined
}

const MODEL_FILE = /[\w.+-]+\.(?:safetensors|pth|pt|ckpt|bin)\b/g

/** The model files a case uses: preferred first (the one its text names), all of them existing. */
export function caseModelFiles(m: ReferenceManifest, c: ReferenceCase): string[] {
  const caseFiles = new Set(m.cases.map((x) => x.file))
  const exists = (f: string): boolean => !caseFiles.has(f) && fs.existsSync(path.join(m.dir, f))
  const entry = obj(obj((m as Json).model)?.[String((c as Json).model ?? '')])
  const listed = Object.keys(obj(entry?.files) ?? {}).filter(exists)
  const text = caseText({ ...c, params: undefined } as ReferenceCase)
  const named = [...new Set([...text.matchAll(MODEL_FILE)].map((h) => h[0]))].filter(exists)
  const preferred = named.find((n) => listed.length === 0 || listed.includes(n))
  const all = [...new Set([...(preferred ? [preferred] : []), ...listed, ...(listed.length ? [] : named)])]
  return all.map((f) => path.join(m.dir, f))
}

/** Any upscaler file beside the manifest (sets without a model section), preferring one of `scale`. */
async function probeDir(m: ReferenceManifest, c: ReferenceCase, scale?: number): Promise<string[]> {
  const caseFiles = new Set(m.cases.map((x) => x.file))
  const found: { file: string; scale: number }[] = []
  for (const f of fs.readdirSync(m.dir).sort()) {
    if (caseFiles.has(f) || !/\.(safetensors|pth|pt|ckpt|bin)$/.test(f)) continue
    const arch = await probeUpscaler(path.join(m.dir, f)).catch(() => null)
    if (arch) found.push({ file: path.join(m.dir, f), scale: arch.scale })
  }
  // Without a model section the choice is a guess: the first file (by name) of the wanted scale.
  const pick = found.find((x) => scale === undefined || x.scale === scale)
  if (!pick)
    throw new Error(`${m.path}: case ${c.name} needs an upscaler model; none found beside the manifest`)
  return [pick.file]
}

export function sameWeights(a: UpscalerWeights, b: UpscalerWeights): string | null {
  if (a.tensors.size !== b.tensors.size) return `${a.tensors.size} vs ${b.tensors.size} tensors`
  for (const [k, t] of a.tensors) {
    const u = b.tensors.get(k)
    if (!u) return `"${k}" is missing`
    if (t.shape.join(',') !== u.shape.join(',')) return `"${k}" has shape [${u.shape}] vs [${t.shape}]`
    for (let i = 0; i < t.data.length; i++) if (t.data[i] !== u.data[i]) return `"${k}" differs at ${i}`
  }
  return null
}

async function modelFor(ctx: CaseContext): Promise<UpscalerModel> {
  const params = obj((ctx.def as Json).params)
  let files = caseModelFiles(ctx.manifest, ctx.def)
  if (!files.length) files = await probeDir(ctx.manifest, ctx.def, num(params, 'scale'))
  const [first, ...rest] = files as [string, ...string[]]
  const w = await loadUpscalerWeights(first)
  // The other files of the model (other namings, .pth vs .safetensors) are checked, not used: a difference
  // is reported in the log (the outputs come from the preferred file either way).
  for (const other of rest) {
    const diff = await loadUpscalerWeights(other).then(
      (o) => sameWeights(w, o),
      (err: unknown) => `cannot be read (${err instanceof Error ? err.message : String(err)})`,
    )
    if (diff) ctx.log(`warning: ${path.basename(other)} differs from ${path.basename(first)}: ${diff}`)
  }
  ctx.log(
    `model ${path.basename(first)}${rest.length ? ` (= ${rest.map((f) => path.basename(f)).join(', ')})` : ''}`,
  )
  // The run's provider (--provider): the oracle checks every provider, not only the CPU.
  return UpscalerModel.fromWeights(w, ctx.models.session ?? { preference: 'cpu' })
}

async function inputImage(ctx: CaseContext): Promise<FloatImage> {
  if (ctx.hasGiven('image')) {
    const t = await ctx.given('image')
    const [, c = 3, h = 0, w = 0] = t.shape
    return { data: t.data as Float32Array, channels: c, height: h, width: w }
  }
  const u = await ctx.given('image_uint8_hwc')
  const [h = 0, w = 0, c = 3] = u.shape
  return fromUint8Hwc(u.data as Uint8Array, h, w, c)
}

function u8(img: FloatImage): RefTensor {
  return { dtype: 'U8', shape: [img.height, img.width, img.channels], data: toUint8Hwc(img) }
}

export const upscaleCase: CaseRunner = async (ctx) => {
  const model = await modelFor(ctx)
  try {
    return await runWith(ctx, model)
  } finally {
    await model.release()
  }
}

async function runWith(ctx: CaseContext, model: UpscalerModel): Promise<Record<string, RefTensor>> {
  const params = obj((ctx.def as Json).params) ?? {}
  const scale = num(params, 'scale')
  if (scale !== undefined && scale !== model.scale)
    throw new Error(`the case wants scale ${scale} but the model's weights say x${model.scale}`)
  const img = await inputImage(ctx)
  const prePad = num(params, 'pre_pad') ?? 0
  const tileSize = num(params, 'tile_size', 'tile') ?? 0
  const tilePad = num(params, 'tile_pad') ?? 10
  const out: Record<string, RefTensor> = {}
  const run = (tile: number): Promise<FloatImage> =>
    enhanceFloat(model, img, { tile, tilePad, prePad, signal: ctx.signal })
  const emit = (suffix: string, r: FloatImage): void => {
    out[`output${suffix}`] = f32([1, r.channels, r.height, r.width], r.data)
    out[`output${suffix}_uint8_hwc`] = u8(r)
  }
  const names = [...ctx.def.expected, ...ctx.def.trace]
  if (names.some((n) => n === 'output' || n === 'output_uint8_hwc')) emit('', await run(tileSize))
  if (names.some((n) => n.startsWith('output_tiled'))) emit('_tiled', await run(tileSize))
  if (names.some((n) => n.startsWith('output_untiled'))) emit('_untiled', await run(0))

  // Cheap traces: the padded model input, and the padded input of every tile.
  const { padded } = padForModel(img, prePad, modScaleFor(model.scale, model.multiple))
  if (ctx.wants('trace_padded_input'))
    out.trace_padded_input = f32([1, padded.channels, padded.height, padded.width], padded.data)
  const tiles = planTiles(padded.height, padded.width, tileSize, tilePad)
  const listed = Array.isArray(params.tiles) ? (params.tiles as Json[]) : []
  listed.forEach((t, i) => {
    const rect = t.padded_input_rect_yx as number[][] | undefined
    const mine = tiles[i]
    if (
      rect &&
      mine &&
      JSON.stringify(rect) !==
        JSON.stringify([
          [mine.py0, mine.py1],
          [mine.px0, mine.px1],
        ])
    )
      throw new Error(
        `tile ${i}: the case lists ${JSON.stringify(rect)}, the tiling rule gives another rectangle`,
      )
  })
  if (listed.length && listed.length !== tiles.length)
    throw new Error(`the case lists ${listed.length} tiles, the tiling rule makes ${tiles.length}`)
  tiles.forEach((t, i) => {
    const name = `trace_tile_${String(i).padStart(2, '0')}_input`
    if (!ctx.wants(name)) return
    const c = padded.channels
    const h = t.py1 - t.py0
    const w = t.px1 - t.px0
    const d = new Float32Array(c * h * w)
    for (let k = 0; k < c; k++)
      for (let y = 0; y < h; y++) {
        const src = (k * padded.height + t.py0 + y) * padded.width + t.px0
        d.set(padded.data.subarray(src, src + w), (k * h + y) * w)
      }
    out[name] = f32([1, c, h, w], d)
  })
  return out
}

/** Whether a case is an upscaler case by its manifest (for sets whose case names are not known here). */
export function isUpscaleCase(m: ReferenceManifest, c: ReferenceCase): boolean {
  const entry = obj(obj((m as Json).model)?.[String((c as Json).model ?? '')])
  const arch = typeof entry?.arch === 'string' ? entry.arch : ''
  if (/RRDBNet|SRVGG|ESRGAN/i.test(arch)) return true
  const up = typeof (c as Json).upstream === 'string' ? ((c as Json).upstream as string) : ''
  return /RRDBNet|SRVGGNetCompact|RealESRGANer/.test(up) && c.expected.some((n) => n.startsWith('output'))
}
