import fs from 'node:fs'
import path from 'node:path'
import { convertCheckpoint } from '../convert/convert'
import type { ConvertedModel } from '../convert/convert'
import type { LoraSpec } from '../lora/variant'
import { applyLoras } from '../lora/variant'
import { readHeader } from '../../model-formats/safetensors'
import { ModelSet } from '../runtime/model-set'
import type { SessionConfig } from '../runtime/session'
import { findTokenizer } from '../tokenizer'
import type { ClipTokenizer } from '../tokenizer'
import type { ReferenceCase, ReferenceManifest } from './manifest'
import { caseText } from './manifest'

/**
 * The model files of a reference set, found by content (headers), never by fixed names: checkpoints
 * (UNet input channels tell normal from inpainting), LoRAs, diffusers folders and tokenizer files, all
 * relative to the manifest's folder. Converted once per run; one model set is kept loaded at a time.
 */

export type CheckpointKind = 'normal' | 'inpaint'

interface Found {
  checkpoints: { file: string; kind: CheckpointKind }[]
  loras: string[]
  diffusers: string[]
  bpeGz: string[]
  tokenizerDirs: string[]
}

export interface ReferenceModelsOptions {
  cacheRoot: string
  session?: SessionConfig
}

function candidateFiles(m: ReferenceManifest): string[] {
  const names = new Set<string>(Object.keys(m.files ?? {}))
  for (const c of m.cases) {
    for (const hit of caseText(c).matchAll(/[\w./-]+\.(?:safetensors|txt\.gz)/g)) names.add(hit[0])
  }
  // Set-level fields (e.g. a `model` entry naming a checkpoint of a sibling set by relative path).
  const { cases: _cases, files: _files, ...top } = m
  for (const hit of JSON.stringify(top).matchAll(/[\w./-]+\.(?:safetensors|txt\.gz)/g)) names.add(hit[0])
  const caseFiles = new Set(m.cases.map((c) => c.file))
  return [...names].filter((n) => !caseFiles.has(n) && fs.existsSync(path.join(m.dir, n))).sort()
}

export class ReferenceModels {
  private found: Promise<Found> | undefined
  private readonly converted = new Map<string, Promise<ConvertedModel>>()
  private active: { key: string; set: ModelSet } | undefined
  private tokenizer: Promise<ClipTokenizer> | undefined

  constructor(
    readonly manifest: ReferenceManifest,
    private readonly opts: ReferenceModelsOptions,
  ) {}

  /** The run's conversion cache and session settings (for case kinds that convert models of their own). */
  get cacheRoot(): string {
    return this.opts.cacheRoot
  }

  get session(): SessionConfig | undefined {
    return this.opts.session
  }

  private scan(): Promise<Found> {
    this.found ??= (async () => {
      const f: Found = { checkpoints: [], loras: [], diffusers: [], bpeGz: [], tokenizerDirs: [] }
      for (const rel of candidateFiles(this.manifest)) {
        const abs = path.join(this.manifest.dir, rel)
        if (rel.endsWith('.txt.gz')) {
          f.bpeGz.push(abs)
          continue
        }
        const diffusersUnet = /^(.*)\/unet\/[^/]+\.safetensors$/.exec(rel)
        if (diffusersUnet) {
          f.diffusers.push(path.join(this.manifest.dir, diffusersUnet[1] as string))
          continue
        }
        const tok = /^(.*\/tokenizer)\/vocab\.json$/.exec(rel)
        if (tok) f.tokenizerDirs.push(path.join(this.manifest.dir, tok[1] as string))
        if (!rel.endsWith('.safetensors')) continue
        let header
        try {
          header = await readHeader(abs)
        } catch {
          continue
        }
        const convIn = header.tensors.get('model.diffusion_model.input_blocks.0.0.weight')
        if (convIn) f.checkpoints.push({ file: abs, kind: (convIn.shape[1] ?? 4) > 4 ? 'inpaint' : 'normal' })
        else if ([...header.tensors.keys()].some((k) => /lora_(down|up|A|B)\b|\.lora\.(down|up)\./.test(k)))
          f.loras.push(abs)
      }
      return f
    })()
    return this.found
  }

  /** The checkpoint a case uses: one the case names, else the first of the wanted kind. */
  async checkpoint(c: ReferenceCase, kind: CheckpointKind = 'normal'): Promise<string> {
    const f = await this.scan()
    const text = caseText(c)
    const named = f.checkpoints.filter((k) => k.kind === kind && text.includes(path.basename(k.file)))
    const pick = named[0] ?? f.checkpoints.find((k) => k.kind === kind)
    if (pick) return pick.file
    const dif = f.diffusers[0]
    if (kind === 'normal' && dif) return dif
    throw new Error(
      `${this.manifest.path}: case ${c.name} needs a ${kind} SD checkpoint; none found beside the manifest`,
    )
  }

  /** The LoRA a case names (or the only one) with the multiplier its text states. */
  async lora(c: ReferenceCase): Promise<LoraSpec> {
    const f = await this.scan()
    const text = caseText(c)
    const file = f.loras.find((l) => text.includes(path.basename(l))) ?? f.loras[0]
    if (!file)
      throw new Error(`${this.manifest.path}: case ${c.name} has LoRA outputs but no LoRA file was found`)
    const structured =
      (c as Record<string, unknown>).lora_multiplier ?? (c as Record<string, unknown>).multiplier
    const m =
      typeof structured === 'number'
        ? structured
        : Number(/multiplier\s*(?:=|of|:)?\s*([0-9]*\.?[0-9]+)/i.exec(text)?.[1] ?? Number.NaN)
    if (!Number.isFinite(m))
      throw new Error(`${this.manifest.path}: case ${c.name}: no LoRA multiplier stated`)
    return { path: file, multiplier: m }
  }

  async tokenizerFor(): Promise<ClipTokenizer> {
    this.tokenizer ??= (async () => {
      const f = await this.scan()
      const explicit =
        f.bpeGz[0] ?? f.tokenizerDirs[0] ?? (f.diffusers[0] && path.join(f.diffusers[0], 'tokenizer'))
      if (!explicit)
        throw new Error(`${this.manifest.path}: no tokenizer files (BPE .txt.gz or tokenizer/) found`)
      return findTokenizer({ explicit })
    })()
    return this.tokenizer
  }

  private convert(file: string): Promise<ConvertedModel> {
    let p = this.converted.get(file)
    if (!p) {
      // fp32 storage: fp16 checkpoints are used in place; nothing is rounded that the goldens did not round.
      p = convertCheckpoint(file, { cacheRoot: this.opts.cacheRoot, precision: 'fp32' })
      this.converted.set(file, p)
    }
    return p
  }

  /** The model set for a checkpoint (+ LoRAs); switching releases the previous set's sessions. */
  async modelSet(file: string, loras: LoraSpec[] = []): Promise<ModelSet> {
    const key = JSON.stringify([file, loras])
    if (this.active?.key === key) return this.active.set
    const base = await this.convert(file)
    const variant = loras.length
      ? await applyLoras(base, loras, { cacheRoot: this.opts.cacheRoot })
      : undefined
    await this.active?.set.release()
    const set = new ModelSet(key, variant?.paths ?? base.paths, this.opts.session, variant?.inputs)
    this.active = { key, set }
    return set
  }

  async release(): Promise<void> {
    await this.active?.set.release()
    this.active = undefined
  }
}
