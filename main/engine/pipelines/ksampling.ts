/**
 * The A1111 / ComfyUI way of sampling (engine/kdiffusion) behind the same core entry points as the
 * diffusers schedulers: txt2img, img2img (A1111 step slicing with or without "fix steps", ComfyUI's
 * denoise rule), inpainting with an ordinary UNet (A1111 blends the denoised prediction with the
 * original latents at every model call) and with a 9-channel inpainting UNet.
 */
import type { KConvention, KPlan } from '../kdiffusion'
import {
  a1111Table,
  comfySamplerEntry,
  comfyTable,
  findKSampler,
  planSampling,
  runSampling,
  scheduleKey,
  scheduleLabels,
  splitSamplerName,
} from '../kdiffusion'
import type { NoiseTable } from '../kdiffusion'
import type { ContextAt, GuidedUnetOptions, InpaintConditioning } from './denoise'
import { guidedUnet } from './denoise'
import type { StepPlan } from './strength'
import type { LatentShape, NoiseSource, StepInfo, UnetTrace } from './types'
import { throwIfAborted } from './types'

/** How a k-diffusion run is configured (request fields, resolved). */
export interface KSampling {
  convention: KConvention
  /** A1111 sampler name (e.g. 'DPM++ 2M'). */
  sampler: string
  /** Schedule type label ('Automatic', 'Karras', ...; ComfyUI scheduler names for 'comfy'). */
  schedule?: string
  /** A1111 ancestral eta (opts.eta_ancestral), default 1. */
  eta?: number
  /** SDXL model (Align Your Steps list). */
  sdxl?: boolean
}

/** Whether a sampler name has an A1111 / k-diffusion implementation here. */
export function hasKSampler(name: string): boolean {
  return findKSampler(name) !== undefined
}

const tables = new Map<KConvention, NoiseTable>()

/** The SD 1.x / SDXL noise table of a convention (both families use the same scaled-linear betas). */
export function noiseTable(c: KConvention): NoiseTable {
  let t = tables.get(c)
  if (!t) {
    t = c === 'comfy' ? comfyTable() : a1111Table()
    tables.set(c, t)
  }
  return t
}

export interface KRunOptions extends GuidedUnetOptions {
  sampling: KSampling
  steps: number
  noise: NoiseSource
  /** img2img / inpaint: clean scaled latents and the strength (undefined strength = txt2img). */
  init?: Float32Array
  strength?: number
  /** A1111 img2img_fix_steps ("exact steps"). */
  fixSteps?: boolean
  /** Ordinary-UNet inpainting: 1 = keep the original, [B, 4, h, w]. */
  keep?: Float32Array
  contextAt?: ContextAt
  signal?: AbortSignal
  onStep?: (info: StepInfo) => void | Promise<void>
  trace?: (t: UnetTrace) => void
}

export interface KRunResult {
  latents: Float32Array
  plan: StepPlan
  kplan: KPlan
}

/** The StepPlan (UI / summary) of a k plan: the sigmas or timesteps it runs. */
function stepPlan(p: KPlan): StepPlan {
  const run = p.sched ?? Float64Array.from(p.runTimesteps ?? [])
  return { timesteps: run, scheduleLength: p.scheduleLength, stepsRun: p.stepsRun }
}

/** Plans a k-diffusion run without running it (step counts for the UI and the CLI). */
export function planK(s: KSampling, steps: number, strength?: number, fixSteps?: boolean): KPlan {
  return planSampling({
    sampler: s.sampler,
    schedule: s.schedule,
    convention: s.convention,
    steps,
    strength,
    fixSteps,
    table: noiseTable(s.convention),
    scheduleOptions: { sdxl: s.sdxl },
  })
}

export async function runK(o: KRunOptions): Promise<KRunResult> {
  const { shape } = o
  const plan = planK(o.sampling, o.steps, o.init ? o.strength : undefined, o.fixSteps)
  const unet = guidedUnet(o)
  const dims = [shape.batch, shape.channels, shape.height, shape.width]
  let call = 0
  let step = 0
  const started = performance.now()
  const keep = o.keep
  const init = o.init
  const blendKept =
    keep && init
      ? (d: Float32Array): Float32Array => {
          const out = new Float32Array(d.length)
          for (let k = 0; k < d.length; k++)
            out[k] = Math.fround(init[k]! * keep[k]!) + Math.fround(d[k]! * (1 - keep[k]!))
          return out
        }
      : undefined
  const r = await runSampling({
    plan,
    noise: () => o.noise.randn(dims, 'pipeline'),
    init: o.init,
    eta: o.sampling.eta,
    signal: o.signal,
    postDenoise: blendKept,
    eps: async (input, t) => {
      throwIfAborted(o.signal)
      const g = await unet(input, t, call)
      o.trace?.({ step: call, timestep: t, input: g.input, output: g.raw, latents: input })
      call++
      return g.eps
    },
    onStep: async ({ i, total, x }) => {
      step = i + 1
      if (!o.onStep) return
      const elapsedMs = performance.now() - started
      await o.onStep({
        step,
        total,
        timestep: i,
        elapsedMs,
        etaMs: (elapsedMs / step) * (total - step),
        latents: x,
        shape,
      })
    },
  })
  throwIfAborted(o.signal)
  let latents = r.latents
  // A1111: samples * nmask + init_latent * mask after sampling.
  if (blendKept) latents = blendKept(latents)
  return { latents, plan: stepPlan(plan), kplan: plan }
}

export type { InpaintConditioning, LatentShape }

export type SamplerConventionName = KConvention | 'diffusers'

/** A request's sampler settings resolved to one way of running them. */
export interface ResolvedSampler {
  convention: SamplerConventionName
  /** The A1111 sampler name ('DPM++ 2M Karras' -> 'DPM++ 2M'); for diffusers the registry name. */
  sampler: string
  /** Schedule type as it goes into the infotext / UI ('Automatic' when the default applies). */
  scheduleType: string
  /** Set for 'a1111' / 'comfy'. */
  sampling?: KSampling
  /** diffusers: scheduler config fields the schedule type implies (timestep spacing). */
  diffusersConfig?: Record<string, unknown>
  warnings: string[]
}

const SPACINGS = ['leading', 'trailing', 'linspace']

/**
 * Resolves sampler + schedule type + convention. Without a convention, A1111 sampler names run the
 * A1111 way and others (diffusers-only entries such as 'DPM++ 2M SDE') with diffusers' schedulers.
 */
export function resolveSampler(
  samplerName: string,
  scheduleType: string | undefined,
  convention: SamplerConventionName | undefined,
  hasDiffusers: (name: string) => boolean,
  sdxl = false,
): ResolvedSampler {
  const warnings: string[] = []
  const sched = scheduleType?.trim() || undefined
  if (
    convention === 'diffusers' ||
    (convention === undefined && !hasKSampler(splitSamplerName(samplerName).sampler))
  ) {
    let name = samplerName
    const config: Record<string, unknown> = {}
    if (sched && sched.toLowerCase() !== 'automatic') {
      const low = sched.toLowerCase()
      if (SPACINGS.includes(low)) config.timestep_spacing = low
      else if (low === 'karras' && hasDiffusers(`${samplerName} Karras`)) name = `${samplerName} Karras`
      else if (low === 'karras' && /karras$/i.test(samplerName)) name = samplerName
      else
        throw new Error(
          `schedule type "${sched}" is not available for "${samplerName}" with the diffusers convention (use Automatic, Karras, leading, trailing or linspace)`,
        )
    }
    if (!hasDiffusers(name)) throw new Error(`unknown sampler "${samplerName}"`)
    return {
      convention: 'diffusers',
      sampler: name,
      scheduleType: sched ?? 'Automatic',
      diffusersConfig: Object.keys(config).length ? config : undefined,
      warnings,
    }
  }
  const conv: KConvention = convention ?? 'a1111'
  if (conv === 'a1111' && sched && !scheduleKey(sched))
    throw new Error(`unknown schedule type "${sched}" (known: ${scheduleLabels().join(', ')})`)
  // ComfyUI names first ('ddim' is ComfyUI's Euler, 'dpmpp_2m_sde_gpu' its DPM++ 2M SDE); unsupported ones
  // are refused with ComfyUI's reason.
  const comfy = conv === 'comfy' ? comfySamplerEntry(samplerName) : undefined
  if (comfy && !comfy.sampler)
    throw new Error(`ComfyUI sampler "${comfy.comfy}" is not supported here: ${comfy.note ?? ''}`)
  const split =
    conv === 'a1111'
      ? splitSamplerName(samplerName, sched)
      : { sampler: comfy?.sampler ?? samplerName, schedule: sched ?? 'Automatic' }
  if (!hasKSampler(split.sampler))
    throw new Error(
      `sampler "${samplerName}" has no ${conv === 'comfy' ? 'ComfyUI' : 'A1111'} implementation here; use the diffusers convention`,
    )
  const sampling: KSampling = {
    convention: conv,
    sampler: findKSampler(split.sampler)!.name,
    schedule: split.schedule,
    sdxl,
  }
  // Validate the schedule now (a clear error before any model work).
  planK(sampling, 4)
  return { convention: conv, sampler: sampling.sampler, scheduleType: split.schedule, sampling, warnings }
}
