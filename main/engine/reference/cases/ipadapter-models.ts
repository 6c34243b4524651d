import fs from 'node:fs'
import path from 'node:path'
import { convertCheckpoint } from '../../convert/convert'
import { readHeader } from '../../../model-formats/safetensors'
import type { IpAdapterWeights } from '../../ipadapter/adapter'
import { loadIpAdapter, looksLikeIpAdapter } from '../../ipadapter/adapter'
import { ImageEncoder } from '../../ipadapter/image-encoder'
import { ImagePromptEncoder } from '../../ipadapter/image-prompt'
import { tensorShapes } from '../../../model-formats/tensor-file'
import { ipUnetVariant } from '../../ipadapter/unet-variant'
import { IP_SCALE_INPUT } from '../../ipadapter/unet-hook'
import { ModelSet } from '../../runtime/model-set'
import type { ReferenceManifest } from '../manifest'
import type { ReferenceModels } from '../models'

/**
 * The model files of an IP-Adapter reference set, found by content, never by fixed names: every path the
 * manifest mentions anywhere (its model section, file list, case texts) plus the files beside it, then
 * classified by their tensor names: an IP-Adapter (image_proj.* + ip_adapter.N.to_k_ip), a CLIP image
 * encoder (vision_model.*, in a Hugging Face `image_encoder/` folder or alone) and an SD checkpoint
 * (model.diffusion_model.* or a diffusers folder), which may live in a sibling set (`../oracle/...`).
 */

interface Found {
  adapters: string[]
  encoders: string[]
  checkpoints: string[]
}

const WEIGHTS = /\.(safetensors|bin|pt|pth)$/i

function mentioned(m: ReferenceManifest): string[] {
  const out = new Set<string>()
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      for (const hit of v.matchAll(/[\w./-]+(?:\.(?:safetensors|bin|pt|pth)|\/)(?=$|[\s'",)])/g))
        out.add(hit[0])
    } else if (Array.isArray(v)) v.forEach(walk)
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (k === 'tensors') continue
        walk(k)
        walk(x)
      }
  }
  walk(m)
  return [...out]
}

function nearby(dir: string): string[] {
  const out: string[] = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isFile() && WEIGHTS.test(e.name)) out.push(e.name)
    if (e.isDirectory() && !e.name.startsWith('.')) {
      out.push(`${e.name}/`)
      for (const f of fs.readdirSync(path.join(dir, e.name))) if (WEIGHTS.test(f)) out.push(`${e.name}/${f}`)
    }
  }
  return out
}

async function classify(m: ReferenceManifest): Promise<Found> {
  const caseFiles = new Set(m.cases.map((c) => path.resolve(m.dir, c.file)))
  const f: Found = { adapters: [], encoders: [], checkpoints: [] }
  const seen = new Set<string>()
  for (const rel of [...mentioned(m), ...nearby(m.dir)]) {
    const abs = path.resolve(m.dir, rel)
    if (seen.has(abs) || caseFiles.has(abs) || !fs.existsSync(abs)) continue
    seen.add(abs)
    if (fs.statSync(abs).isDirectory()) {
      if (fs.existsSync(path.join(abs, 'unet')) && fs.existsSync(path.join(abs, 'vae')))
        f.checkpoints.push(abs)
      else if (fs.existsSync(path.join(abs, 'config.json'))) {
        const w = ['model.safetensors', 'pytorch_model.bin'].map((n) => path.join(abs, n)).find(fs.existsSync)
        const keys = w ? await tensorShapes(w) : null
        if (keys && [...keys.keys()].some((k) => k.startsWith('vision_model.'))) {
          f.encoders.push(abs)
          if (w) seen.add(w)
        }
      }
      continue
    }
    if (abs.endsWith('.safetensors')) {
      const header = await readHeader(abs).catch(() => null)
      if (header && [...header.tensors.keys()].some((k) => k.startsWith('model.diffusion_model.'))) {
        f.checkpoints.push(abs)
        continue
      }
    }
    const keys = await tensorShapes(abs)
    if (!keys) continue
    if (looksLikeIpAdapter(keys.keys())) f.adapters.push(abs)
    else if ([...keys.keys()].some((k) => k.startsWith('vision_model.'))) f.encoders.push(abs)
  }
  return f
}

const found = new WeakMap<ReferenceManifest, Promise<Found>>()

function need(list: string[], what: string, m: ReferenceManifest): string {
  const first = list[0]
  if (!first)
    throw new Error(`${m.path}: no ${what} found (looked at the files the manifest names and beside it)`)
  return first
}

/** The models one IP-Adapter case runs with; release() frees every session it opened. */
export class IpAdapterCaseModels {
  private encoder: ImagePromptEncoder | undefined
  private ipModels: ModelSet | undefined

  private constructor(
    readonly manifest: ReferenceManifest,
    readonly models: ReferenceModels,
    readonly files: { adapter: string; encoder: string; checkpoint: string },
  ) {}

  static async open(manifest: ReferenceManifest, models: ReferenceModels): Promise<IpAdapterCaseModels> {
    let p = found.get(manifest)
    if (!p) {
      p = classify(manifest)
      found.set(manifest, p)
    }
    const f = await p
    return new IpAdapterCaseModels(manifest, models, {
      adapter: need(f.adapters, 'IP-Adapter weights', manifest),
      encoder: need(f.encoders, 'CLIP image encoder', manifest),
      checkpoint: need(f.checkpoints, 'SD checkpoint', manifest),
    })
  }

  adapter(): Promise<IpAdapterWeights> {
    return loadIpAdapter(this.files.adapter)
  }

  async imagePrompts(): Promise<ImagePromptEncoder> {
    if (!this.encoder) {
      const enc = await ImageEncoder.open(this.files.encoder, {
        cacheRoot: this.models.cacheRoot,
        session: this.models.session,
      })
      this.encoder = new ImagePromptEncoder(enc, await this.adapter())
    }
    return this.encoder
  }

  /** The plain model set (text-only UNet, VAE) of the checkpoint. */
  baseSet(): Promise<ModelSet> {
    return this.models.modelSet(this.files.checkpoint)
  }

  /** The checkpoint's model set with the IP-Adapter UNet, at this scale (changeable with setScale). */
  async ipSet(scale: number): Promise<ModelSet> {
    if (!this.ipModels) {
      const converted = await convertCheckpoint(this.files.checkpoint, {
        cacheRoot: this.models.cacheRoot,
        precision: 'fp32',
      })
      const v = await ipUnetVariant(converted, await this.adapter(), { cacheRoot: this.models.cacheRoot })
      this.ipModels = new ModelSet(
        `ip:${this.files.checkpoint}`,
        { ...converted.paths, unet: v.path },
        this.models.session,
        { unet: { [IP_SCALE_INPUT]: scale } },
      )
    }
    this.ipModels.setInputs({ unet: { [IP_SCALE_INPUT]: scale } })
    return this.ipModels
  }

  async release(): Promise<void> {
    await this.encoder?.release()
    await this.ipModels?.release()
    this.encoder = undefined
    this.ipModels = undefined
  }
}
