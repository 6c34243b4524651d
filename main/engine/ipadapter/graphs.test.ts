import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { maxAbsDiff } from '../reference/tolerance'
import { mapLdmUnetKeys } from '../convert/ldm-unet-keys'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import { buildClipVision, clipVisionConfig } from '../graphs/clip-vision'
import { buildUnet } from '../graphs/unet'
import { InlineWeights } from '../graphs/weights'
import { f16ToF32 } from '../../model-formats/safetensors'
import { assertAdapterFitsUnet, loadIpAdapter } from './adapter'
import { crossAttentionLayers } from './layers'
import { clipPreprocess, clipPreprocessConfig, clipResize } from './preprocess'
import { combineEmbeds, projectImageEmbeds, projectRaw, unconditionalTokens } from './projection'
import { IP_SCALE_INPUT, ipAdapterHook } from './unet-hook'

/**
 * The IP-Adapter building blocks against the public golden set, tensor by tensor, including the trace
 * tensors (encoder layers, attention probabilities) that the reference runner does not produce.
 */

const SET = path.resolve(repoRoot(), '../shared/oracle-ipadapter')
const SD1 = path.resolve(repoRoot(), '../shared/oracle/tiny-sd15.safetensors')
const present = fs.existsSync(path.join(SET, 'manifest.json')) && fs.existsSync(SD1)
if (!present) console.warn(`skipping IP-Adapter graph tests: ${SET} (or ${SD1}) is absent`)

type T = { shape: number[]; data: Float32Array | Uint8Array }

async function readCase(name: string): Promise<Map<string, T>> {
  const f = await SafetensorsFile.open(path.join(SET, `${name}.safetensors`))
  const out = new Map<string, T>()
  for (const k of f.keys())
    out.set(k, {
      shape: f.info(k).shape,
      data: f.info(k).dtype === 'U8' ? ((await f.readTyped(k)) as Uint8Array) : await f.readFloat32(k),
    })
  await f.close()
  return out
}

async function inline(
  file: string,
  map: (k: string) => string | undefined = (k) => k,
): Promise<InlineWeights> {
  const f = await SafetensorsFile.open(file)
  const m = new Map<string, { shape: number[]; data: Float32Array }>()
  for (const k of f.keys()) {
    const name = map(k)
    if (name) m.set(name, { shape: f.info(k).shape, data: await f.readFloat32(k) })
  }
  await f.close()
  return new InlineWeights(m)
}

function within(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  let bad = 0
  for (let i = 0; i < b.length; i++)
    if (!(Math.abs((a[i] as number) - (b[i] as number)) <= atol + rtol * Math.abs(b[i] as number))) bad++
  return bad
}

describe.skipIf(!present)('IP-Adapter building blocks vs the golden set', () => {
  it('CLIPImageProcessor: PIL-exact bicubic resize and the normalised pixel values', async () => {
    const c = await readCase('clip_preprocess')
    const cfg = clipPreprocessConfig(28)
    const imgs = [0, 1].map((i) => {
      const t = c.get(`image_uint8_hwc_${i}`) as T
      return {
        data: t.data as Uint8Array,
        height: t.shape[0] ?? 0,
        width: t.shape[1] ?? 0,
        channels: 3 as const,
      }
    })
    for (const [i, img] of imgs.entries())
      expect(maxAbsDiff(clipResize(img, cfg).data, (c.get(`debug_resized_uint8_hwc_${i}`) as T).data)).toBe(0)
    expect(maxAbsDiff(clipPreprocess(imgs, cfg), (c.get('pixel_values') as T).data)).toBeLessThanOrEqual(1e-6)
  })

  it('image encoder: every layer and the image embeddings', async () => {
    const c = await readCase('image_encoder')
    const w = await inline(path.join(SET, 'image_encoder/model.safetensors'))
    const hf = JSON.parse(fs.readFileSync(path.join(SET, 'image_encoder/config.json'), 'utf8')) as object
    const cfg = clipVisionConfig(w, hf)
    expect(cfg).toMatchObject({
      width: 64,
      layers: 2,
      heads: 1,
      mlp: 256,
      patch: 14,
      imageSize: 28,
      projectionDim: 48,
      act: 'gelu',
    })
    const { graph } = buildClipVision(w, { config: hf, debug: true })
    const s = await ort.InferenceSession.create(graph.encode())
    const px = c.get('pixel_values') as T
    const out = await s.run({ pixel_values: new ort.Tensor('float32', px.data as Float32Array, px.shape) })
    for (const [mine, gold] of [
      ['debug_embeddings_ln_pre', 'debug_embeddings_ln_pre'],
      ['debug_hidden_state_1', 'debug_hidden_state_1'],
      ['debug_hidden_state_2', 'debug_hidden_state_2'],
      ['debug_pooled_ln_post', 'debug_pooled_ln_post'],
      ['image_embeds', 'image_embeds'],
    ] as const) {
      const d = maxAbsDiff(out[mine]?.data as Float32Array, (c.get(gold) as T).data)
      expect(d, mine).toBeLessThan(1e-4)
    }
    await s.release()
  })

  it('projection: image tokens, unconditional tokens from zeros, blend average', async () => {
    const c = await readCase('image_proj')
    const a = await loadIpAdapter(path.join(SET, 'tiny-ip-adapter.safetensors'))
    expect(a).toMatchObject({ tokens: 4, crossAttentionDim: 64, clipEmbeddingsDim: 48, family: null })
    expect(a.layers.map((l) => l.n)).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31])
    const e = (c.get('image_embeds') as T).data as Float32Array
    expect(maxAbsDiff(projectRaw(a, e, 2), (c.get('debug_proj_reshaped') as T).data)).toBeLessThan(1e-5)
    expect(maxAbsDiff(projectImageEmbeds(a, e, 2), (c.get('image_prompt_embeds') as T).data)).toBeLessThan(
      1e-5,
    )
    const u = unconditionalTokens(a)
    const gold = (c.get('uncond_image_prompt_embeds') as T).data
    expect(maxAbsDiff(u, gold.subarray(0, u.length))).toBeLessThan(1e-5)
    const b = await readCase('blend')
    const be = (b.get('image_embeds') as T).data as Float32Array
    expect(maxAbsDiff(combineEmbeds(be, 2), (b.get('blended_image_embeds') as T).data)).toBeLessThan(1e-6)
    expect(maxAbsDiff(combineEmbeds(be, 2, [3, 3]), combineEmbeds(be, 2))).toBe(0)
  })

  it('UNet with the decoupled image attention: eps at every scale, attention probabilities, scale 0 = text only', async () => {
    const c = await readCase('unet_ip')
    const f = await SafetensorsFile.open(SD1)
    const { map } = mapLdmUnetKeys(f.keys())
    await f.close()
    const inverse = new Map([...map].map(([canonical, ldm]) => [ldm, canonical]))
    const unetW = await inline(SD1, (k) => inverse.get(k))
    const a = await loadIpAdapter(path.join(SET, 'tiny-ip-adapter.safetensors'))
    const kv = new Map(
      [...a.kv].map(([k, t]) => [
        k,
        { shape: t.shape, data: t.data instanceof Uint16Array ? f16ToF32(t.data) : t.data },
      ]),
    )
    const layers = crossAttentionLayers(unetW)
    expect(layers.map((l) => l.prefix)).toEqual([
      ...[
        '0.attentions.0',
        '0.attentions.1',
        '1.attentions.0',
        '1.attentions.1',
        '2.attentions.0',
        '2.attentions.1',
      ].map((p) => `down_blocks.${p}.transformer_blocks.0.attn2`),
      ...[
        '1.attentions.0',
        '1.attentions.1',
        '1.attentions.2',
        '2.attentions.0',
        '2.attentions.1',
        '2.attentions.2',
        '3.attentions.0',
        '3.attentions.1',
        '3.attentions.2',
      ].map((p) => `up_blocks.${p}.transformer_blocks.0.attn2`),
      'mid_block.attentions.0.transformer_blocks.0.attn2',
    ])
    assertAdapterFitsUnet(a, { crossAttentionDim: 64, layers })
    const hook = ipAdapterHook({ tokens: 4, weights: new InlineWeights(kv), layers, debugProbs: [1, 31] })
    const { graph } = buildUnet(unetW, { crossAttention: hook })
    const s = await ort.InferenceSession.create(graph.encode())
    const { graph: plain } = buildUnet(unetW)
    const p = await ort.InferenceSession.create(plain.encode())
    const sample = c.get('sample') as T
    const ehs = c.get('encoder_hidden_states') as T
    const text = c.get('text_embeds') as T
    const ts = (c.get('timesteps') as T).data as Float32Array
    const per = sample.data.length
    for (const [k, t] of [...ts].entries()) {
      const feeds = {
        sample: new ort.Tensor('float32', sample.data as Float32Array, sample.shape),
        timestep: new ort.Tensor('float32', Float32Array.of(t), [1]),
        encoder_hidden_states: new ort.Tensor('float32', ehs.data as Float32Array, ehs.shape),
      }
      const textOnly = await p.run({
        ...feeds,
        encoder_hidden_states: new ort.Tensor('float32', text.data as Float32Array, text.shape),
      })
      const plainEps = textOnly.eps?.data as Float32Array
      expect(
        within(
          plainEps,
          ((c.get('eps_text_only') as T).data as Float32Array).subarray(k * per, (k + 1) * per),
          1e-3,
          1e-3,
        ),
      ).toBe(0)
      for (const scale of [1, 0.5, 0]) {
        const out = await s.run({
          ...feeds,
          [IP_SCALE_INPUT]: new ort.Tensor('float32', Float32Array.of(scale), []),
        })
        const key = `eps_scale_${String(scale).replace('.', '_')}${Number.isInteger(scale) ? '_0' : ''}`
        const gold = ((c.get(key) as T).data as Float32Array).subarray(k * per, (k + 1) * per)
        const eps = out.eps?.data as Float32Array
        expect(within(eps, gold, 1e-3, 1e-3), `${key} t=${t}`).toBe(0)
        if (scale === 0) expect(maxAbsDiff(eps, plainEps), 'scale 0 = text only').toBe(0)
        if (k === 0 && scale === 1)
          for (const n of [1, 31]) {
            const probs = out[`debug_ip_attention_probs_N${n}`] as ort.Tensor
            expect(
              maxAbsDiff(probs.data as Float32Array, (c.get(`debug_ip_attention_probs_N${n}`) as T).data),
            ).toBeLessThan(1e-4)
          }
      }
    }
    await s.release()
    await p.release()
  })
})
