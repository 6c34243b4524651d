import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { writeAdapterFile } from '../e2e/fixtures/lycoris-files'
import type { AdapterLayer } from '../e2e/fixtures/lycoris-files'
import { convertCheckpoint } from '../main/engine/convert/convert'
import { applyLoras } from '../main/engine/lora/variant'
import { runStudio, withDefaults } from '../main/engine/pipelines/generate'
import { ActiveModel, ModelSet } from '../main/engine/runtime/model-set'
import type { Component } from '../main/engine/runtime/model-set'
import type { SessionConfig } from '../main/engine/runtime/session'
import { findTokenizer } from '../main/engine/tokenizer'
import { onnx } from '../main/model-formats/onnx/builder'
import { ensureFullSd15 } from './fixtures/full-sd15'
import { benchDir, loadAverage } from './unet-common'

/**
 * Seconds to a finished 512x512 image on the random full-size SD 1.5 (bench/fixtures/full-sd15.ts), CPU
 * provider, the generation worker's session config (optimised-model cache):
 *
 * - `lcm`: 4 steps, sampler LCM, CFG 1, with an LCM-LoRA: a random kohya LoRA laid out as
 *   latent-consistency/lcm-lora-sdv1-5 is (rank 64 on every transformer Linear and every ResNet conv of the
 *   UNet; `lora_unet_*` keys with alpha), applied as branches at multiplier 1 — its cost is the branches'
 *   compute; the weights being random does not change the work;
 * - `euler_a`: 20 steps, Euler a, CFG 7 (two UNet evaluations per step), the plain checkpoint.
 *
 * Interleaved (`--rounds` pairs, default 1): each case loads its model set (timed: `load_s`, after the first
 * round the optimised copies exist) and then generates (timed: `generate_s`, text encoding, every step and
 * the VAE decode), so `total_s` is what a user waits for after a model switch. Prints JSON; run alone.
 *
 *   npx tsx bench/lcm.ts [--rounds 1] [--size 512]
 */

const log = (m: string): void => void process.stderr.write(`${m}\n`)

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

const r2 = (x: number): number => +x.toFixed(2)

const LINEAR =
  /\.attentions\.\d+\.(proj_in|proj_out|transformer_blocks\.\d+\.(attn[12]\.to_(q|k|v|out\.0)|ff\.net\.(0\.proj|2)))\.weight$/
const CONV = /\.(resnets\.\d+\.(conv[12]|conv_shortcut|time_emb_proj)|(down|up)samplers\.0\.conv)\.weight$/

/** The UNet layers an LCM-LoRA for SD 1.5 targets, with their shapes, read from the converted UNet. */
function lcmLayers(unetPath: string): AdapterLayer[] {
  const m = onnx.ModelProto.decode(fs.readFileSync(unetPath))
  const out: AdapterLayer[] = []
  for (const t of m.graph?.initializer ?? []) {
    const name = t.name ?? ''
    if (!LINEAR.test(name) && !CONV.test(name)) continue
    out.push({
      name: `lora_unet_${name.slice(0, -'.weight'.length).replace(/\./g, '_')}`,
      shape: (t.dims ?? []).map(Number),
    })
  }
  return out
}

const APP: SessionConfig = { preference: 'cpu', optimizedCache: true }
const STAGES: readonly Component[] = ['text_encoder', 'unet', 'vae_decoder']

async function main(): Promise<void> {
  const rounds = Number(arg('rounds', '1'))
  const size = Number(arg('size', '512'))
  const load0 = loadAverage()
  const ckpt = ensureFullSd15(log)
  const converted = await convertCheckpoint(ckpt, { cacheRoot: benchDir('session-cache'), precision: 'fp16' })
  const loraFile = path.join(benchDir('lcm'), 'lcm-lora-sdv1-5-random.safetensors')
  const layers = lcmLayers(converted.paths.unet)
  if (!fs.existsSync(loraFile)) {
    log(`lcm: writing a random LCM-LoRA (${layers.length} layers, rank 64)`)
    await writeAdapterFile(loraFile, 'lora', layers, { rank: 64, convRank: 64, seed: 9, scale: 0.005 })
  }
  const variant = await applyLoras(converted, [{ path: loraFile, multiplier: 1 }], {
    cacheRoot: benchDir('session-cache'),
  })
  const tokenizer = await findTokenizer({})
  const active = new ActiveModel()
  const cases = {
    lcm: {
      set: () => new ModelSet('lcm', variant.paths, APP, variant.inputs),
      req: { steps: 4, sampler: 'LCM', cfgScale: 1 },
    },
    euler_a: {
      set: () => new ModelSet('base', converted.paths, APP),
      req: { steps: 20, sampler: 'Euler a', cfgScale: 7 },
    },
  }
  const runs: Record<string, unknown>[] = []
  for (let round = 0; round < rounds; round++)
    for (const [name, c] of Object.entries(cases)) {
      log(`lcm: round ${round + 1} ${name}: loading…`)
      let t = performance.now()
      const set = await active.use(c.set())
      await set.load(STAGES)
      const load = (performance.now() - t) / 1000
      const optimized = set.graph('unet').optimized?.state
      log(`lcm: ${name} loaded in ${load.toFixed(1)} s (${optimized}); generating…`)
      const stepTimes: number[] = []
      let last = performance.now()
      t = performance.now()
      await runStudio(
        withDefaults({
          mode: 'txt2img',
          model: name,
          prompt: 'a lighthouse at dusk, watercolor',
          negativePrompt: 'blurry',
          width: size,
          height: size,
          seed: 1,
          ...c.req,
        }),
        1,
        {
          model: set,
          encode: (x) => tokenizer.encode(x),
          inpaintModel: false,
          onProgress: () => {
            const now = performance.now()
            stepTimes.push((now - last) / 1000)
            last = now
          },
        },
      )
      const generate = (performance.now() - t) / 1000
      log(`lcm: ${name} generated in ${generate.toFixed(1)} s`)
      runs.push({
        round: round + 1,
        case: name,
        ...c.req,
        optimised_copy: optimized,
        load_s: r2(load),
        generate_s: r2(generate),
        total_s: r2(load + generate),
        step_s: stepTimes.map(r2),
      })
    }
  await active.release()
  const gen = (n: string): number[] => runs.filter((r) => r.case === n).map((r) => r.generate_s as number)
  const best = (n: string): number => Math.min(...gen(n))
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'lcm',
        model: `random full-size SD 1.5, ${size}x${size}, CPU provider, optimised-model cache`,
        lora: { file: path.basename(loraFile), layers: layers.length, rank: 64 },
        cores: os.cpus().length,
        runs,
        lcm_4_step_generate_s: best('lcm'),
        euler_a_20_step_generate_s: best('euler_a'),
        speedup: r2(best('euler_a') / best('lcm')),
        load_average: { before: load0, after: loadAverage() },
      },
      null,
      2,
    )}\n`,
  )
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
