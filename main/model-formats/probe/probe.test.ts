import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { repoRoot } from '../../platform/paths'
import { PickleRefusedError } from '../pickle'
import { SafetensorsError, writeSafetensors } from '../safetensors'
import type { ProbeResult } from '../probe'
import { assertLoraCompatible, assertRunnable, probeHeader, probeModel, ProbeError } from '../probe'
import {
  hfClip,
  ldmUnet,
  ldmVae,
  openClip,
  SD15_UNET,
  SD21_UNET,
  SDXL_REFINER_UNET,
  SDXL_UNET,
  toHeader,
} from './fixtures'

// The seeded tiny models (same topologies as the oracle's tiny ones); ../shared only adds its pickles.
const tiny = await ensureTinyModels()
const shared = path.resolve(repoRoot(), '../shared')

const TINY_UNET = {
  inChannels: 4,
  outChannels: 4,
  modelChannels: 32,
  blockOutChannels: [32, 64, 64, 64],
  layersPerBlock: 2,
  transformerDepth: [1, 1, 1, 0],
  midTransformerDepth: 1,
  transformerDepthUp: [0, 1, 1, 1],
  heads: [8, 8, 8, 0],
  midHeads: 8,
  contextDim: 64,
  timeEmbedDim: 128,
  linearProjection: false,
}
const TINY_VAE = {
  inChannels: 3,
  outChannels: 3,
  blockOutChannels: [32, 64, 64, 64],
  layersPerBlock: 2,
  latentChannels: 4,
  hasQuantConv: true,
  scalingFactor: 0.18215,
}
const TINY_TE = {
  naming: 'hf-clip',
  width: 64,
  layers: 2,
  heads: 1,
  mlpDim: 256,
  vocabSize: 49408,
  maxPositions: 77,
}

describe('the tiny models', () => {
  const probes: Record<string, ProbeResult> = {}
  beforeAll(async () => {
    const files = {
      sd15: tiny.sd15,
      inpaint: tiny.sd15Inpaint,
      diffusers: tiny.sd15Diffusers,
      lora: tiny.lora,
      sdxl: tiny.sdxl,
      sdxlLora: tiny.sdxlLora,
      sdxlDiffusers: tiny.sdxlDiffusers,
      vaeFolder: path.join(tiny.sd15Diffusers, 'vae'),
    }
    for (const [k, f] of Object.entries(files)) probes[k] = await probeModel(f)
  })

  it('tiny-sd15: LDM single file, SD 1.x, every architecture number', () => {
    const p = probes.sd15!
    expect(p).toMatchObject({
      format: 'ldm-single-file',
      type: 'checkpoint',
      base: 'sd-1',
      variant: 'normal',
    })
    expect(p).toMatchObject({ family: 'sd-1', runnable: true, dtype: 'F16' })
    expect(p.unet).toEqual(TINY_UNET)
    expect(p.vae).toEqual(TINY_VAE)
    expect(p.textEncoders).toEqual([{ ...TINY_TE, hiddenAct: 'quick_gelu' }])
    expect(() => assertRunnable(p)).not.toThrow()
  })
  it('tiny-sd15-inpaint: 9-channel UNet', () => {
    expect(probes.inpaint).toMatchObject({
      base: 'sd-1',
      variant: 'inpaint',
      family: 'sd-1-inpaint',
      runnable: true,
    })
    expect(probes.inpaint!.unet).toEqual({ ...TINY_UNET, inChannels: 9 })
  })
  it('tiny-sd15-diffusers: folder with configs gives the same numbers', () => {
    const p = probes.diffusers!
    expect(p).toMatchObject({ format: 'diffusers', type: 'checkpoint', base: 'sd-1', runnable: true })
    expect(p.predictionType).toBe('epsilon')
    expect(p.unet).toEqual(TINY_UNET)
    expect(p.vae).toEqual(TINY_VAE)
    expect(p.textEncoders).toEqual(probes.sd15!.textEncoders)
    expect(Object.keys(p.files).sort()).toEqual(['text_encoder', 'tokenizer', 'unet', 'vae'])
  })
  it('tiny-lora: kohya SD 1.x LoRA', () => {
    const p = probes.lora!
    expect(p).toMatchObject({ type: 'lora', base: 'sd-1', runnable: true })
    expect(p.lora).toEqual({
      naming: 'kohya',
      rank: 4,
      ranks: [4],
      modules: ['unet', 'te'],
      // TINY_SD15_LAYERS less its two 3x3 convs (plain LoRA, as kohya trains it, leaves those out).
      moduleCount: 6,
      hasAlpha: true,
      contextDim: 64,
      textEncoderWidths: { te: 64 },
      sgmUnetNames: false,
    })
    expect(() => assertLoraCompatible(p, probes.sd15!)).not.toThrow()
    expect(() => assertLoraCompatible(p, probes.diffusers!)).not.toThrow()
  })
  it('tiny-sdxl: runnable, with SDXL numbers', () => {
    const p = probes.sdxl!
    expect(p).toMatchObject({ type: 'checkpoint', base: 'sdxl', variant: 'normal', runnable: true })
    expect(p.reason).toBeUndefined()
    expect(p.unet).toMatchObject({
      blockOutChannels: [32, 64, 128],
      transformerDepth: [0, 1, 2],
      midTransformerDepth: 2,
      transformerDepthUp: [2, 1, 0],
      heads: [0, 1, 2],
      midHeads: 2,
      contextDim: 192,
      linearProjection: true,
      additionEmbedInDim: 320,
      additionTimeEmbedDim: 32,
    })
    expect(p.vae?.scalingFactor).toBe(0.13025)
    expect(
      p.textEncoders?.map((t) => [t.naming, t.width, t.layers, t.heads, t.hiddenAct, t.projectionDim]),
    ).toEqual([
      ['hf-clip', 64, 2, 1, 'quick_gelu', undefined],
      ['open-clip', 128, 3, 2, 'gelu', 128],
    ])
    expect(() => assertRunnable(p)).not.toThrow()
  })
  it('tiny-sdxl-diffusers agrees with the single file', () => {
    const p = probes.sdxlDiffusers!
    expect(p).toMatchObject({ format: 'diffusers', base: 'sdxl', variant: 'normal', runnable: true })
    expect(p.unet).toEqual(probes.sdxl!.unet)
    expect(p.textEncoders?.map((t) => t.width)).toEqual([64, 128])
  })
  it('tiny-sdxl-lora: SDXL LoRA, and the compatibility errors', () => {
    const p = probes.sdxlLora!
    expect(p).toMatchObject({ type: 'lora', base: 'sdxl', runnable: true })
    expect(p.lora).toMatchObject({
      rank: 4,
      modules: ['unet', 'te1', 'te2'],
      contextDim: 192,
      sgmUnetNames: true,
    })
    expect(p.lora?.textEncoderWidths).toEqual({ te1: 64, te2: 128 })
    expect(() => assertLoraCompatible(p, probes.sd15!)).toThrow(
      'this LoRA is for SDXL; the checkpoint is SD 1.x',
    )
    expect(() => assertLoraCompatible(probes.lora!, probes.sdxl!)).toThrow(
      'this LoRA is for SD 1.x; the checkpoint is SDXL',
    )
    expect(() => assertLoraCompatible(p, probes.sdxl!)).not.toThrow()
  })
  it('a diffusers vae/ folder on its own (SD 1.x by its pipeline folder name, tiny-sd15-diffusers)', () => {
    expect(probes.vaeFolder).toMatchObject({
      format: 'diffusers',
      type: 'vae',
      base: 'sd-1',
      family: 'sd-1',
      vae: TINY_VAE,
    })
  })
  it('reads pickles safely (refusing forbidden globals by name) and points at diffusers components', async () => {
    const pth = path.join(shared, 'oracle-pickle', 'state-dict.pth')
    // A safe state dict is read and probed like a header: these random tensors are no known model.
    if (existsSync(pth)) await expect(probeModel(pth)).rejects.toMatchObject({ code: 'unknown-model' })
    const evil = path.join(shared, 'oracle-pickle', 'forbidden-global.pth')
    if (existsSync(evil)) {
      await expect(probeModel(evil)).rejects.toBeInstanceOf(PickleRefusedError)
      await expect(probeModel(evil)).rejects.toThrow(/forbidden global "posix\.system"/)
    }
    const unet = path.join(tiny.sd15Diffusers, 'unet', 'diffusion_pytorch_model.safetensors')
    await expect(probeModel(unet)).rejects.toMatchObject({ code: 'diffusers-component' })
    const traces = path.join(shared, 'oracle', 'unet.safetensors')
    if (existsSync(traces)) await expect(probeModel(traces)).rejects.toMatchObject({ code: 'unknown-model' })
  })
})

describe('full-size headers (synthetic)', () => {
  const probe = (...parts: Record<string, number[]>[]) => probeHeader('/m/x.safetensors', toHeader(...parts))

  it('SD 1.5: 8 heads everywhere, context 768', () => {
    const p = probe(ldmUnet(SD15_UNET), ldmVae(), hfClip('cond_stage_model.transformer.', 768, 12))
    expect(p).toMatchObject({ base: 'sd-1', variant: 'normal', runnable: true })
    expect(p.unet).toMatchObject({
      blockOutChannels: [320, 640, 1280, 1280],
      heads: [8, 8, 8, 0],
      contextDim: 768,
    })
    expect(p.unet).toMatchObject({ timeEmbedDim: 1280, layersPerBlock: 2, midHeads: 8 })
    expect(p.vae).toMatchObject({ blockOutChannels: [128, 256, 512, 512], latentChannels: 4 })
    expect(p.textEncoders?.[0]).toMatchObject({ width: 768, layers: 12, heads: 12, mlpDim: 3072 })
  })
  it('SD 2.1: OpenCLIP text encoder, 64-wide heads, not runnable', () => {
    const p = probe(ldmUnet(SD21_UNET), ldmVae(), openClip('cond_stage_model.model.', 1024, 24))
    expect(p).toMatchObject({ base: 'sd-2', family: 'sd-2', runnable: false })
    expect(p.reason).toMatch(
      /SD 2\.x checkpoints are recognised but not supported yet \(Atelier runs SD 1\.x and SDXL\)/,
    )
    expect(p.unet).toMatchObject({
      heads: [5, 10, 20, 0],
      midHeads: 20,
      contextDim: 1024,
      linearProjection: true,
    })
    expect(p.textEncoders?.[0]).toMatchObject({ naming: 'open-clip', width: 1024, heads: 16 })
  })
  it('SD 2 by UNet alone (context 1024), and depth variant', () => {
    expect(probe(ldmUnet(SD21_UNET))).toMatchObject({ base: 'sd-2' })
    expect(probe(ldmUnet({ ...SD21_UNET, inChannels: 5 }))).toMatchObject({
      variant: 'depth',
      family: 'sd-2-depth',
    })
  })
  it('SDXL base and refiner', () => {
    const base = probe(
      ldmUnet(SDXL_UNET),
      ldmVae(),
      hfClip('conditioner.embedders.0.transformer.', 768, 12),
      openClip('conditioner.embedders.1.model.', 1280, 32, 1280),
    )
    expect(base).toMatchObject({ base: 'sdxl', variant: 'normal', runnable: true })
    expect(base.unet).toMatchObject({ heads: [0, 10, 20], midHeads: 20, transformerDepthUp: [10, 2, 0] })
    expect(base.unet).toMatchObject({ additionEmbedInDim: 2816, additionTimeEmbedDim: 256 })
    const refiner = probe(
      ldmUnet(SDXL_REFINER_UNET),
      ldmVae(),
      openClip('conditioner.embedders.0.model.', 1280, 32, 1280),
    )
    expect(refiner).toMatchObject({
      base: 'sdxl',
      variant: 'refiner',
      family: 'sdxl-refiner',
      runnable: false,
    })
    expect(refiner.unet).toMatchObject({ heads: [0, 12, 24, 0], additionTimeEmbedDim: 256, contextDim: 1280 })
    expect(refiner.reason).toMatch(/SDXL refiner models are recognised but not supported yet/)
    expect(() => assertRunnable(refiner)).toThrow(/x\.safetensors: SDXL refiner .*not supported yet/)
    const oneEncoder = probe(
      ldmUnet(SDXL_UNET),
      ldmVae(),
      openClip('conditioner.embedders.1.model.', 1280, 32, 1280),
    )
    expect(oneEncoder.reason).toMatch(/lacks one of its two text encoders/)
  })
  it('SDXL flavors (Pony, Illustrious, NoobAI) from Civitai baseModel or metadata; they run as SDXL', async () => {
    const keys = toHeader({
      ...ldmUnet(SDXL_UNET),
      ...ldmVae(),
      ...hfClip('conditioner.embedders.0.transformer.', 768, 12),
      ...openClip('conditioner.embedders.1.model.', 1280, 32, 1280),
    })
    const pony = probeHeader('/m/p.safetensors', keys, {}, 'Pony')
    expect(pony).toMatchObject({ base: 'sdxl', flavor: 'pony', label: 'SDXL (Pony)', runnable: true })
    expect(probeHeader('/m/i.safetensors', keys, {}, 'Illustrious').label).toBe('SDXL (Illustrious)')
    expect(probeHeader('/m/n.safetensors', keys, { 'modelspec.title': 'NoobAI-XL v1.1' }).flavor).toBe(
      'noobai',
    )
    expect(probeHeader('/m/s.safetensors', keys, {}, 'SDXL 1.0').flavor).toBeUndefined()
    expect(probeHeader('/m/v7.safetensors', keys, {}, 'Pony V7').flavor).toBeUndefined()
    // A Civitai Helper sidecar beside the file (an SDXL LoRA: two text encoders).
    const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-flavor-'))
    try {
      const f = path.join(dir, 'style.safetensors')
      const z = (shape: number[]) => ({
        dtype: 'F32' as const,
        shape,
        data: new Float32Array(shape[0]! * shape[1]!),
      })
      await writeSafetensors(f, {
        'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight': z([4, 16]),
        'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight': z([64, 4]),
      })
      expect((await probeModel(f)).flavor).toBeUndefined()
      await writeFile(path.join(dir, 'style.civitai.info'), JSON.stringify({ baseModel: 'Illustrious' }))
      expect(await probeModel(f)).toMatchObject({ base: 'sdxl', flavor: 'illustrious' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
  it('unsupported input channels', () => {
    expect(() => probe(ldmUnet({ ...SD15_UNET, inChannels: 8 }))).toThrow(/8 input channels/)
  })
  it('standalone VAE (LDM naming, no prefix)', () => {
    expect(probe(ldmVae(''))).toMatchObject({ type: 'vae', base: null, runnable: true })
  })
  it('checkpoint without VAE is not runnable', () => {
    const p = probe(ldmUnet(SD15_UNET), hfClip('cond_stage_model.transformer.', 768, 12))
    expect(p).toMatchObject({ runnable: false, reason: expect.stringMatching(/no VAE/) as unknown })
  })
  it('textual inversion embeddings', () => {
    expect(probe({ emb_params: [4, 768] })).toMatchObject({
      type: 'embedding',
      base: 'sd-1',
      embedding: { vectors: 4 },
    })
    expect(probe({ 'string_to_param.*': [2, 1024] })).toMatchObject({ type: 'embedding', base: 'sd-2' })
    const xl = probe({ clip_l: [3, 768], clip_g: [3, 1280] })
    expect(xl).toMatchObject({
      type: 'embedding',
      base: 'sdxl',
      embedding: { widths: { clip_l: 768, clip_g: 1280 } },
    })
  })
  it('diffusers / PEFT LoRAs', () => {
    const peft = probe({
      'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight': [8, 768],
      'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight': [320, 8],
      'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight': [8, 768],
      'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight': [768, 8],
    })
    expect(peft).toMatchObject({
      type: 'lora',
      base: 'sd-1',
      lora: { naming: 'peft', rank: 8, modules: ['unet', 'te'] },
    })
    expect(peft.lora?.hasAlpha).toBe(false)
    const old = probe({
      'unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora.down.weight': [16, 2048],
      'unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora.up.weight': [1280, 16],
    })
    expect(old).toMatchObject({ base: 'sdxl', lora: { naming: 'diffusers', rank: 16, contextDim: 2048 } })
    const sd2 = probe({
      'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight': [4, 320],
      'lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight': [320, 4],
    })
    expect(sd2.base).toBe('sd-2')
  })
  it('LoRA base from kohya metadata when shapes do not tell', () => {
    const keys = toHeader({ 'lora_unet_x.lora_down.weight': [4, 10], 'lora_unet_x.lora_up.weight': [10, 4] })
    expect(probeHeader('/m/l.safetensors', keys, { ss_base_model_version: 'sdxl_base_v1-0' }).base).toBe(
      'sdxl',
    )
    expect(probeHeader('/m/l.safetensors', keys, { ss_v2: 'True' }).base).toBe('sd-2')
  })
  it('LyCORIS files probe as LoRAs; OFT and unknown files get specific errors', () => {
    const loha = probe({
      'lora_unet_a_attn2_to_k.hada_w1_a': [320, 4],
      'lora_unet_a_attn2_to_k.hada_w1_b': [4, 768],
      'lora_unet_a_attn2_to_k.hada_w2_a': [320, 4],
      'lora_unet_a_attn2_to_k.hada_w2_b': [4, 768],
      'lora_unet_a_attn2_to_k.alpha': [],
    })
    expect(loha.type).toBe('lora')
    expect(loha.base).toBe('sd-1')
    expect(loha.lora?.lycoris).toEqual(['loha'])
    expect(loha.lora?.rank).toBe(4)
    const lokr = probe({
      'lora_unet_a_attn2_to_k.lokr_w1': [4, 8],
      'lora_unet_a_attn2_to_k.lokr_w2_a': [80, 2],
      'lora_unet_a_attn2_to_k.lokr_w2_b': [2, 256],
      'lora_unet_a_attn2_to_k.dora_scale': [1, 2048],
    })
    expect(lokr.base).toBe('sdxl')
    expect(lokr.lora?.lycoris).toEqual(['dora', 'lokr'])
    const full = probe({ 'lora_te_text_model_encoder_layers_0_self_attn_q_proj.diff': [768, 768] })
    expect(full.base).toBe('sd-1')
    expect(full.lora?.lycoris).toEqual(['full'])
    expect(() => probe({ 'lora_unet_x.oft_blocks': [4, 4] })).toThrow(/OFT/)
    expect(() => probe({ 'foo.weight': [1] })).toThrow(/x\.safetensors: not a Stable Diffusion checkpoint/)
  })
  it('LoRA context width must match the checkpoint', () => {
    const ckpt = probe(ldmUnet(SD21_UNET), ldmVae(), hfClip('cond_stage_model.transformer.', 1024, 2))
    const lora = probe({
      'lora_unet_a_attn2_to_k.lora_down.weight': [4, 1024],
      'lora_unet_a_attn2_to_k.lora_up.weight': [320, 4],
      'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': [4, 768],
    })
    expect(lora.base).toBe('sd-2')
    expect(() => assertLoraCompatible(lora, ckpt)).toThrow(/text encoder of width 768.*width 1024/)
  })
})

describe('probe errors on files', () => {
  let dir = ''
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-probe-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })
  it('ONNX pipeline folders are recognised, not runnable; pickle-only diffusers folders are refused', async () => {
    const onnx = path.join(dir, 'onnx-model')
    await mkdir(path.join(onnx, 'unet'), { recursive: true })
    await writeFile(path.join(onnx, 'model_index.json'), '{"_class_name": "OnnxStableDiffusionPipeline"}')
    await writeFile(path.join(onnx, 'unet', 'model.onnx'), '')
    const p = await probeModel(onnx)
    expect(p).toMatchObject({ format: 'onnx', type: 'checkpoint', runnable: false })
    expect(p.reason).toMatch(/ONNX pipeline folders are recognised but not yet runnable/)
    expect(p.files.unet).toBe(path.join(onnx, 'unet', 'model.onnx'))

    const old = path.join(dir, 'old-diffusers')
    await mkdir(path.join(old, 'unet'), { recursive: true })
    await writeFile(path.join(old, 'model_index.json'), '{"_class_name": "StableDiffusionPipeline"}')
    await writeFile(
      path.join(old, 'unet', 'diffusion_pytorch_model.bin'),
      Buffer.from([0x80, 0x02, 0x7d, 0x2e]),
    )
    await expect(probeModel(old)).rejects.toThrow(/diffusion_pytorch_model\.bin is a Python pickle/)
  })
  it('missing path, pickle bytes, a lying header, an empty folder', async () => {
    await expect(probeModel(path.join(dir, 'nope.safetensors'))).rejects.toMatchObject({ code: 'not-found' })
    const pkl = path.join(dir, 'model.safetensors')
    await writeFile(pkl, Buffer.from([0x80, 0x04, 0x95, 0, 0, 0]))
    await expect(probeModel(pkl)).rejects.toBeInstanceOf(PickleRefusedError)
    const lying = path.join(dir, 'lying.safetensors')
    await writeSafetensors(lying, { a: { dtype: 'F32', shape: [2], data: new Float32Array(2) } })
    const buf = Buffer.from(await import('node:fs/promises').then((f) => f.readFile(lying)))
    await writeFile(lying, Buffer.from(buf.toString('latin1').replace('[0,8]', '[0,9]'), 'latin1'))
    await expect(probeModel(lying)).rejects.toBeInstanceOf(SafetensorsError)
    await expect(probeModel(dir)).rejects.toBeInstanceOf(ProbeError)
  })
})
