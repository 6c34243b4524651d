import { mapComfySampler } from '../kdiffusion/comfy-names'
import type { GenerationParameters } from './infotext'

/**
 * ComfyUI PNGs: SaveImage writes two tEXt chunks, `prompt` (the API-format graph that ran: `{ id: {class_type,
 * inputs} }`, an input being a literal or a link `[node id, output index]`) and `workflow` (the editor's
 * graph: `nodes[]` with `widgets_values`, `links[]`). This reads the sampler node (KSampler or
 * KSamplerAdvanced) and follows its links:
 *
 * - positive / negative -> CLIPTextEncode `text` (a text input may itself link to a primitive node);
 * - model -> LoraLoader / LoraLoaderModelOnly chain -> CheckpointLoaderSimple `ckpt_name`; each LoRA becomes
 *   `<lora:name:weight>` (or `<lora:name:clip:model>` when the strengths differ) in the prompt, as InvokeAI
 *   metadata is restored; the text encoder's CLIPSetLastLayer gives Clip skip;
 * - latent_image -> EmptyLatentImage width / height / batch_size, or VAEEncode (img2img: `denoise` becomes the
 *   denoising strength, run with ComfyUI's rule: the last `steps` of an int(steps / denoise) schedule, which is
 *   A1111's "exact steps");
 * - seed / noise_seed, steps, cfg, sampler_name + scheduler (mapped by kdiffusion/comfy-names), denoise.
 *
 * What does not map (other node types on the way, unsupported samplers, a second sampler pass) is listed in
 * `notRestored`. The graph is untrusted: text size, JSON nesting depth, node count and link-chain length are
 * bounded, links are checked for cycles and wrong types, and every failure is a ComfyWorkflowError with a
 * readable message (never a hang).
 */

export class ComfyWorkflowError extends Error {
  constructor(message: string) {
    super(`ComfyUI metadata: ${message}`)
    this.name = 'ComfyWorkflowError'
  }
}

/** Largest `prompt` / `workflow` text read (the PNG reader caps a chunk at 4 MiB as well). */
export const MAX_COMFY_TEXT = 4 * 1024 * 1024
/** Deepest JSON nesting accepted (real graphs nest 4-6 levels). */
export const MAX_COMFY_DEPTH = 64
/** Most nodes in one graph (big real workflows have a few hundred). */
export const MAX_COMFY_NODES = 5000
/** Most links followed from one input before giving up (LoRA stacks are rarely over 20). */
export const MAX_COMFY_CHAIN = 256

type Json = Record<string, unknown>
interface Node {
  id: string
  type: string
  inputs: Json
}
type Link = [string, number]

export interface ComfyParseResult {
  params: GenerationParameters
  /** Parts of the graph that were not restored, readable. */
  notRestored: string[]
  /** Which chunk the graph came from. */
  from: 'prompt' | 'workflow'
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Throws when `text` nests deeper than `max` (checked before JSON.parse, in one pass, strings skipped). */
function checkDepth(text: string, max: number): void {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) throw new ComfyWorkflowError(`JSON nested deeper than ${max} levels`)
    } else if (c === 0x7d || c === 0x5d) depth--
  }
}

function parseJson(text: string, what: string): unknown {
  if (text.length > MAX_COMFY_TEXT)
    throw new ComfyWorkflowError(`${what} is ${text.length} characters (at most ${MAX_COMFY_TEXT})`)
  checkDepth(text, MAX_COMFY_DEPTH)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ComfyWorkflowError(`${what} is not JSON (${err instanceof Error ? err.message : String(err)})`)
  }
}

function isLink(v: unknown): v is Link {
  return (
    Array.isArray(v) &&
    v.length === 2 &&
    (typeof v[0] === 'string' || typeof v[0] === 'number') &&
    typeof v[1] === 'number' &&
    Number.isInteger(v[1])
  )
}

/** API-format `prompt`: `{ "3": { "class_type": "KSampler", "inputs": {...} }, ... }`. */
function nodesFromPrompt(j: unknown): Map<string, Node> {
  if (!isObj(j)) throw new ComfyWorkflowError('the prompt graph is not a JSON object')
  const entries = Object.entries(j)
  if (entries.length > MAX_COMFY_NODES)
    throw new ComfyWorkflowError(`the graph has ${entries.length} nodes (at most ${MAX_COMFY_NODES})`)
  const out = new Map<string, Node>()
  for (const [id, n] of entries) {
    if (!isObj(n)) throw new ComfyWorkflowError(`node ${id} is not an object`)
    if (typeof n.class_type !== 'string') throw new ComfyWorkflowError(`node ${id} has no class_type`)
    const inputs = n.inputs ?? {}
    if (!isObj(inputs)) throw new ComfyWorkflowError(`node ${id} (${n.class_type}): inputs is not an object`)
    out.set(id, { id, type: n.class_type, inputs })
  }
  return out
}

/** Widget order of the core nodes in the editor's `workflow` (widgets_values), seed control values skipped. */
const WIDGETS: Record<string, (string | null)[]> = {
  KSampler: ['seed', null, 'steps', 'cfg', 'sampler_name', 'scheduler', 'denoise'],
  KSamplerAdvanced: [
    'add_noise',
    'noise_seed',
    null,
    'steps',
    'cfg',
    'sampler_name',
    'scheduler',
    'start_at_step',
    'end_at_step',
    'return_with_leftover_noise',
  ],
  CLIPTextEncode: ['text'],
  CheckpointLoaderSimple: ['ckpt_name'],
  LoraLoader: ['lora_name', 'strength_model', 'strength_clip'],
  LoraLoaderModelOnly: ['lora_name', 'strength_model'],
  EmptyLatentImage: ['width', 'height', 'batch_size'],
  CLIPSetLastLayer: ['stop_at_clip_layer'],
  LoadImage: ['image', null],
  PrimitiveNode: ['value', null],
}

const SEED_CONTROLS = new Set(['fixed', 'increment', 'decrement', 'randomize'])

/**
 * Editor-format `workflow`: `nodes[]` ({id, type, inputs: [{name, link}], widgets_values}) and `links[]`
 * ([id, from node, from slot, to node, to slot, type]), turned into the API form for the core nodes.
 */
function nodesFromWorkflow(j: unknown): Map<string, Node> {
  if (!isObj(j) || !Array.isArray(j.nodes)) throw new ComfyWorkflowError('the workflow has no nodes[] list')
  const nodes = j.nodes as unknown[]
  if (nodes.length > MAX_COMFY_NODES)
    throw new ComfyWorkflowError(`the workflow has ${nodes.length} nodes (at most ${MAX_COMFY_NODES})`)
  const links = new Map<number, Link>()
  const rawLinks = Array.isArray(j.links) ? (j.links as unknown[]) : []
  if (rawLinks.length > MAX_COMFY_NODES * 8)
    throw new ComfyWorkflowError(`the workflow has ${rawLinks.length} links (at most ${MAX_COMFY_NODES * 8})`)
  for (const l of rawLinks) {
    if (
      Array.isArray(l) &&
      typeof l[0] === 'number' &&
      (typeof l[1] === 'number' || typeof l[1] === 'string')
    )
      links.set(l[0], [String(l[1]), typeof l[2] === 'number' ? l[2] : 0])
  }
  const out = new Map<string, Node>()
  for (const n of nodes) {
    if (!isObj(n) || (typeof n.id !== 'number' && typeof n.id !== 'string') || typeof n.type !== 'string')
      throw new ComfyWorkflowError('a workflow node has no id or type')
    const id = String(n.id)
    const inputs: Json = {}
    for (const inp of Array.isArray(n.inputs) ? (n.inputs as unknown[]) : []) {
      if (!isObj(inp) || typeof inp.name !== 'string' || typeof inp.link !== 'number') continue
      const l = links.get(inp.link)
      if (l) inputs[inp.name] = l
    }
    const names = WIDGETS[n.type]
    const values = Array.isArray(n.widgets_values) ? (n.widgets_values as unknown[]) : []
    if (names) {
      let k = 0
      for (const name of names) {
        const v = values[k]
        // a seed widget is followed by its control_after_generate value, absent in old workflows
        if (name === null) {
          if (typeof v === 'string' && SEED_CONTROLS.has(v)) k++
          continue
        }
        k++
        if (!(name in inputs) && v !== undefined) inputs[name] = v
      }
    }
    out.set(id, { id, type: n.type, inputs })
  }
  return out
}

class Graph {
  constructor(
    readonly nodes: Map<string, Node>,
    private readonly notes: string[],
  ) {}

  node(link: Link, from: string): Node {
    const n = this.nodes.get(String(link[0]))
    if (!n) throw new ComfyWorkflowError(`${from} links to node ${link[0]}, which is not in the graph`)
    return n
  }

  /**
   * Follows the link in `start.inputs[input]`; at each node `pass` names the input to go on through, or
   * undefined to stop there (`end`). `path` holds the nodes passed through. Cycle-safe and bounded.
   */
  follow(
    start: Node,
    input: string,
    pass: (n: Node) => string | undefined,
  ): { end?: Node; path: Node[]; stopped?: Node } {
    const seen = new Set<string>([start.id])
    const path: Node[] = []
    let v = start.inputs[input]
    let from = `${start.type} ${start.id} ${input}`
    for (let hop = 0; hop < MAX_COMFY_CHAIN; hop++) {
      if (!isLink(v)) return { path }
      const n = this.node(v, from)
      if (seen.has(n.id)) throw new ComfyWorkflowError(`links form a cycle at node ${n.id} (${n.type})`)
      seen.add(n.id)
      const next = pass(n)
      if (next === undefined) return { end: n, path }
      path.push(n)
      v = n.inputs[next]
      from = `${n.type} ${n.id} ${next}`
    }
    throw new ComfyWorkflowError(`more than ${MAX_COMFY_CHAIN} nodes in one link chain`)
  }

  /** A literal input, or the value of a primitive / widget node it links to (one hop). */
  literal(n: Node, input: string): unknown {
    const v = n.inputs[input]
    if (!isLink(v)) return v
    const src = this.nodes.get(String(v[0]))
    if (!src) throw new ComfyWorkflowError(`${n.type} ${n.id} ${input} links to a missing node ${v[0]}`)
    for (const k of [
      input,
      'value',
      'seed',
      'noise_seed',
      'int',
      'float',
      'string',
      'text',
      'text_positive',
    ]) {
      const x = src.inputs[k]
      if (x !== undefined && !isLink(x) && !isObj(x) && !Array.isArray(x)) return x
    }
    this.notes.push(`${n.type} ${input} comes from ${src.type} (not a literal value)`)
    return undefined
  }
}

const SAMPLERS = new Set(['KSampler', 'KSamplerAdvanced'])

function num(v: unknown, what: string, notes: string[]): number | undefined {
  if (v === undefined) return undefined
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v
  if (typeof n === 'number' && Number.isFinite(n)) return n
  notes.push(`${what}: ${JSON.stringify(v)?.slice(0, 40)} is not a number`)
  return undefined
}

function text(v: unknown, what: string, notes: string[]): string | undefined {
  if (v === undefined) return undefined
  if (typeof v === 'string') return v
  notes.push(`${what} is not text`)
  return undefined
}

function stem(file: string): string {
  return (file.split(/[\\/]/).pop() ?? file).replace(/\.(safetensors|ckpt|pt|pth|bin)$/i, '')
}

/** The sampler node to restore: the first pass (its latent comes from an empty latent or an image). */
function pickSampler(g: Graph): { node: Node; others: number } {
  const samplers = [...g.nodes.values()].filter((n) => SAMPLERS.has(n.type))
  if (samplers.length === 0) throw new ComfyWorkflowError('no KSampler or KSamplerAdvanced node in the graph')
  const byId = (a: Node, b: Node): number =>
    Number(a.id) - Number(b.id) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  samplers.sort(byId)
  const firstPass = samplers.find((s) => {
    const l = s.inputs.latent_image
    const src = isLink(l) ? g.nodes.get(String(l[0])) : undefined
    return src !== undefined && !SAMPLERS.has(src.type)
  })
  return { node: firstPass ?? samplers[0]!, others: samplers.length - 1 }
}

function readPrompt(g: Graph, s: Node, input: 'positive' | 'negative', notes: string[]): string | undefined {
  const r = g.follow(s, input, () => undefined)
  const n = r.end
  if (!n) {
    if (s.inputs[input] !== undefined) notes.push(`${input} prompt is not linked to a node`)
    return undefined
  }
  if (n.type !== 'CLIPTextEncode') {
    notes.push(`${input} conditioning comes from ${n.type}, not CLIPTextEncode`)
    return undefined
  }
  return text(g.literal(n, 'text'), `${input} prompt`, notes)
}

interface ModelChain {
  checkpoint?: string
  loras: { name: string; model: number; clip?: number }[]
  clipSkip?: number
}

function readModel(g: Graph, s: Node, clipFrom: Node | undefined, notes: string[]): ModelChain {
  const out: ModelChain = { loras: [] }
  const skipped = new Set<string>()
  const r = g.follow(s, 'model', (n) => {
    if (n.type === 'CheckpointLoaderSimple' || n.type === 'CheckpointLoader') return undefined
    if (n.type !== 'LoraLoader' && n.type !== 'LoraLoaderModelOnly') skipped.add(n.type)
    return isLink(n.inputs.model) ? 'model' : undefined
  })
  for (const n of r.path) {
    if (n.type !== 'LoraLoader' && n.type !== 'LoraLoaderModelOnly') continue
    const name = text(g.literal(n, 'lora_name'), 'LoRA name', notes)
    if (!name) continue
    const model = num(g.literal(n, 'strength_model'), `LoRA ${name} strength_model`, notes) ?? 1
    const clip =
      n.type === 'LoraLoader' ? num(g.literal(n, 'strength_clip'), `LoRA ${name} strength_clip`, notes) : 0
    out.loras.push({ name: stem(name), model, ...(clip !== undefined ? { clip } : {}) })
  }
  // kohya / A1111 apply LoRAs in prompt order; ComfyUI's chain runs from the checkpoint outwards
  out.loras.reverse()
  const end = r.end
  if (end && (end.type === 'CheckpointLoaderSimple' || end.type === 'CheckpointLoader')) {
    const ck = text(g.literal(end, 'ckpt_name'), 'checkpoint name', notes)
    if (ck) out.checkpoint = stem(ck)
  } else if (end) notes.push(`model comes from ${end.type} (not a checkpoint loader)`)
  else if (r.path.length > 0 || s.inputs.model !== undefined)
    notes.push('model is not linked to a checkpoint')
  for (const t of skipped) notes.push(`model node ${t} is not applied`)
  // Clip skip: CLIPSetLastLayer on the text encoder's chain (stop_at_clip_layer -2 = Clip skip 2)
  if (clipFrom) {
    const c = g.follow(clipFrom, 'clip', (n) =>
      n.type === 'CLIPSetLastLayer' ? undefined : isLink(n.inputs.clip) ? 'clip' : undefined,
    )
    if (c.end?.type === 'CLIPSetLastLayer') {
      const layer = num(g.literal(c.end, 'stop_at_clip_layer'), 'stop_at_clip_layer', notes)
      if (layer !== undefined && Number.isInteger(layer) && layer < 0) out.clipSkip = -layer
    }
  }
  return out
}

function loraTag(l: ModelChain['loras'][number]): string {
  const w = (x: number): string => String(Number(x.toFixed(4)))
  if (l.clip === undefined || l.clip === l.model) return `<lora:${l.name}:${w(l.model)}>`
  // A1111 / Atelier: <lora:name:te:unet>
  return `<lora:${l.name}:${w(l.clip)}:${w(l.model)}>`
}

/** Restores generation parameters from a ComfyUI `prompt` (API) or `workflow` (editor) JSON text. */
export function parseComfyGraph(textIn: string, from: 'prompt' | 'workflow' = 'prompt'): ComfyParseResult {
  const j = parseJson(textIn, from === 'prompt' ? 'the "prompt" chunk' : 'the "workflow" chunk')
  const notes: string[] = []
  const g = new Graph(from === 'prompt' ? nodesFromPrompt(j) : nodesFromWorkflow(j), notes)
  const { node: s, others } = pickSampler(g)
  const extra: Record<string, string> = { 'Sampler convention': 'comfy' }
  const p: GenerationParameters = { prompt: '', negativePrompt: '', extra }

  const advanced = s.type === 'KSamplerAdvanced'
  const seed = num(g.literal(s, advanced ? 'noise_seed' : 'seed'), 'seed', notes)
  if (seed !== undefined) {
    if (Number.isInteger(seed) && seed >= 0) p.seed = seed
    else notes.push(`seed ${seed} is not a non-negative integer`)
  }
  const steps = num(g.literal(s, 'steps'), 'steps', notes)
  if (steps !== undefined) {
    if (Number.isInteger(steps) && steps >= 1 && steps <= 10000) p.steps = steps
    else notes.push(`steps ${steps} is out of range`)
  }
  const cfg = num(g.literal(s, 'cfg'), 'cfg', notes)
  if (cfg !== undefined) p.cfgScale = cfg

  const samplerName = text(g.literal(s, 'sampler_name'), 'sampler_name', notes)
  const scheduler = text(g.literal(s, 'scheduler'), 'scheduler', notes)
  if (samplerName) {
    extra['ComfyUI sampler'] = samplerName
    if (scheduler) extra['ComfyUI scheduler'] = scheduler
    const m = mapComfySampler(samplerName, scheduler)
    if (m.sampler) p.sampler = m.sampler
    // The A1111 label when there is one (the ComfyUI convention reads it as its scheduler), else ComfyUI's key.
    if (m.scheduleType) p.scheduleType = m.scheduleType
    else if (m.comfyScheduler) p.scheduleType = m.comfyScheduler
    notes.push(...m.notes)
  }
  if (advanced) {
    const start = num(g.literal(s, 'start_at_step'), 'start_at_step', notes) ?? 0
    const end = num(g.literal(s, 'end_at_step'), 'end_at_step', notes) ?? 10000
    if (start > 0 || (p.steps !== undefined && end < p.steps))
      notes.push(`KSamplerAdvanced runs steps ${start}-${end} only; restored as a full run`)
    if (g.literal(s, 'add_noise') === 'disable')
      notes.push('KSamplerAdvanced add_noise "disable" is not restored')
  }

  const pos = readPrompt(g, s, 'positive', notes)
  const neg = readPrompt(g, s, 'negative', notes)
  if (pos !== undefined) p.prompt = pos
  if (neg !== undefined) p.negativePrompt = neg

  const posNode = g.follow(s, 'positive', () => undefined).end
  const model = readModel(g, s, posNode?.type === 'CLIPTextEncode' ? posNode : undefined, notes)
  if (model.checkpoint) p.model = model.checkpoint
  if (model.clipSkip !== undefined) p.clipSkip = model.clipSkip
  if (model.loras.length > 0) {
    const tags = model.loras.map(loraTag).join(' ')
    p.prompt = p.prompt === '' ? tags : `${p.prompt} ${tags}`
  }

  // latent: an empty latent (txt2img) or an encoded image (img2img, with ComfyUI's denoise rule)
  const denoise = advanced ? undefined : num(g.literal(s, 'denoise'), 'denoise', notes)
  const lat = g.follow(s, 'latent_image', (n) =>
    n.type === 'RepeatLatentBatch' || n.type === 'LatentUpscale' || n.type === 'LatentUpscaleBy'
      ? 'samples'
      : undefined,
  )
  for (const n of lat.path) notes.push(`latent node ${n.type} is not applied`)
  const ln = lat.end
  if (ln?.type === 'EmptyLatentImage' || ln?.type === 'EmptySD3LatentImage') {
    const w = num(g.literal(ln, 'width'), 'width', notes)
    const h = num(g.literal(ln, 'height'), 'height', notes)
    if (w !== undefined && h !== undefined) {
      if (Number.isInteger(w) && Number.isInteger(h) && w >= 8 && h >= 8 && w <= 16384 && h <= 16384) {
        p.width = w
        p.height = h
      } else notes.push(`size ${w}x${h} is out of range`)
    }
    const b = num(g.literal(ln, 'batch_size'), 'batch_size', notes)
    if (b !== undefined && b !== 1) extra['Batch size'] = String(b)
    if (denoise !== undefined && denoise < 1)
      notes.push(`denoise ${denoise} on an empty latent is not restored`)
  } else if (ln?.type === 'VAEEncode' || ln?.type === 'VAEEncodeForInpaint') {
    extra['ComfyUI mode'] = ln.type === 'VAEEncode' ? 'img2img' : 'inpaint'
    if (denoise !== undefined) {
      if (denoise > 0 && denoise <= 1) {
        p.denoisingStrength = denoise
        // ComfyUI's denoise rule: always `steps` sampler steps, the tail of an int(steps / denoise) schedule
        // (A1111's img2img_fix_steps slices the same way).
        p.exactSteps = true
      } else notes.push(`denoise ${denoise} is out of range`)
    }
    if (ln.type === 'VAEEncodeForInpaint')
      notes.push('the inpaint mask (VAEEncodeForInpaint) is not restored')
  } else if (ln) notes.push(`latent comes from ${ln.type}`)

  if (others > 0) notes.push(`${others} more sampler node(s) (e.g. a hires or refiner pass) are not restored`)
  return { params: p, notRestored: [...new Set(notes)], from }
}
