import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { ImageEncoder } from '../main/engine/ipadapter/image-encoder'
import { ImagePromptEncoder } from '../main/engine/ipadapter/image-prompt'
import { loadIpAdapter } from '../main/engine/ipadapter/adapter'
import { ipUnetVariant } from '../main/engine/ipadapter/unet-variant'
import { IP_SCALE_INPUT } from '../main/engine/ipadapter/unet-hook'
import { ModelSet } from '../main/engine/runtime/model-set'
import { isProviderPreference } from '../main/engine/runtime/providers'
import type { ProviderPreference } from '../main/engine/runtime/providers'
import { convertCheckpoint } from '../main/engine/convert/convert'
import { ensureIpAdapterSd15, ensureVitH14 } from './fixtures/full-ip-adapter'
import { ensureFullSd15 } from './fixtures/full-sd15'
import { log, machine } from './pipeline-timing'
import { median, unetFlops } from './unet-common'
import { buildUnet } from '../main/engine/graphs/unet'
import { CheckpointWeights } from '../main/engine/graphs/weights'
import { graphWeightSources } from '../main/engine/ipadapter/unet-variant'

/**
 * One UNet step with and without an image prompt on the full-size random-weight SD 1.5 (CFG batch 2,
 * 77 text tokens; with the image prompt + 4 image tokens and IP-Adapter's decoupled attention in all 16
 * cross-attentions at ip_scale 0.6), plus what an image prompt costs once per generation: building the IP
 * UNet variant (cached afterwards), the ViT-H/14 image encoder on one image, the projection. A weight change
 * is timed too: it must be a feed, not a new session. The baseline UNet is built by the same builder from the
 * same weights, without the hook. The two run in alternating rounds, one loaded at a time (memory); wall time
 * and process CPU time per step are both reported (CPU time is steadier on a shared machine). Prints one
 * JSON object.
 *
 *   npx tsx bench/ipadapter.ts [--size 512] [--rounds 6] [--steps 1] [--provider cpu] [--no-encoder] [--threads N]
 */

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const size = Number(arg('size') ?? 512)
const steps = Number(arg('steps') ?? 1)
const rounds = Number(arg('rounds') ?? 6)
const providerArg = arg('provider') ?? 'cpu'
if (!isProviderPreference(providerArg)) throw new Error(`--provider ${providerArg}: unknown provider`)
const provider: ProviderPreference = providerArg
const threads = arg('threads') ? Number(arg('threads')) : undefined
const withEncoder = !process.argv.includes('--no-encoder')
const session = { preference: provider, ...(threads ? { threads } : {}) }

async function time<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  const v = await f()
  return [v, performance.now() - t0]
}

function seeded(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return ((s / 4294967296) * 2 - 1) * scale
  })
}

interface Steps {
  loadMs: number[]
  warmupMs: number[]
  /** Wall time and process CPU time (all threads) of each timed step. */
  stepsMs: number[]
  cpuMs: number[]
}

/** One round: load the UNet, one warm-up call, n timed steps, release (one UNet in memory at a time). */
async function round(
  paths: { unet: string },
  inputs: Record<string, number>,
  context: ort.Tensor,
  n: number,
  acc: Steps,
): Promise<void> {
  const set = new ModelSet('bench', paths, session, { unet: inputs })
  const [, loadMs] = await time(() => set.load(['unet']))
  const h = size / 8
  const sample = new ort.Tensor('float32', seeded(2 * 4 * h * h, 1), [2, 4, h, h])
  const [, warmupMs] = await time(() => set.unet(sample, 500, context))
  acc.loadMs.push(Math.round(loadMs))
  acc.warmupMs.push(Math.round(warmupMs))
  for (let i = 0; i < n; i++) {
    const c0 = process.cpuUsage()
    const [, ms] = await time(() => set.unet(sample, 900 - i * 100, context))
    const c = process.cpuUsage(c0)
    acc.stepsMs.push(Math.round(ms))
    acc.cpuMs.push(Math.round((c.user + c.system) / 1000))
    log(`  step: ${Math.round(ms)} ms wall, ${Math.round((c.user + c.system) / 1000)} ms CPU`)
  }
  await set.release()
}

function summary(s: Steps): Record<string, unknown> {
  return { ...s, medianMs: Math.round(median(s.stepsMs)), medianCpuMs: Math.round(median(s.cpuMs)) }
}

async function main(): Promise<void> {
  const ckpt = ensureFullSd15(log)
  const adapterFile = ensureIpAdapterSd15(log)
  const cacheRoot =
    process.env.ATELIER_BENCH_PIPELINE_CACHE ??
    path.join(os.homedir(), '.cache', 'atelier-bench', 'pipelines')
  log('converting SD 1.5 (cached after the first run) ...')
  const converted = await convertCheckpoint(ckpt, { cacheRoot })
  const adapter = await loadIpAdapter(adapterFile)
  const unetDir = path.dirname(converted.paths.unet)
  for (const f of fs.readdirSync(unetDir))
    if (/^ip-[0-9a-f]+\.(onnx|bin)$/.test(f)) fs.rmSync(path.join(unetDir, f))
  log('building the IP-Adapter UNet variant ...')
  const [variant, buildMs] = await time(() => ipUnetVariant(converted, adapter, { cacheRoot }))
  const [, cachedMs] = await time(() => ipUnetVariant(converted, adapter, { cacheRoot }))
  const kvBytes = fs.statSync(path.join(unetDir, `ip-${variant.key}.bin`)).size
  // The baseline: the same builder without the hook over the same weights (the cached base graph may come
  // from an older builder with other graph forms).
  const plainPath = path.join(unetDir, 'bench-plain.onnx')
  const base = new CheckpointWeights(graphWeightSources(converted.paths.unet), { modelDir: unetDir })
  const built = buildUnet(base)
  fs.writeFileSync(plainPath, built.graph.encode())
  const flops = {
    withoutImagePrompt: unetFlops(built.config, 2, size / 8, size / 8, 77).total,
    withImagePrompt: unetFlops(built.config, 2, size / 8, size / 8, 81).total,
  }

  let encoder: Record<string, unknown> | undefined
  let tokens = { cond: seeded(4 * 768, 7), uncond: seeded(4 * 768, 8) }
  if (withEncoder) {
    const dir = ensureVitH14(log)
    log('converting the ViT-H/14 image encoder (cached after the first run) ...')
    const [enc, openMs] = await time(() => ImageEncoder.open(dir, { cacheRoot, session }))
    const ip = new ImagePromptEncoder(enc, adapter)
    const img = {
      width: size,
      height: size,
      channels: 3 as const,
      data: new Uint8Array(seeded(size * size * 3, 9).map((v) => (v + 1) * 127)),
    }
    const [, firstMs] = await time(() => ip.imageTokens([{ image: img, weight: 0.6 }]))
    const [t, encodeMs] = await time(() => ip.imageTokens([{ image: img, weight: 0.6 }]))
    const [, projMs] = await time(() => Promise.resolve(ip.tokensFromEmbeds(t.embeds, [0.6])))
    tokens = { cond: t.cond, uncond: t.uncond }
    encoder = {
      model: 'OpenCLIP ViT-H/14 (random weights), 224 px',
      convertOrOpenMs: Math.round(openMs),
      firstImageMs: Math.round(firstMs),
      imageMs: Math.round(encodeMs),
      projectionMs: +projMs.toFixed(2),
    }
    await ip.release()
  }

  const text = seeded(2 * 77 * 768, 5, 0.5)
  const plainCtx = new ort.Tensor('float32', text, [2, 77, 768])
  const ipData = new Float32Array(2 * 81 * 768)
  for (let r = 0; r < 2; r++) {
    ipData.set(text.subarray(r * 77 * 768, (r + 1) * 77 * 768), r * 81 * 768)
    ipData.set(r === 0 ? tokens.uncond : tokens.cond, (r * 81 + 77) * 768)
  }
  const ipCtx = new ort.Tensor('float32', ipData, [2, 81, 768])

  const plain: Steps = { loadMs: [], warmupMs: [], stepsMs: [], cpuMs: [] }
  const ip: Steps = { loadMs: [], warmupMs: [], stepsMs: [], cpuMs: [] }
  // Rounds alternate the two UNets so that the shared machine's load drifts over both alike.
  for (let r = 0; r < rounds; r++) {
    log(`round ${r + 1}/${rounds}: UNet without an image prompt, ${size}x${size}, batch 2 ...`)
    await round({ unet: plainPath }, {}, plainCtx, steps, plain)
    log(`round ${r + 1}/${rounds}: UNet with an image prompt (IP-Adapter, ip_scale 0.6) ...`)
    await round({ unet: variant.path }, { [IP_SCALE_INPUT]: 0.6 }, ipCtx, steps, ip)
  }

  log('weight change on a loaded IP UNet ...')
  const ipSet = new ModelSet('ip', { unet: variant.path }, session, { unet: { [IP_SCALE_INPUT]: 0.6 } })
  await ipSet.load(['unet'])
  const warm = new ort.Tensor('float32', seeded(2 * 4 * (size / 8) ** 2, 1), [2, 4, size / 8, size / 8])
  await ipSet.unet(warm, 500, ipCtx)
  let created = 0
  const create = ort.InferenceSession.create.bind(ort.InferenceSession)
  ;(ort.InferenceSession as { create: typeof create }).create = ((...a: Parameters<typeof create>) => {
    created++
    return create(...a)
  }) as typeof create
  ipSet.setInputs({ unet: { [IP_SCALE_INPUT]: 1 } })
  const [, reweightedMs] = await time(() => ipSet.unet(warm, 300, ipCtx))
  ;(ort.InferenceSession as { create: typeof create }).create = create
  await ipSet.release()
  const ps = summary(plain)
  const is = summary(ip)
  const pct = (a: number, b: number): number => +((100 * (a - b)) / b).toFixed(1)
  // Paired by round (the two UNets of one round saw about the same load): with / without, per round.
  const perRound = (xs: number[]): number[] =>
    Array.from({ length: rounds }, (_, r) => median(xs.slice(r * steps, (r + 1) * steps)))
  const pairs = (a: number[], b: number[]): number[] => {
    const pa = perRound(a)
    const pb = perRound(b)
    return pa.map((x, i) => +(x / (pb[i] as number)).toFixed(3))
  }
  const wallRatios = pairs(ip.stepsMs, plain.stepsMs)
  const cpuRatios = pairs(ip.cpuMs, plain.cpuMs)

  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'ipadapter',
        machine: machine(),
        provider,
        params: {
          model: 'SD 1.5 full size, random weights (fp16 storage, fp32 compute)',
          size: `${size}x${size}`,
          batch: 2,
          textTokens: 77,
          imageTokens: 4,
          ipScale: 0.6,
          rounds,
          stepsPerRound: steps,
        },
        withoutImagePrompt: ps,
        withImagePrompt: is,
        stepOverheadPct: {
          pairedWall: +(100 * (median(wallRatios) - 1)).toFixed(1),
          pairedCpu: +(100 * (median(cpuRatios) - 1)).toFixed(1),
          wallRatiosPerRound: wallRatios,
          cpuRatiosPerRound: cpuRatios,
          unpairedWall: pct(is.medianMs as number, ps.medianMs as number),
          unpairedCpu: pct(is.medianCpuMs as number, ps.medianCpuMs as number),
        },
        flopsPerStep: {
          ...flops,
          extraPct: +(
            (100 * (flops.withImagePrompt - flops.withoutImagePrompt)) /
            flops.withoutImagePrompt
          ).toFixed(3),
        },
        weightChange: { sessionsCreated: created, stepMs: Math.round(reweightedMs) },
        variant: {
          buildMs: Math.round(buildMs),
          cachedLookupMs: Math.round(cachedMs),
          kvSideFileBytes: kvBytes,
        },
        ...(encoder ? { imageEncoder: encoder } : {}),
      },
      null,
      1,
    )}\n`,
  )
}

await main()
