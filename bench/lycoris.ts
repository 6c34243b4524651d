import fs from 'node:fs'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { writeAdapterFile } from '../e2e/fixtures/lycoris-files'
import type { AdapterLayer, FixtureAdapterKind } from '../e2e/fixtures/lycoris-files'
import { ModelSet } from '../main/engine/runtime/model-set'
import { convertCheckpoint } from '../main/engine/convert/convert'
import { applyLoras } from '../main/engine/lora/variant'
import type { LoraApplyOptions, LoraSpec } from '../main/engine/lora/variant'
import { onnx } from '../main/model-formats/onnx/builder'
import { ensureFullSd15 } from './fixtures/full-sd15'
import { benchDir, loadAverage, median } from './unet-common'

/**
 * Per-step UNet cost of each adapter kind against plain LoRA on the random full-size SD 1.5
 * (bench/fixtures/full-sd15.ts), and the time from a multiplier change to a ready session.
 *
 * Adapters (seeded random factors, e2e/fixtures/lycoris-files.ts) target every Linear of the UNet's
 * transformer blocks (proj_in/out, attn1/attn2 q/k/v/out, GEGLU ff) - what kohya / LyCORIS train by default;
 * LoCon also every ResNet 3x3 conv. Ranks: LoRA / LoCon / DoRA 16 (convs 8), LoHa 8, LoKr 8 (balanced
 * factors, w2 decomposed), full = a dense diff. Forms: `branch` = low-rank branches y + m * up(down(x))
 * (LoHa too, as an exact rank r1*r2 pair);
 * `delta` = W + m * D in the graph (D computed once per file, m a graph input); `lora-as-delta` is the plain
 * LoRA run through the delta form, to compare the two forms on the same file.
 *
 * Each variant: build time (first applyLoras), session creation, then UNet runs (batch 1, `--latent` square
 * latents, default 64): one warm-up and `--rounds` timed (median). Multiplier change: applyLoras with the
 * new multiplier (cached variant) + setInputs on the loaded set, then the first UNet run; beside it what merge
 * mode pays (merged weights written + a new session). Prints JSON. Needs ~8 GiB free memory.
 *
 *   npx tsx bench/lycoris.ts [--latent 64] [--rounds 2] [--kinds lora,locon,loha,lokr,dora,full,lora-as-delta]
 */

const log = (m: string): void => void process.stderr.write(`${m}\n`)

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

const TRANSFORMER =
  /\.attentions\.\d+\.(proj_in|proj_out|transformer_blocks\.\d+\.(attn[12]\.to_(q|k|v|out\.0)|ff\.net\.(0\.proj|2)))\.weight$/
const RESNET_CONV = /\.resnets\.\d+\.conv[12]\.weight$/

function unetLayers(modelPath: string): { attn: AdapterLayer[]; convs: AdapterLayer[] } {
  const m = onnx.ModelProto.decode(fs.readFileSync(modelPath))
  const attn: AdapterLayer[] = []
  const convs: AdapterLayer[] = []
  for (const t of m.graph?.initializer ?? []) {
    const name = t.name ?? ''
    const layer = {
      name: `lora_unet_${name.slice(0, -'.weight'.length).replace(/\./g, '_')}`,
      shape: (t.dims ?? []).map(Number),
    }
    if (TRANSFORMER.test(name)) attn.push(layer)
    else if (RESNET_CONV.test(name)) convs.push(layer)
  }
  return { attn, convs }
}

const sec = (ms: number): number => Math.round(ms) / 1000

async function main(): Promise<void> {
  const latent = Number(arg('latent', '64'))
  const rounds = Number(arg('rounds', '2'))
  const kinds = arg('kinds', 'none,lora,locon,loha,lokr,dora,full,lora-as-delta').split(',')
  const dir = benchDir('lycoris')
  const cacheRoot = path.join(dir, 'cache')
  const ckpt = ensureFullSd15(log)
  log('converting the full-size SD 1.5 (cached)')
  const base = await convertCheckpoint(ckpt, { cacheRoot })
  const { attn, convs } = unetLayers(base.paths.unet)
  log(`${attn.length} transformer linears, ${convs.length} resnet 3x3 convs`)

  const files: Partial<Record<FixtureAdapterKind, string>> = {}
  const file = async (k: FixtureAdapterKind): Promise<string> => {
    const f = path.join(dir, `${k}.safetensors`)
    if (!fs.existsSync(f)) {
      log(`writing ${k}.safetensors`)
      const layers = k === 'locon' ? [...attn, ...convs] : attn
      const rank = k === 'loha' || k === 'lokr' ? 8 : 16
      await writeAdapterFile(f, k, layers, { rank, convRank: 8, seed: 3, scale: 0.02 })
    }
    files[k] = f
    return f
  }

  const sample = new ort.Tensor('float32', new Float32Array(4 * latent * latent).fill(0.1), [
    1,
    4,
    latent,
    latent,
  ])
  const context = new ort.Tensor('float32', new Float32Array(77 * 768).fill(0.01), [1, 77, 768])
  const steps = async (set: ModelSet): Promise<{ first: number; median: number; runs: number[] }> => {
    const t0 = performance.now()
    await set.unet(sample, 500, context)
    const first = performance.now() - t0
    const runs: number[] = []
    for (let r = 0; r < rounds; r++) {
      const t = performance.now()
      await set.unet(sample, 400 - r, context)
      runs.push(performance.now() - t)
    }
    return { first, median: median(runs), runs }
  }

  const results: Record<string, unknown> = {}
  let plainStep = 0
  for (const kind of kinds) {
    const adapterKind = (kind === 'lora-as-delta' ? 'lora' : kind) as FixtureAdapterKind
    const specs: LoraSpec[] = kind === 'none' ? [] : [{ path: await file(adapterKind), multiplier: 0.8 }]
    const opts: LoraApplyOptions = { cacheRoot, ...(kind === 'lora-as-delta' ? { branches: false } : {}) }
    log(`${kind}: building`)
    const tb = performance.now()
    const v = await applyLoras(base, specs, opts)
    const build = performance.now() - tb
    const ts = performance.now()
    const set = new ModelSet(kind, v.paths, { preference: 'cpu' }, v.inputs)
    await set.unet(sample, 999, context) // creates the session
    const sessionAndFirst = performance.now() - ts
    log(`${kind}: timing`)
    const t = await steps(set)
    if (kind === 'none') plainStep = t.median
    const row: Record<string, unknown> = {
      form:
        kind === 'none'
          ? 'base'
          : kind === 'lora' || kind === 'locon'
            ? 'branch'
            : kind === 'loha'
              ? 'branch (rank r1*r2)'
              : 'delta',
      buildS: sec(build),
      cachedVariant: v.cached,
      sessionAndFirstStepS: sec(sessionAndFirst),
      stepS: sec(t.median),
      stepRunsS: t.runs.map(sec),
      vsBase: plainStep ? Math.round((t.median / plainStep) * 1000) / 1000 : null,
      sideFileMB: v.paths.unet.endsWith('model.onnx')
        ? 0
        : Math.round(fs.statSync(v.paths.unet.replace(/\.onnx$/, '.bin')).size / 1e6),
    }
    if (kind === 'loha' || kind === 'lora') {
      // Multiplier change on the loaded set: same graph, new feed.
      const tc = performance.now()
      const v2 = await applyLoras(base, [{ path: specs[0]?.path as string, multiplier: 0.5 }], opts)
      set.setInputs(v2.inputs)
      const ready = performance.now() - tc
      const t1 = performance.now()
      await set.unet(sample, 300, context)
      row.multiplierChange = {
        sameGraph: v2.paths.unet === v.paths.unet,
        toReadyS: sec(ready),
        firstStepAfterS: sec(performance.now() - t1),
      }
    }
    await set.release()
    if (kind === 'loha') {
      // The alternative: merge mode writes merged weights and needs a new session for every multiplier.
      const tm = performance.now()
      const mv = await applyLoras(base, [{ path: specs[0]?.path as string, multiplier: 0.6 }], {
        cacheRoot,
        mode: 'merge',
      })
      const written = performance.now() - tm
      const ms = new ModelSet('merge', mv.paths, { preference: 'cpu' })
      await ms.unet(sample, 999, context)
      const ready = performance.now() - tm
      const mt = await steps(ms)
      await ms.release()
      row.mergeModeMultiplierChange = {
        writeMergedS: sec(written),
        toFirstStepDoneS: sec(ready),
        stepS: sec(mt.median),
      }
    }
    results[kind] = row
    log(`${kind}: ${JSON.stringify(row)}`)
  }
  console.log(
    JSON.stringify(
      {
        bench: 'lycoris',
        model: 'random full-size SD 1.5 (bench/fixtures/full-sd15.ts), CPU provider',
        latent: [latent, latent],
        batch: 1,
        rounds,
        targets: { transformerLinears: attn.length, resnetConvsLoCon: convs.length },
        loadAverageAfter: loadAverage(),
        results,
      },
      null,
      2,
    ),
  )
}

void main().catch((err: unknown) => {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err))
  process.exit(1)
})
