import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import type { SessionConfig } from './session'
import { OnnxGraph } from './session'

/**
 * Token-embedding rows to replace before a text encoder runs (textual-inversion vectors): for batch row `row`,
 * positions start, start+1, ... get the rows of `data` ([n, width] row-major); rows past the sequence end are
 * dropped (A1111's EmbeddingsWithFixes clips the same way).
 */
export interface EmbeddingRows {
  row: number
  start: number
  data: Float32Array
}

const EMBEDS_OVERRIDE = 'embeds_override'
/** The text encoder's stacked, normalised hidden states (graphs/text-encoder CLIP_SKIP_OUTPUT). */
const CLIP_SKIP_OUTPUT = 'hidden_states_ln'
const EMBEDS_MASK = 'embeds_mask'

export const COMPONENTS = ['text_encoder', 'text_encoder_2', 'unet', 'vae_encoder', 'vae_decoder'] as const
export type Component = (typeof COMPONENTS)[number]
const VAE_COMPONENTS = ['vae_encoder', 'vae_decoder'] as const
export type VaeComponent = (typeof VAE_COMPONENTS)[number]

/**
 * The graphs of one model (a converted cache entry, or a ready diffusers-ONNX folder), each with its own
 * session, loaded on first use. Input/output names differ between our graphs and diffusers/optimum ONNX
 * exports; the typed helpers below accept both.
 */
export class ModelSet {
  readonly graphs: Partial<Record<Component, OnnxGraph>> = {}

  /** Low-memory sets keep one stage's sessions at a time (text encoders, UNet, VAE): peak = the largest. */
  private readonly oneStage: boolean

  get lowMemory(): boolean {
    return this.oneStage
  }

  /** The set's own VAE graphs (the checkpoint's), restored by useVae() without an override. */
  private readonly ownVae: Partial<Record<VaeComponent, string>>

  private readonly cfg: SessionConfig

  constructor(
    readonly id: string,
    paths: Partial<Record<Component, string>>,
    cfg: SessionConfig = {},
    /** Extra scalar inputs per graph, e.g. LoRA multipliers from applyLoras(...).inputs. */
    inputs: Partial<Record<Component, Record<string, number>>> = {},
  ) {
    for (const c of COMPONENTS) {
      const p = paths[c]
      // A ready ONNX folder may lack a graph (often vae_encoder): then the set simply has no such graph.
      if (p && fs.existsSync(p)) this.graphs[c] = new OnnxGraph(c, p, cfg, inputs[c])
    }
    this.oneStage = cfg.lowMemory === true
    this.cfg = cfg
    this.ownVae = {
      vae_encoder: this.graphs.vae_encoder?.modelPath,
      vae_decoder: this.graphs.vae_decoder?.modelPath,
    }
  }

  /**
   * Decodes and encodes with another VAE's graphs (a standalone VAE converted by convertVae), or with the
   * set's own again when `vae` is undefined. Only the VAE sessions change: the text encoder and UNet
   * sessions stay loaded. A no-op when the same graphs are already in use.
   */
  async useVae(vae?: Partial<Record<VaeComponent, string>>): Promise<void> {
    const want = vae ?? this.ownVae
    for (const c of VAE_COMPONENTS) {
      const p = want[c]
      const g = this.graphs[c]
      if (g?.modelPath === p) continue
      await g?.release()
      if (p && fs.existsSync(p)) this.graphs[c] = new OnnxGraph(c, p, this.cfg)
      else delete this.graphs[c]
    }
  }

  /** The VAE graph files in use (the set's own, or an override's). */
  get vaePaths(): Partial<Record<VaeComponent, string>> {
    return {
      vae_encoder: this.graphs.vae_encoder?.modelPath,
      vae_decoder: this.graphs.vae_decoder?.modelPath,
    }
  }

  /** In low-memory sets, releases every loaded session but those of the stage about to run. */
  private async enter(stage: readonly Component[]): Promise<void> {
    if (this.oneStage) await this.release(COMPONENTS.filter((c) => !stage.includes(c)))
  }

  /** Changes scalar inputs (LoRA multipliers) of loaded or unloaded graphs; no reload needed. */
  setInputs(inputs: Partial<Record<Component, Record<string, number>>>): void {
    for (const c of COMPONENTS) {
      const v = inputs[c]
      if (v) this.graphs[c]?.setScalars(v)
    }
  }

  /** Components laid out as `<dir>/<component>/model.onnx` (ours and diffusers' ONNX layout). */
  static fromFolder(dir: string, cfg: SessionConfig = {}, id = dir): ModelSet {
    const paths: Partial<Record<Component, string>> = {}
    for (const c of COMPONENTS) {
      const p = path.join(dir, c, 'model.onnx')
      if (fs.existsSync(p)) paths[c] = p
    }
    if (!paths.unet && !paths.text_encoder && !paths.vae_decoder)
      throw new Error(`${dir}: no ONNX pipeline here (expected unet/model.onnx, text_encoder/, vae_decoder/)`)
    return new ModelSet(id, paths, cfg)
  }

  has(c: Component): boolean {
    return this.graphs[c] !== undefined
  }

  graph(c: Component): OnnxGraph {
    const g = this.graphs[c]
    if (!g) throw new Error(`model ${this.id} has no ${c} graph`)
    return g
  }

  async load(components: readonly Component[] = COMPONENTS): Promise<void> {
    for (const c of components) await this.graphs[c]?.load()
  }

  async release(components: readonly Component[] = COMPONENTS): Promise<void> {
    for (const c of components) await this.graphs[c]?.release()
  }

  /**
   * Text encoder: ids [batch, seq] -> hidden states [batch, seq, width]. clipSkip N (A1111's Clip skip) is the
   * N-th hidden state from the end through the final LayerNorm: 1 the last layer, 2 the penultimate, ...
   */
  async encodeText(
    ids: BigInt64Array,
    batch: number,
    clipSkip = 1,
    rows: readonly EmbeddingRows[] = [],
  ): Promise<ort.Tensor> {
    await this.enter(['text_encoder'])
    const g = this.graph('text_encoder')
    await g.load()
    const seq = ids.length / batch
    const input = g.inputNames[0] ?? 'input_ids'
    // optimum exports take int32 ids; ours take int64.
    const feedsInt32 = !g.inputNames.includes('input_ids') || (await this.inputType(g, input)) === 'int32'
    const t = feedsInt32
      ? new ort.Tensor(
          'int32',
          Int32Array.from(ids, (v) => Number(v)),
          [batch, seq],
        )
      : new ort.Tensor('int64', ids, [batch, seq])
    if (!Number.isInteger(clipSkip) || clipSkip < 1)
      throw new Error(`Clip skip must be a whole number from 1, got ${clipSkip}`)
    const want =
      clipSkip === 1 ? 'last_hidden_state' : clipSkip === 2 ? 'penultimate_hidden_state_ln' : CLIP_SKIP_OUTPUT
    if (!g.outputNames.includes(want))
      throw new Error(
        `model ${this.id}: its text encoder has no ${want} output (CLIP skip ${clipSkip} unsupported; a ready ONNX export or an older conversion)`,
      )
    const r = await g.run({ [input]: t, ...this.overrideFeeds(g, batch, seq, rows) }, [want])
    const out = r[want] as ort.Tensor
    if (want !== CLIP_SKIP_OUTPUT) return out
    // [layers + 1, batch, seq, width]: Clip skip N is index layers + 1 - N.
    const [states = 0] = out.dims
    const index = states - clipSkip
    if (index < 0)
      throw new Error(
        `Clip skip ${clipSkip} is more than this text encoder has layers (${states - 1}); use 1 to ${states - 1}`,
      )
    const size = out.dims.slice(1).reduce((a, b) => a * b, 1)
    const data = (out.data as Float32Array).slice(index * size, (index + 1) * size)
    return new ort.Tensor('float32', data, out.dims.slice(1))
  }

  /** The embeds_override / embeds_mask feeds of a text encoder graph (none for graphs without them). */
  private overrideFeeds(
    g: OnnxGraph,
    batch: number,
    seq: number,
    rows: readonly EmbeddingRows[],
  ): Record<string, ort.Tensor> {
    if (!g.inputNames.includes(EMBEDS_MASK)) {
      if (rows.length)
        throw new Error(
          `model ${this.id}: its ${g.name} graph cannot take embedding vectors (a ready ONNX export, or a ` +
            'conversion from an older Atelier: reconvert it)',
        )
      return {}
    }
    const meta = g.inputShapes.get(EMBEDS_OVERRIDE)
    const width = typeof meta?.[2] === 'number' ? meta[2] : 0
    if (!width) throw new Error(`model ${this.id}: ${g.name}: ${EMBEDS_OVERRIDE} has no fixed width`)
    const embeds = new Float32Array(batch * seq * width)
    const mask = new Uint8Array(batch * seq)
    for (const r of rows) {
      if (r.data.length % width !== 0)
        throw new Error(`embedding of width ${r.data.length} does not fit the text encoder's width ${width}`)
      const n = Math.min(r.data.length / width, seq - r.start)
      for (let i = 0; i < n; i++) {
        const pos = r.row * seq + r.start + i
        embeds.set(r.data.subarray(i * width, (i + 1) * width), pos * width)
        mask[pos] = 1
      }
    }
    return {
      [EMBEDS_OVERRIDE]: new ort.Tensor('float32', embeds, [batch, seq, width]),
      [EMBEDS_MASK]: new ort.Tensor('bool', mask, [batch, seq, 1]),
    }
  }

  /** The text encoder's token-embedding width (from its embeds_override input); undefined for graphs without it. */
  async tokenEmbeddingWidth(): Promise<number | undefined> {
    const g = this.graphs.text_encoder
    if (!g) return undefined
    await g.load()
    const w = g.inputShapes.get(EMBEDS_OVERRIDE)?.[2]
    return typeof w === 'number' ? w : undefined
  }

  /** 'sdxl' when the set has a second text encoder (SDXL base), else 'sd-1'. */
  get family(): 'sd-1' | 'sdxl' {
    return this.has('text_encoder_2') ? 'sdxl' : 'sd-1'
  }

  /**
   * SDXL text encoding of one tokenization per encoder (`ids` EOS-padded for encoder 1, `ids2` 0-padded for
   * encoder 2): both penultimate hidden states WITHOUT the final LayerNorm, and encoder 2's pooled, projected
   * output ([batch, proj]).
   */
  async encodeTextXL(
    ids: BigInt64Array,
    ids2: BigInt64Array,
    batch: number,
    rows: { l: readonly EmbeddingRows[]; g: readonly EmbeddingRows[] } = { l: [], g: [] },
  ): Promise<{ hidden: ort.Tensor; hidden2: ort.Tensor; pooled: ort.Tensor }> {
    await this.enter(['text_encoder', 'text_encoder_2'])
    const run = async (
      c: 'text_encoder' | 'text_encoder_2',
      x: BigInt64Array,
      outs: string[],
      fix: readonly EmbeddingRows[],
    ) => {
      const g = this.graph(c)
      await g.load()
      const missing = outs.filter((o) => !g.outputNames.includes(o))
      if (missing.length)
        throw new Error(`model ${this.id}: its ${c} graph has no ${missing.join(', ')} output (reconvert it)`)
      const seq = x.length / batch
      const feeds = {
        input_ids: new ort.Tensor('int64', x, [batch, seq]),
        ...this.overrideFeeds(g, batch, seq, fix),
      }
      return g.run(feeds, outs)
    }
    const a = await run('text_encoder', ids, ['penultimate_hidden_state'], rows.l)
    const b = await run('text_encoder_2', ids2, ['penultimate_hidden_state', 'text_embeds'], rows.g)
    return {
      hidden: a.penultimate_hidden_state as ort.Tensor,
      hidden2: b.penultimate_hidden_state as ort.Tensor,
      pooled: b.text_embeds as ort.Tensor,
    }
  }

  /**
   * UNet noise prediction; timestep is one value broadcast over the batch. SDXL UNets also take the added
   * conditioning (pooled text embedding [B, P] and time ids [B, 6]).
   */
  async unet(
    sample: ort.Tensor,
    timestep: number,
    context: ort.Tensor,
    added?: { textEmbeds: ort.Tensor; timeIds: ort.Tensor },
  ): Promise<ort.Tensor> {
    await this.enter(['unet'])
    const g = this.graph('unet')
    await g.load()
    const tType = await this.inputType(g, 'timestep')
    const t =
      tType === 'int64'
        ? new ort.Tensor('int64', BigInt64Array.from([BigInt(Math.round(timestep))]), [1])
        : new ort.Tensor('float32', Float32Array.from([timestep]), [1])
    const takesAdded = g.inputNames.includes('text_embeds')
    if (takesAdded && !added)
      throw new Error(`model ${this.id}: its UNet needs SDXL added conditioning (text_embeds, time_ids)`)
    const feeds: Record<string, ort.Tensor> = { sample, timestep: t, encoder_hidden_states: context }
    if (takesAdded && added) Object.assign(feeds, { text_embeds: added.textEmbeds, time_ids: added.timeIds })
    const r = await g.run(feeds)
    return (r.eps ?? r.out_sample ?? Object.values(r)[0]) as ort.Tensor
  }

  /** VAE decode of latents already divided by the scaling factor; raw output in about [-1, 1]. */
  async decode(latents: ort.Tensor): Promise<ort.Tensor> {
    await this.enter(['vae_decoder'])
    const r = await this.graph('vae_decoder').run({ latent_sample: latents })
    return (r.sample ?? Object.values(r)[0]) as ort.Tensor
  }

  /** VAE encode: image [-1, 1] -> mean and std of the latent distribution (unscaled). */
  async encode(image: ort.Tensor): Promise<{ mean: ort.Tensor; std: ort.Tensor }> {
    await this.enter(['vae_encoder'])
    const g = this.graph('vae_encoder')
    await g.load()
    if (!g.inputNames.includes('image'))
      throw new Error(
        `model ${this.id}: its VAE encoder returns sampled latents only; reconvert it with Atelier`,
      )
    const r = await g.run({ image }, ['mean', 'std'])
    return { mean: r.mean as ort.Tensor, std: r.std as ort.Tensor }
  }

  private async inputType(g: OnnxGraph, name: string): Promise<string | undefined> {
    await g.load()
    return g.inputTypes.get(name)
  }
}

/** Keeps one model set active: switching releases the previous set's sessions first (memory). */
export class ActiveModel {
  private current: ModelSet | undefined

  get set(): ModelSet | undefined {
    return this.current
  }

  async use(next: ModelSet): Promise<ModelSet> {
    if (this.current && this.current !== next) await this.current.release()
    this.current = next
    return next
  }

  async release(): Promise<void> {
    await this.current?.release()
    this.current = undefined
  }
}
