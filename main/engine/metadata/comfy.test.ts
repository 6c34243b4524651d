import { describe, expect, it } from 'vitest'
import { comfyKSamplerSigmas, comfyTable, planSampling, a1111Table } from '../kdiffusion'
import { encodePng } from '../image/codec'
import {
  ComfyWorkflowError,
  MAX_COMFY_CHAIN,
  MAX_COMFY_DEPTH,
  MAX_COMFY_NODES,
  MAX_COMFY_TEXT,
  parseComfyGraph,
} from './comfy'
import { readGenerationParameters } from './png'
import { insertPngText } from './png-chunks'

/*
 * Graphs written from ComfyUI's documented node schema (nodes.py INPUT_TYPES: KSampler seed / steps / cfg /
 * sampler_name / scheduler / positive / negative / latent_image / denoise, KSamplerAdvanced add_noise /
 * noise_seed / start_at_step / end_at_step, CheckpointLoaderSimple outputs MODEL 0 / CLIP 1 / VAE 2, LoraLoader
 * model / clip / lora_name / strength_model / strength_clip, CLIPSetLastLayer stop_at_clip_layer,
 * EmptyLatentImage width / height / batch_size) in the shapes SaveImage stores: the API `prompt` and the
 * editor `workflow`.
 */

/** The default txt2img graph with two stacked LoRAs and CLIPSetLastLayer (clip skip 2). */
const txt2img = {
  '3': {
    class_type: 'KSampler',
    inputs: {
      seed: 156680208700286,
      steps: 28,
      cfg: 6.5,
      sampler_name: 'dpmpp_2m',
      scheduler: 'karras',
      denoise: 1,
      model: ['11', 0],
      positive: ['6', 0],
      negative: ['7', 0],
      latent_image: ['5', 0],
    },
    _meta: { title: 'KSampler' },
  },
  '4': {
    class_type: 'CheckpointLoaderSimple',
    inputs: { ckpt_name: 'SD1.5/dreamshaper_8.safetensors' },
  },
  '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 768, batch_size: 1 } },
  '6': {
    class_type: 'CLIPTextEncode',
    inputs: { text: 'masterpiece, (a castle:1.2) on a hill', clip: ['12', 0] },
  },
  '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry, lowres', clip: ['12', 0] } },
  '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
  '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'ComfyUI', images: ['8', 0] } },
  '10': {
    class_type: 'LoraLoader',
    inputs: {
      lora_name: 'add_detail.safetensors',
      strength_model: 0.6,
      strength_clip: 0.6,
      model: ['4', 0],
      clip: ['4', 1],
    },
  },
  '11': {
    class_type: 'LoraLoader',
    inputs: {
      lora_name: 'styles\\hanfu_loha.safetensors',
      strength_model: 0.8,
      strength_clip: 0.5,
      model: ['10', 0],
      clip: ['10', 1],
    },
  },
  '12': { class_type: 'CLIPSetLastLayer', inputs: { stop_at_clip_layer: -2, clip: ['11', 1] } },
}

/** LoadImage -> VAEEncode -> KSampler(denoise 0.6), as the oracle's comfy_img2img_euler case runs it. */
const img2img = {
  '1': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'v1-5-pruned-emaonly.safetensors' } },
  '2': { class_type: 'LoadImage', inputs: { image: 'cat.png', upload: 'image' } },
  '3': { class_type: 'VAEEncode', inputs: { pixels: ['2', 0], vae: ['1', 2] } },
  '4': { class_type: 'CLIPTextEncode', inputs: { text: 'a photo of a cat', clip: ['1', 1] } },
  '5': { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['1', 1] } },
  '6': {
    class_type: 'KSampler',
    inputs: {
      seed: 42,
      steps: 10,
      cfg: 5,
      sampler_name: 'euler',
      scheduler: 'normal',
      denoise: 0.6,
      model: ['1', 0],
      positive: ['4', 0],
      negative: ['5', 0],
      latent_image: ['3', 0],
    },
  },
}

const api = (o: object): string => JSON.stringify(o)

describe('ComfyUI prompt graph -> generation parameters', () => {
  it('restores the txt2img graph: sampler + scheduler, seed, steps, cfg, size, checkpoint, LoRAs, clip skip', () => {
    const r = parseComfyGraph(api(txt2img))
    expect(r.from).toBe('prompt')
    expect(r.params).toMatchObject({
      prompt: 'masterpiece, (a castle:1.2) on a hill <lora:add_detail:0.6> <lora:hanfu_loha:0.5:0.8>',
      negativePrompt: 'blurry, lowres',
      seed: 156680208700286,
      steps: 28,
      cfgScale: 6.5,
      sampler: 'DPM++ 2M',
      scheduleType: 'Karras',
      width: 512,
      height: 768,
      model: 'dreamshaper_8',
      clipSkip: 2,
    })
    expect(r.params.extra).toEqual({
      'Sampler convention': 'comfy',
      'ComfyUI sampler': 'dpmpp_2m',
      'ComfyUI scheduler': 'karras',
    })
    expect(r.params.denoisingStrength).toBeUndefined()
    expect(r.notRestored).toEqual([])
  })

  it('img2img: denoise is the strength, run with ComfyUI’s rule (steps sampler steps from an int(steps / denoise) schedule)', () => {
    const r = parseComfyGraph(api(img2img))
    expect(r.params).toMatchObject({
      prompt: 'a photo of a cat',
      negativePrompt: '',
      sampler: 'Euler',
      scheduleType: 'Normal',
      steps: 10,
      denoisingStrength: 0.6,
      exactSteps: true,
      model: 'v1-5-pruned-emaonly',
    })
    expect(r.params.extra['ComfyUI mode']).toBe('img2img')
    // The restored settings plan exactly ComfyUI's KSampler(denoise) sigmas with the ComfyUI convention ...
    const p = r.params
    const comfy = planSampling({
      sampler: p.sampler!,
      schedule: p.scheduleType,
      convention: 'comfy',
      steps: p.steps!,
      strength: p.denoisingStrength,
      table: comfyTable(),
    })
    expect(comfy.stepsRun).toBe(10)
    expect(comfy.scheduleLength).toBe(16)
    expect(Array.from(comfy.sched!)).toEqual(Array.from(comfyKSamplerSigmas('normal', comfyTable(), 10, 0.6)))
    // ... and A1111's "exact steps" (what the studio runs) slices the same way: 10 steps from a 16-step schedule
    const a1111 = planSampling({
      sampler: p.sampler!,
      schedule: p.scheduleType,
      convention: 'a1111',
      steps: p.steps!,
      strength: p.denoisingStrength,
      fixSteps: p.exactSteps,
      table: a1111Table(),
    })
    expect(a1111.stepsRun).toBe(10)
    expect(a1111.scheduleLength).toBe(16)
  })

  it('KSamplerAdvanced, SDE sampler names, a linked seed primitive, and what does not map', () => {
    const g = {
      ...txt2img,
      '3': undefined,
      '20': { class_type: 'PrimitiveInt', inputs: { value: 777 } },
      '21': {
        class_type: 'KSamplerAdvanced',
        inputs: {
          add_noise: 'enable',
          noise_seed: ['20', 0],
          steps: 30,
          cfg: 7,
          sampler_name: 'dpmpp_2m_sde_gpu',
          scheduler: 'sgm_uniform',
          start_at_step: 0,
          end_at_step: 20,
          return_with_leftover_noise: 'enable',
          model: ['22', 0],
          positive: ['6', 0],
          negative: ['7', 0],
          latent_image: ['5', 0],
        },
      },
      '22': { class_type: 'FreeU_V2', inputs: { model: ['11', 0], b1: 1.3, b2: 1.4, s1: 0.9, s2: 0.2 } },
      '23': {
        class_type: 'KSamplerAdvanced',
        inputs: {
          add_noise: 'disable',
          noise_seed: 0,
          steps: 30,
          cfg: 7,
          sampler_name: 'euler',
          scheduler: 'normal',
          start_at_step: 20,
          end_at_step: 10000,
          model: ['11', 0],
          positive: ['6', 0],
          negative: ['7', 0],
          latent_image: ['21', 0],
        },
      },
    }
    delete g['3']
    const r = parseComfyGraph(api(g))
    expect(r.params).toMatchObject({
      seed: 777,
      steps: 30,
      sampler: 'DPM++ 2M SDE',
      scheduleType: 'SGM Uniform',
      model: 'dreamshaper_8',
    })
    expect(r.params.prompt).toContain('<lora:add_detail:0.6>')
    expect(r.notRestored).toEqual([
      expect.stringMatching(/dpmpp_2m_sde_gpu.*BrownianTree/),
      'KSamplerAdvanced runs steps 0-20 only; restored as a full run',
      'model node FreeU_V2 is not applied',
      '1 more sampler node(s) (e.g. a hires or refiner pass) are not restored',
    ])
  })

  it('unsupported samplers and schedulers are named, never guessed', () => {
    const g = structuredClone(txt2img)
    g['3'].inputs.sampler_name = 'res_multistep_cfg_pp'
    g['3'].inputs.scheduler = 'linear_quadratic'
    const r = parseComfyGraph(api(g))
    expect(r.params.sampler).toBeUndefined()
    expect(r.params.scheduleType).toBe('linear_quadratic')
    expect(r.notRestored).toEqual([
      'ComfyUI sampler "res_multistep_cfg_pp": RES multistep is not implemented',
      'ComfyUI scheduler "linear_quadratic" has no A1111 Schedule type (it runs with the ComfyUI convention)',
    ])
  })

  it('reads the editor workflow (widgets_values, links[]) when there is no prompt graph', () => {
    const workflow = {
      last_node_id: 9,
      last_link_id: 9,
      nodes: [
        {
          id: 3,
          type: 'KSampler',
          inputs: [
            { name: 'model', type: 'MODEL', link: 1 },
            { name: 'positive', type: 'CONDITIONING', link: 4 },
            { name: 'negative', type: 'CONDITIONING', link: 6 },
            { name: 'latent_image', type: 'LATENT', link: 2 },
          ],
          widgets_values: [8566257, 'randomize', 20, 8, 'euler_ancestral', 'normal', 1],
        },
        { id: 4, type: 'CheckpointLoaderSimple', inputs: [], widgets_values: ['v1-5-pruned-emaonly.ckpt'] },
        { id: 5, type: 'EmptyLatentImage', inputs: [], widgets_values: [512, 512, 1] },
        {
          id: 6,
          type: 'CLIPTextEncode',
          inputs: [{ name: 'clip', type: 'CLIP', link: 3 }],
          widgets_values: ['beautiful scenery nature glass bottle landscape, purple galaxy bottle,'],
        },
        {
          id: 7,
          type: 'CLIPTextEncode',
          inputs: [{ name: 'clip', type: 'CLIP', link: 5 }],
          widgets_values: ['text, watermark'],
        },
      ],
      links: [
        [1, 4, 0, 3, 0, 'MODEL'],
        [2, 5, 0, 3, 3, 'LATENT'],
        [3, 4, 1, 6, 0, 'CLIP'],
        [4, 6, 0, 3, 1, 'CONDITIONING'],
        [5, 4, 1, 7, 0, 'CLIP'],
        [6, 7, 0, 3, 2, 'CONDITIONING'],
      ],
      version: 0.4,
    }
    const r = parseComfyGraph(JSON.stringify(workflow), 'workflow')
    expect(r.params).toMatchObject({
      prompt: 'beautiful scenery nature glass bottle landscape, purple galaxy bottle,',
      negativePrompt: 'text, watermark',
      seed: 8566257,
      steps: 20,
      cfgScale: 8,
      sampler: 'Euler a',
      scheduleType: 'Normal',
      width: 512,
      height: 512,
      model: 'v1-5-pruned-emaonly',
    })
    expect(r.notRestored).toEqual([])
  })

  it('a ComfyUI PNG restores through readGenerationParameters; plain-text `prompt` chunks of other tools do not', async () => {
    const img = { data: new Uint8Array(8 * 8 * 3).fill(90), width: 8, height: 8, channels: 3 as const }
    const png = await encodePng(img)
    const comfyPng = insertPngText(png, [
      { keyword: 'prompt', text: api(txt2img) },
      { keyword: 'workflow', text: '{"nodes": []}' },
    ])
    const r = readGenerationParameters(comfyPng)!
    expect(r.source).toBe('comfyui')
    expect(r.params.sampler).toBe('DPM++ 2M')
    expect(r.notRestored).toEqual([])
    const other = insertPngText(png, [{ keyword: 'prompt', text: 'a cat, by some other tool' }])
    expect(readGenerationParameters(other)).toBeUndefined()
    const broken = insertPngText(png, [{ keyword: 'prompt', text: '{"3": {"class_type": "KSampler", ' }])
    expect(() => readGenerationParameters(broken)).toThrow(/ComfyUI metadata: the "prompt" chunk is not JSON/)
  })
})

describe('ComfyUI graphs are untrusted input', () => {
  const err = (text: string, from: 'prompt' | 'workflow' = 'prompt'): string => {
    try {
      parseComfyGraph(text, from)
    } catch (e) {
      expect(e).toBeInstanceOf(ComfyWorkflowError)
      return (e as Error).message
    }
    throw new Error('expected a ComfyWorkflowError')
  }

  it('bounds text size, nesting depth, node count and chain length', () => {
    expect(err(' '.repeat(MAX_COMFY_TEXT + 1))).toMatch(/at most 4194304/)
    expect(err('['.repeat(MAX_COMFY_DEPTH + 1) + ']'.repeat(MAX_COMFY_DEPTH + 1))).toMatch(
      /nested deeper than 64/,
    )
    // brackets inside strings do not count
    expect(err(JSON.stringify({ a: '[[[['.repeat(100) }))).toMatch(/node a is not an object/)
    const many: Record<string, unknown> = {}
    for (let i = 0; i <= MAX_COMFY_NODES; i++) many[i] = { class_type: 'Note', inputs: {} }
    expect(err(JSON.stringify(many))).toMatch(/5001 nodes \(at most 5000\)/)
    // a LoRA chain longer than the bound
    const chain: Record<string, unknown> = structuredClone(txt2img)
    for (let i = 0; i <= MAX_COMFY_CHAIN; i++)
      chain[`l${i}`] = {
        class_type: 'LoraLoader',
        inputs: { lora_name: `l${i}`, strength_model: 1, strength_clip: 1, model: [`l${i + 1}`, 0] },
      }
    ;(chain['3'] as { inputs: Record<string, unknown> }).inputs.model = ['l0', 0]
    const t0 = performance.now()
    expect(err(JSON.stringify(chain))).toMatch(/more than 256 nodes in one link chain/)
    expect(performance.now() - t0).toBeLessThan(2000)
  })

  it('cycles, dangling links and wrong types are clear errors or notes, never a hang', () => {
    const cyc = structuredClone(txt2img) as Record<
      string,
      { class_type: string; inputs: Record<string, unknown> }
    >
    cyc['10']!.inputs.model = ['11', 0] // 11 -> 10 -> 11
    expect(err(JSON.stringify(cyc))).toMatch(/cycle at node 11 \(LoraLoader\)/)
    const self = structuredClone(txt2img) as typeof cyc
    self['3']!.inputs.latent_image = ['3', 0]
    expect(err(JSON.stringify(self))).toMatch(/cycle at node 3 \(KSampler\)/)
    const dangling = structuredClone(txt2img) as typeof cyc
    dangling['6']!.inputs.text = ['99', 0]
    expect(err(JSON.stringify(dangling))).toMatch(/CLIPTextEncode 6 text links to a missing node 99/)
    expect(err('[1, 2, 3]')).toMatch(/not a JSON object/)
    expect(err('{"1": {"class_type": 5}}')).toMatch(/node 1 has no class_type/)
    expect(err('{"1": {"class_type": "KSampler", "inputs": [1]}}')).toMatch(/inputs is not an object/)
    expect(err('{"1": {"class_type": "SaveImage", "inputs": {}}}')).toMatch(/no KSampler or KSamplerAdvanced/)
    expect(err('{"nodes": 5}', 'workflow')).toMatch(/no nodes\[\] list/)
    const types = structuredClone(txt2img) as typeof cyc
    types['3']!.inputs.steps = 'twenty'
    types['3']!.inputs.seed = -5
    types['3']!.inputs.cfg = { x: 1 }
    types['5']!.inputs.width = 1e9
    types['7']!.inputs.text = 12
    types['6']!.inputs.text = ['30', 0]
    types['30'] = { class_type: 'StringConcatenate', inputs: { string_a: 'a', string_b: ['31', 0] } }
    const r = parseComfyGraph(JSON.stringify(types))
    expect(r.params.steps).toBeUndefined()
    expect(r.params.seed).toBeUndefined()
    expect(r.params.width).toBeUndefined()
    expect(r.params.negativePrompt).toBe('')
    expect(r.params.prompt).toBe('<lora:add_detail:0.6> <lora:hanfu_loha:0.5:0.8>')
    expect(r.notRestored).toEqual([
      'seed -5 is not a non-negative integer',
      'steps: "twenty" is not a number',
      'cfg: {"x":1} is not a number',
      'CLIPTextEncode text comes from StringConcatenate (not a literal value)',
      'negative prompt is not text',
      'size 1000000000x768 is out of range',
    ])
  })
})
