import { timestepsFromDenoisingStart } from '../../pipelines/sdxl'
import { createScheduler, nameForOracleKey } from '../../schedulers'
import type { Scheduler } from '../../schedulers'
import type { CaseContext, CaseRunner, RefTensor } from './types'
import { f32 } from './types'

/**
 * The `schedulers` case: for every sampler key the manifest lists, timesteps / sigmas after
 * set_timesteps(N), the img2img truncation at the listed strength, and a stepwise run from x_T with the
 * recorded model outputs (and recorded step noise for the samplers that draw it).
 */

interface StepwiseInfo {
  num_inference_steps: number
  n_step_calls: number
}

interface SchedulerInfo {
  stepwise?: StepwiseInfo
  [k: string]: unknown
}

interface SchedulersDef {
  base_config?: Record<string, unknown>
  schedulers?: Record<string, SchedulerInfo>
}

function asInt64(values: ArrayLike<number>): BigInt64Array {
  return BigInt64Array.from(Array.from(values), (v) => BigInt(Math.round(v)))
}

/** Timesteps in the dtype the manifest declares for `name` (int64 or float32). */
function timestepsTensor(ctx: CaseContext, name: string, values: Float64Array): RefTensor {
  const meta = ctx.def.tensors[name]
  if (meta?.dtype.toLowerCase() === 'int64')
    return { dtype: 'I64', shape: [values.length], data: asInt64(values) }
  return f32([values.length], Float32Array.from(values))
}

function makeScheduler(key: string, baseConfig: Record<string, unknown> | undefined): Scheduler {
  const name = nameForOracleKey(key)
  if (!name) throw new Error(`schedulers case: no sampler for oracle key "${key}"`)
  return createScheduler(name, baseConfig)
}

function rows(t: RefTensor): Float32Array[] {
  const k = t.shape[0] ?? 0
  const size = t.data.length / Math.max(1, k)
  const data = t.data as Float32Array
  return Array.from({ length: k }, (_, i) => data.slice(i * size, (i + 1) * size))
}

function stack(parts: Float32Array[], inner: number[]): RefTensor {
  const size = parts[0]?.length ?? 0
  const out = new Float32Array(parts.length * size)
  parts.forEach((p, i) => out.set(p, i * size))
  return f32([parts.length, ...inner], out)
}

export const schedulersCase: CaseRunner = async (ctx) => {
  const def = ctx.def as typeof ctx.def & SchedulersDef
  const base = def.base_config
  const out: Record<string, RefTensor> = {}
  const wanted = [...ctx.def.expected, ...ctx.def.trace]

  if (ctx.wants('betas') || ctx.wants('alphas_cumprod')) {
    const s = makeScheduler('ddim', base) as Scheduler & {
      betas?: Float32Array
      alphasCumprod?: Float32Array
    }
    if (s.betas) out.betas = f32([s.betas.length], s.betas)
    if (s.alphasCumprod) out.alphas_cumprod = f32([s.alphasCumprod.length], s.alphasCumprod)
  }

  for (const name of wanted) {
    const m = /^(.+)_N(\d+)_(timesteps|sigmas|img2img_timesteps|denoising_start_timesteps)$/.exec(name)
    if (!m || name.startsWith('step_')) continue
    const [, key = '', nText = '', what] = m
    const n = Number(nText)
    const s = makeScheduler(key, base)
    if (what === 'denoising_start_timesteps') {
      // SDXL img2img with denoising_start (the refiner hand-off): strength is ignored.
      const info = def.schedulers?.[key]?.[`N${n}_denoising_start`] as
        { denoising_start?: number } | undefined
      const start = info?.denoising_start
      if (typeof start !== 'number')
        throw new Error(`schedulers case: no N${n}_denoising_start value for ${key}`)
      out[name] = timestepsTensor(ctx, name, timestepsFromDenoisingStart(s, n, start))
      continue
    }
    if (what === 'img2img_timesteps') {
      const info = def.schedulers?.[key]?.[`N${n}_img2img`] as { strength?: number } | undefined
      const strength = info?.strength
      if (typeof strength !== 'number')
        throw new Error(`schedulers case: no N${n}_img2img strength for ${key}`)
      out[name] = timestepsTensor(ctx, name, s.img2imgTimesteps(n, strength))
      continue
    }
    s.setTimesteps(n)
    if (what === 'timesteps') out[name] = timestepsTensor(ctx, name, s.timesteps)
    else if (s.sigmas) out[name] = f32([s.sigmas.length], Float32Array.from(s.sigmas))
  }

  const stepKeys = Object.keys(def.schedulers ?? {}).filter((k) => ctx.wants(`step_${k}_samples`))
  if (stepKeys.length) {
    const unit = (await ctx.given('step_x_T_unit')).data as Float32Array
    const outputs = rows(await ctx.given('step_model_outputs'))
    const inner = ctx.def.tensors.step_x_T_unit?.shape ?? [unit.length]
    for (const key of stepKeys) {
      ctx.signal?.throwIfAborted()
      const info = def.schedulers?.[key]?.stepwise
      const s = makeScheduler(key, base)
      const n = info?.num_inference_steps ?? outputs.length
      s.setTimesteps(n)
      const calls = info?.n_step_calls ?? s.timesteps.length
      const noiseName = `step_${key}_noise`
      const noises = ctx.hasGiven(noiseName) ? rows(await ctx.given(noiseName)) : undefined
      let draw = 0
      const noise = (): Float32Array => {
        const z = noises?.[draw++]
        if (!z) throw new Error(`schedulers case: ${key} drew more noise than ${noiseName} holds`)
        return z
      }
      let x: Float32Array = Float32Array.from(unit, (v) => Math.fround(v * s.initNoiseSigma))
      const samples = [x]
      const scaled: Float32Array[] = []
      const preds: Float32Array[] = []
      for (let i = 0; i < calls; i++) {
        const t = s.timesteps[i] as number
        scaled.push(s.scaleModelInput(x, t))
        x = s.step(outputs[i % n] as Float32Array, t, x, noise)
        if (s.predOriginalSample) preds.push(s.predOriginalSample.slice())
        samples.push(x)
      }
      const tsName = `step_${key}_timesteps`
      out[tsName] = timestepsTensor(ctx, tsName, s.timesteps.slice(0, calls))
      out[`step_${key}_samples`] = stack(samples, inner)
      out[`step_${key}_scaled_model_inputs`] = stack(scaled, inner)
      if (ctx.wants(`step_${key}_pred_original_samples`) && preds.length === calls)
        out[`step_${key}_pred_original_samples`] = stack(preds, inner)
    }
  }
  return out
}
