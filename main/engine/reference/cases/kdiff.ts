import * as ort from 'onnxruntime-node'
import {
  A1111_SCHEDULES,
  a1111Schedule,
  a1111Table,
  a1111Timesteps,
  comfyKSamplerSigmas,
  comfySchedule,
  comfyScheduleKey,
  comfyTable,
  discardPenultimate,
  findKSampler,
  K_SAMPLERS,
  lcmSigmaToT,
  lcmTable,
  planSampling,
  runSampling,
  scheduleKey,
  sigmaToT,
  sigmaToTQuantized,
  tToSigma,
} from '../../kdiffusion'
import type { ComfyScheduleKey, KConvention, NoiseTable, ScheduleKey } from '../../kdiffusion'
import { SD1_SCALING_FACTOR } from '../../pipelines/core'
import type { CaseContext, CaseRunner, RefTensor } from './types'
import { f32, postprocess } from './types'
import { inputImage, recordedNoise, scalingFactor } from './img2img'

/**
 * Cases of the k-diffusion / A1111 / ComfyUI sampling sets (oracle-kdiff format): sigma tables and
 * schedules named by their tensors (`sigmas_<schedule>_n<N>`, `sigmas_auto_<sampler>_n<N>`,
 * `ksampler_<sampler>_<schedule>_n<N>_d<D>`, ...), and whole A1111 / ComfyUI runs described by the
 * case's params (sampler, scheduler, steps, cfg, strength, fix-steps / denoise) with the recorded draws.
 */

const I64 = (v: ArrayLike<number>): RefTensor => ({
  dtype: 'I64',
  shape: [v.length],
  data: BigInt64Array.from(Array.from(v), (x) => BigInt(Math.round(x))),
})

const F = (v: ArrayLike<number>, shape?: number[]): RefTensor =>
  f32(shape ?? [v.length], Float32Array.from(v))

/** Output in the dtype / shape the manifest declares for `name`. */
function asDeclared(ctx: CaseContext, name: string, v: ArrayLike<number>): RefTensor {
  const meta = ctx.def.tensors[name]
  if (meta?.dtype.toLowerCase().startsWith('int')) return { ...I64(v), shape: meta.shape }
  return F(v, meta?.shape ?? [v.length])
}

interface SamplerDefault {
  default_scheduler?: string
  discard_next_to_last_sigma?: boolean
}

function samplerKey(name: string): string {
  return name.toLowerCase().replace(/\+\+/g, 'pp').replace(/\s+/g, '_')
}

/** A1111 sampler names a set may mention: the case's sampler_defaults plus this engine's menu. */
function samplerNames(ctx: CaseContext): Map<string, string> {
  const out = new Map<string, string>()
  for (const s of K_SAMPLERS) out.set(samplerKey(s.name), s.name)
  const defs = (ctx.def as { sampler_defaults?: Record<string, unknown> }).sampler_defaults ?? {}
  for (const n of Object.keys(defs)) out.set(samplerKey(n), n)
  return out
}

/** get_sigmas for a sampler by A1111 name and schedule label, also for samplers without a runner here. */
function a1111Sigmas(
  ctx: CaseContext,
  table: NoiseTable,
  sampler: string,
  schedule: string,
  n: number,
): Float64Array {
  if (findKSampler(sampler)) {
    return planSampling({ sampler, schedule, convention: 'a1111', steps: n, table }).sigmas!
  }
  const defs = (ctx.def as { sampler_defaults?: Record<string, SamplerDefault> }).sampler_defaults ?? {}
  const d = defs[sampler]
  if (!d) throw new Error(`sampler "${sampler}" is unknown`)
  const key = scheduleKey(schedule)
  const auto = (/^[a-z_]+/.exec(d.default_scheduler ?? 'uniform')?.[0] ?? 'uniform') as ScheduleKey
  const resolved = !key || key === 'automatic' ? auto : key
  const discard = d.discard_next_to_last_sigma ?? false
  const s = a1111Schedule(resolved, table, n + (discard ? 1 : 0))
  return discard ? discardPenultimate(s) : s
}

async function query(ctx: CaseContext, name: string): Promise<Float32Array> {
  return (await ctx.given(name)).data as Float32Array
}

export const a1111SigmasCase: CaseRunner = async (ctx) => {
  const table = a1111Table()
  const lcm = lcmTable(table)
  const out: Record<string, RefTensor> = {}
  const names = samplerNames(ctx)
  const slicing = ((ctx.def as { img2img_slicing?: Record<string, unknown>[] }).img2img_slicing ?? []).filter(
    (e) => typeof e.tensor === 'string',
  )
  for (const name of [...ctx.def.expected, ...ctx.def.trace]) {
    let m: RegExpExecArray | null
    if (name === 'alphas_cumprod') out[name] = F(table.alphasCumprod)
    else if (name === 'model_sigmas') out[name] = F(table.sigmas)
    else if (name === 'model_log_sigmas') out[name] = F(table.logSigmas)
    else if (name === 'sigma_min') out[name] = F([table.sigmaMin])
    else if (name === 'sigma_max') out[name] = F([table.sigmaMax])
    else if (name === 'lcm_model_sigmas') out[name] = F(lcm.table.sigmas)
    else if (name === 'sigma_to_t')
      out[name] = asDeclared(
        ctx,
        name,
        Array.from(await query(ctx, 'sigma_query'), (s) => sigmaToT(table, s)),
      )
    else if (name === 'sigma_to_t_quantized')
      out[name] = asDeclared(
        ctx,
        name,
        Array.from(await query(ctx, 'sigma_query'), (s) => sigmaToTQuantized(table, s)),
      )
    else if (name === 'lcm_sigma_to_t')
      out[name] = asDeclared(
        ctx,
        name,
        Array.from(await query(ctx, 'sigma_query'), (s) => lcmSigmaToT(lcm, s)),
      )
    else if (name === 't_to_sigma')
      out[name] = asDeclared(
        ctx,
        name,
        Array.from(await query(ctx, 't_query'), (t) => tToSigma(table, t)),
      )
    else if ((m = /^ddim_timesteps_n(\d+)$/.exec(name)))
      out[name] = asDeclared(ctx, name, a1111Timesteps(Number(m[1])))
    else if ((m = /^sigmas_discard_(.+)_n(\d+)$/.exec(name))) {
      const plan = planSampling({
        sampler: 'Euler',
        schedule: m[1]!,
        convention: 'a1111',
        steps: Number(m[2]),
        table,
        alwaysDiscard: true,
      })
      out[name] = F(plan.sigmas!)
    } else if ((m = /^sigmas_auto_(.+)_n(\d+)$/.exec(name))) {
      const rest = m[1]!
      const keys = [...names.keys()].filter((k) => rest === k || rest.startsWith(`${k}_`))
      const key = keys.sort((a, b) => b.length - a.length)[0]
      if (!key) throw new Error(`${name}: no sampler named by "${rest}"`)
      const schedule = rest === key ? 'Automatic' : rest.slice(key.length + 1)
      out[name] = F(a1111Sigmas(ctx, table, names.get(key)!, schedule, Number(m[2])))
    } else if ((m = /^sigmas_(.+)_n(\d+)$/.exec(name))) {
      const key = m[1]!
      const n = Number(m[2])
      if (key === 'beta_dev') out[name] = F(a1111Schedule('beta_dev', table, n))
      else if (key === 'automatic') out[name] = F(a1111Sigmas(ctx, table, 'Euler', 'Automatic', n))
      else if (key in A1111_SCHEDULES) out[name] = F(a1111Sigmas(ctx, table, 'Euler', key, n))
      else throw new Error(`${name}: unknown schedule "${key}"`)
    } else if ((m = /^img2img_sigma_sched_(.+)_n(\d+)_s(\d+)(_fix)?$/.exec(name))) {
      const e = slicing.find((x) => x.tensor === name)
      const steps = typeof e?.steps === 'number' ? e.steps : Number(m[2])
      const strength = typeof e?.denoising_strength === 'number' ? e.denoising_strength : Number(m[3]) / 100
      const fix = typeof e?.img2img_fix_steps === 'boolean' ? e.img2img_fix_steps : Boolean(m[4])
      const plan = planSampling({
        sampler: 'Euler',
        schedule: m[1]!,
        convention: 'a1111',
        steps,
        strength,
        fixSteps: fix,
        table,
      })
      out[name] = F(strength >= 1 ? plan.sigmas! : plan.sched!)
    }
  }
  return out
}

export const comfySigmasCase: CaseRunner = async (ctx) => {
  const table = comfyTable()
  const out: Record<string, RefTensor> = {}
  const slicing = ((ctx.def as { denoise_slicing?: Record<string, unknown>[] }).denoise_slicing ?? []).filter(
    (e) => typeof e.tensor === 'string',
  )
  const discarding = new Set(['dpm_2', 'dpm_2_ancestral', 'uni_pc', 'uni_pc_bh2'])
  const comfyKey = (s: string): ComfyScheduleKey => {
    const k = comfyScheduleKey(s)
    if (!k) throw new Error(`unknown ComfyUI scheduler "${s}"`)
    return k
  }
  for (const name of [...ctx.def.expected, ...ctx.def.trace]) {
    let m: RegExpExecArray | null
    if (name === 'comfy_model_sigmas' || name === 'model_sigmas') out[name] = F(table.sigmas)
    else if (name === 'comfy_model_log_sigmas' || name === 'model_log_sigmas') out[name] = F(table.logSigmas)
    else if (name === 'comfy_timestep')
      out[name] = asDeclared(
        ctx,
        name,
        Array.from(await query(ctx, 'sigma_query'), (s) => sigmaToTQuantized(table, s)),
      )
    else if (name === 'comfy_sigma')
      out[name] = asDeclared(
        ctx,
        name,
        Array.from(await query(ctx, 't_query'), (t) => tToSigma(table, t)),
      )
    else if ((m = /^ksampler_(.+)_n(\d+)(?:_d(\d+))?$/.exec(name))) {
      const rest = m[1]!
      const sched = [
        ...new Set([
          'ddim_uniform',
          'sgm_uniform',
          'linear_quadratic',
          'kl_optimal',
          'normal',
          'karras',
          'exponential',
          'simple',
          'beta',
        ]),
      ].find((k) => rest.endsWith(`_${k}`))
      if (!sched) throw new Error(`${name}: no scheduler in the name`)
      const sampler = rest.slice(0, -(sched.length + 1))
      const e = slicing.find((x) => x.tensor === name)
      const steps = typeof e?.steps === 'number' ? e.steps : Number(m[2])
      const denoise = typeof e?.denoise === 'number' ? e.denoise : m[3] ? Number(m[3]) / 100 : 1
      out[name] = F(comfyKSamplerSigmas(comfyKey(sched), table, steps, denoise, discarding.has(sampler)))
    } else if ((m = /^sigmas_(.+)_n(\d+)$/.exec(name)))
      out[name] = F(comfySchedule(comfyKey(m[1]!), table, Number(m[2])))
  }
  return out
}

interface RunParams {
  sampler?: string
  sampler_name?: string
  scheduler?: string
  steps?: number
  cfg_scale?: number
  cfg?: number
  denoising_strength?: number
  denoise?: number
  img2img_fix_steps?: boolean
  eta?: number
}

function uint8Hwc(image: Float32Array, h: number, w: number, shape: number[]): RefTensor {
  const out = new Uint8Array(h * w * 3)
  const post = postprocess(image)
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++)
        out[(y * w + x) * 3 + c] = Math.trunc(Math.fround(255 * post[c * h * w + y * w + x]!))
  return { dtype: 'U8', shape, data: out }
}

/** A whole A1111 (a1111_*) or ComfyUI (comfy_*) run from the case's params and recorded draws. */
export const kdiffRunCase: CaseRunner = async (ctx) => {
  const p = ((ctx.def as { params?: RunParams }).params ?? {}) as RunParams
  const convention: KConvention =
    p.sampler_name !== undefined || ctx.def.name.startsWith('comfy') ? 'comfy' : 'a1111'
  const samplerName = p.sampler ?? p.sampler_name
  if (!samplerName) throw new Error(`case ${ctx.def.name}: params name no sampler`)
  const steps = p.steps ?? 20
  const cfg = p.cfg_scale ?? p.cfg ?? 7
  const strength = p.denoising_strength ?? p.denoise
  const table = convention === 'comfy' ? comfyTable() : a1111Table()
  const scale = scalingFactor(ctx) || SD1_SCALING_FACTOR
  const plan = planSampling({
    sampler: samplerName,
    schedule: p.scheduler,
    convention,
    steps,
    strength,
    fixSteps: p.img2img_fix_steps ?? false,
    table,
  })
  const set = await ctx.models.modelSet(await ctx.models.checkpoint(ctx.def, 'normal'))
  const cond = await ctx.given('cond')
  const uncond = await ctx.given('uncond')
  const [b = 1, seq = 77, width = 0] = cond.shape
  const per = b * seq * width
  const ctxData = new Float32Array(2 * per)
  // A1111 batches [cond, uncond]; ComfyUI [uncond, cond].
  const first = convention === 'a1111' ? cond : uncond
  const second = convention === 'a1111' ? uncond : cond
  ctxData.set(first.data as Float32Array)
  ctxData.set(second.data as Float32Array, per)
  const context = new ort.Tensor('float32', ctxData, [2 * b, seq, width])
  const noise = await recordedNoise(ctx)

  const out: Record<string, RefTensor> = {}
  let init: Float32Array | undefined
  let latentShape = [b, 4, 0, 0]
  if (ctx.hasGiven('image_uint8_hwc')) {
    const img = await inputImage(ctx)
    latentShape = [b, 4, img.height / 8, img.width / 8]
    const enc = await set.encode(new ort.Tensor('float32', img.data, [1, 3, img.height, img.width]))
    const mean = enc.mean.data as Float32Array
    const std = enc.std.data as Float32Array
    if (convention === 'comfy') {
      out.init_latent = F(mean, latentShape)
      init = Float32Array.from(mean, (v) => v * scale)
      out.latent_image_scaled = F(init, latentShape)
    } else {
      const vn = ctx.hasGiven('vae_noise')
        ? ((await ctx.given('vae_noise')).data as Float32Array)
        : new Float32Array(mean.length)
      init = new Float32Array(mean.length)
      for (let k = 0; k < mean.length; k++)
        init[k] = Math.fround(scale * Math.fround(mean[k]! + Math.fround(std[k]! * vn[k]!)))
      out.init_latent = F(init, latentShape)
    }
  } else {
    const w = (p as { width?: number }).width ?? 512
    const h = (p as { height?: number }).height ?? 512
    latentShape = [b, 4, h / 8, w / 8]
  }
  const n = latentShape.reduce((x, y) => x * y, 1)
  const dims = [2 * b, 4, latentShape[2]!, latentShape[3]!]
  const unetTimesteps: number[] = []
  const eps = async (input: Float32Array, t: number): Promise<Float32Array> => {
    const doubled = new Float32Array(2 * n)
    doubled.set(input)
    doubled.set(input, n)
    const r = (await set.unet(new ort.Tensor('float32', doubled, dims), t, context)).data as Float32Array
    unetTimesteps.push(t, t)
    const c = convention === 'a1111' ? r.subarray(0, n) : r.subarray(n)
    const u = convention === 'a1111' ? r.subarray(n) : r.subarray(0, n)
    const g = new Float32Array(n)
    for (let k = 0; k < n; k++) g[k] = u[k]! + Math.fround(Math.fround(c[k]! - u[k]!) * cfg)
    return g
  }
  const res = await runSampling({
    plan,
    eps,
    noise: () => noise.randn(latentShape),
    init,
    eta: p.eta,
    signal: ctx.signal,
  })
  if (noise.remaining > 0) ctx.log(`${noise.remaining} recorded draw(s) were not used`)
  out.x_init = F(res.xInit, latentShape)
  out.final_latents = F(res.latents, latentShape)
  if (plan.sigmas) out.sigmas = F(plan.sigmas)
  if (plan.timesteps) out.timesteps = asDeclared(ctx, 'timesteps', plan.timesteps)
  if (plan.img2img) {
    if (plan.runTimesteps) out.sigma_sched = asDeclared(ctx, 'sigma_sched', plan.runTimesteps)
    else if (plan.sched) out.sigma_sched = F(plan.sched)
  }
  out.unet_timesteps = F(unetTimesteps, [unetTimesteps.length / 2, 2])
  const lat = new Float32Array(n)
  if (convention === 'comfy') for (let k = 0; k < n; k++) lat[k] = res.latents[k]! / scale
  else {
    const inv = Math.fround(1 / scale)
    for (let k = 0; k < n; k++) lat[k] = Math.fround(res.latents[k]! * inv)
  }
  if (convention === 'comfy') out.output_latent = F(lat, latentShape)
  const H = latentShape[2]! * 8
  const W = latentShape[3]! * 8
  const image = (await set.decode(new ort.Tensor('float32', lat, latentShape))).data as Float32Array
  out.output_image = F(image, [b, 3, H, W])
  out.output_image_postprocessed = F(postprocess(image), [b, 3, H, W])
  out.output_uint8_hwc = uint8Hwc(image, H, W, ctx.def.tensors.output_uint8_hwc?.shape ?? [b, H, W, 3])
  return out
}

/** Which of these runners a case of such a set needs (by its name and params). */
export function kdiffRunnerFor(name: string, def: { params?: unknown }): CaseRunner | undefined {
  if (name === 'comfy_sigmas') return comfySigmasCase
  if (/^(a1111|forge)_?sigmas$/.test(name)) return a1111SigmasCase
  const params = def.params as RunParams | undefined
  if (/^(a1111|comfy|forge)_/.test(name) && params && (params.sampler || params.sampler_name))
    return kdiffRunCase
  return undefined
}
