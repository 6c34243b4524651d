/**
 * Conformance of every scheduler with the `schedulers` oracle case (diffusers 0.21.4 run on CPU):
 * betas / alphas_cumprod, timesteps (exact), sigmas, init_noise_sigma, img2img truncation, the
 * add_noise sigma, and a full stepwise run from x_T with recorded model outputs and noise.
 * Also replays the scheduler part of the img2img pipeline cases one step at a time.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import type { BaseScheduler } from './base'
import { createScheduler, nameForOracleKey } from './registry'
import type { Scheduler } from './types'

const ORACLE = path.resolve(repoRoot(), '../shared/oracle')
const FILE = path.join(ORACLE, 'schedulers.safetensors')
const HAVE = fs.existsSync(FILE) && fs.existsSync(path.join(ORACLE, 'manifest.json'))
if (!HAVE) console.warn(`scheduler oracle tests skipped: ${FILE} not found (../shared is absent)`)

interface Tol {
  atol: number
  rtol: number
}
interface SchedEntry {
  class_name: string
  order: number
  stepwise: { num_inference_steps: number; n_step_calls: number; noise_draws: string[] }
  [k: string]: unknown
}
interface Img2imgInfo {
  strength: number
  num_steps_run: number
  latent_timestep: number
  add_noise_sigma?: number
}
interface Case {
  name: string
  file: string
  tolerance: Record<string, unknown>
  schedulers: Record<string, SchedEntry>
  params: Record<string, unknown>
}

/** manifest.json is written by Python's json module: it may contain bare Infinity / NaN. */
function readManifest(): { cases: Case[] } {
  const text = fs.readFileSync(path.join(ORACLE, 'manifest.json'), 'utf8')
  return JSON.parse(text.replace(/([:[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, '$1"$2"')) as { cases: Case[] }
}

/** Largest |a - b| and whether every element passes |a - b| <= atol + rtol * |b|. */
function compare(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tol,
): { maxAbs: number; ok: boolean } {
  if (actual.length !== expected.length) return { maxAbs: Infinity, ok: false }
  let maxAbs = 0
  let ok = true
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!
    const b = expected[i]!
    const d = Math.abs(a - b)
    if (!(d <= tol.atol + tol.rtol * Math.abs(b))) ok = false
    if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Infinity : d
  }
  return { maxAbs, ok }
}

describe.skipIf(!HAVE)('schedulers match diffusers 0.21.4 (oracle case "schedulers")', () => {
  let st: SafetensorsFile
  let kase: Case
  let sigmasTol: Tol
  let stepsTol: Tol
  const report: Record<string, Record<string, number>> = {}

  const note = (key: string, what: string, v: number): void => {
    const r = (report[key] ??= {})
    r[what] = Math.max(r[what] ?? 0, v)
  }

  const readNumbers = async (name: string): Promise<number[]> => {
    const info = st.info(name)
    if (info.dtype === 'I64') {
      const raw = await st.readRaw(name)
      const v = new BigInt64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8)
      return Array.from(v, Number)
    }
    return Array.from(await st.readFloat32(name))
  }

  /** Rows of a [K, ...] float32 tensor. */
  const readRows = async (name: string): Promise<Float32Array[]> => {
    const info = st.info(name)
    const all = await st.readFloat32(name)
    const k = info.shape[0]!
    const size = all.length / k
    return Array.from({ length: k }, (_, i) => all.slice(i * size, (i + 1) * size))
  }

  beforeAll(async () => {
    const manifest = readManifest()
    const c = manifest.cases.find((x) => x.name === 'schedulers')
    if (!c) throw new Error('oracle manifest has no "schedulers" case')
    kase = c
    sigmasTol = kase.tolerance.sigmas as Tol
    stepsTol = kase.tolerance.steps as Tol
    st = await SafetensorsFile.open(FILE)
  })

  afterAll(async () => {
    await st?.close()
    if (Object.keys(report).length)
      console.log('scheduler oracle max |error|:\n' + JSON.stringify(report, null, 1))
  })

  it('betas and alphas_cumprod', async () => {
    const s = createScheduler('DDIM') as BaseScheduler
    for (const [name, ours] of [
      ['betas', s.betas],
      ['alphas_cumprod', s.alphasCumprod],
    ] as const) {
      const r = compare(ours, await readNumbers(name), sigmasTol)
      note('common', name, r.maxAbs)
      expect(r.ok, name).toBe(true)
    }
  })

  const KEYS = ['ddim', 'euler', 'euler_ancestral', 'dpmpp_2m_karras', 'lms', 'pndm']

  for (const key of KEYS) {
    describe(key, () => {
      let entry: SchedEntry
      let name: string
      beforeAll(() => {
        const e = kase.schedulers[key]
        if (!e) throw new Error(`oracle manifest lists no scheduler "${key}"`)
        entry = e
        const n = nameForOracleKey(key)
        if (!n) throw new Error(`no registry entry for oracle key "${key}"`)
        name = n
      })

      for (const N of [20, 30]) {
        it(`N=${N}: timesteps, sigmas, init_noise_sigma, img2img timesteps, add_noise sigma`, async () => {
          const s = createScheduler(name)
          expect(s.order).toBe(entry.order)
          s.setTimesteps(N)
          const ts = await readNumbers(`${key}_N${N}_timesteps`)
          expect(Array.from(s.timesteps)).toEqual(ts)
          const sigName = `${key}_N${N}_sigmas`
          if (st.has(sigName)) {
            expect(s.sigmas, `${name} has sigmas`).toBeDefined()
            const r = compare(s.sigmas!, await readNumbers(sigName), sigmasTol)
            note(key, 'sigmas', r.maxAbs)
            expect(r.ok, sigName).toBe(true)
          }
          expect(s.initNoiseSigma).toBe(entry[`N${N}_init_noise_sigma`])

          const info = entry[`N${N}_img2img`] as Img2imgInfo
          const i2i = s.img2imgTimesteps(N, info.strength)
          expect(Array.from(i2i)).toEqual(await readNumbers(`${key}_N${N}_img2img_timesteps`))
          expect(i2i[0]).toBe(info.latent_timestep)
          if (info.add_noise_sigma !== undefined) {
            // add_noise(x0 = 0, noise = 1, t0) is exactly the sigma diffusers used
            const one = s.addNoise(new Float32Array([0, 2]), new Float32Array([1, 1]), i2i[0]!)
            expect(one[0]).toBe(info.add_noise_sigma)
            expect(one[1]).toBe(Math.fround(2 + info.add_noise_sigma))
          }
        })
      }

      it('stepwise run from x_T with recorded model outputs', async () => {
        const s = createScheduler(name)
        const N = entry.stepwise.num_inference_steps
        s.setTimesteps(N)
        expect(Array.from(s.timesteps)).toEqual(await readNumbers(`step_${key}_timesteps`))
        const unit = await st.readFloat32('step_x_T_unit')
        const outputs = await readRows('step_model_outputs')
        const samples = await readRows(`step_${key}_samples`)
        const scaled = await readRows(`step_${key}_scaled_model_inputs`)
        const predName = `step_${key}_pred_original_samples`
        const preds = st.has(predName) ? await readRows(predName) : undefined
        const noiseName = `step_${key}_noise`
        const noises = st.has(noiseName) ? await readRows(noiseName) : undefined
        let draws = 0
        const noise = (): Float32Array => {
          if (!noises) throw new Error(`${key} drew noise but the oracle recorded none`)
          const z = noises[draws++]
          if (!z) throw new Error(`${key} drew more noise than recorded`)
          return z
        }

        let x: Float32Array = unit.map((v) => v * s.initNoiseSigma)
        let r = compare(x, samples[0]!, stepsTol)
        expect(r.ok, 'x_T').toBe(true)
        const calls = entry.stepwise.n_step_calls
        expect(s.timesteps.length).toBe(calls)
        for (let i = 0; i < calls; i++) {
          const t = s.timesteps[i]!
          const xin = s.scaleModelInput(x, t)
          r = compare(xin, scaled[i]!, stepsTol)
          note(key, 'scaled_model_inputs', r.maxAbs)
          expect(r.ok, `scaled_model_input step ${i}`).toBe(true)
          x = s.step(outputs[i % N]!, t, x, noise)
          r = compare(x, samples[i + 1]!, stepsTol)
          note(key, 'samples', r.maxAbs)
          expect(r.ok, `sample after step ${i} (max |err| ${r.maxAbs})`).toBe(true)
          if (preds) {
            r = compare(s.predOriginalSample!, preds[i]!, stepsTol)
            note(key, 'pred_original_samples', r.maxAbs)
            expect(r.ok, `pred_original_sample step ${i}`).toBe(true)
          }
        }
        expect(draws).toBe(entry.stepwise.noise_draws.length)
      })
    })
  }
})

/** The scheduler half of the img2img pipeline cases, one step at a time on the oracle's own latents. */
for (const caseName of ['img2img_ddim', 'img2img_euler']) {
  const file = path.join(ORACLE, `${caseName}.safetensors`)
  describe.skipIf(!HAVE || !fs.existsSync(file))(`${caseName}: scheduler steps inside the pipeline`, () => {
    it('timesteps, scale_model_input and step match every recorded step', async () => {
      const manifest = readManifest()
      const c = manifest.cases.find((x) => x.name === caseName)!
      const p = c.params as {
        scheduler: string
        strength: number
        num_inference_steps: number
        guidance_scale: number
      }
      const f = await SafetensorsFile.open(file)
      try {
        const rows = async (n: string): Promise<Float32Array[]> => {
          const a = await f.readFloat32(n)
          const k = f.info(n).shape[0]!
          const size = a.length / k
          return Array.from({ length: k }, (_, i) => a.slice(i * size, (i + 1) * size))
        }
        const s: Scheduler = createScheduler(nameForOracleKey(p.scheduler)!)
        const ts = s.img2imgTimesteps(p.num_inference_steps, p.strength)
        expect(Array.from(ts)).toEqual(Array.from(await f.readFloat32('step_timesteps')))
        const inputs = await rows('unet_inputs')
        const outputs = await rows('unet_outputs')
        const latents = await rows('step_latents')
        const g = Math.fround(p.guidance_scale)
        const tol = { atol: 2e-5, rtol: 1e-4 }
        for (let i = 0; i < ts.length; i++) {
          const half = outputs[i]!.length / 2
          const u = outputs[i]!.subarray(0, half)
          const cnd = outputs[i]!.subarray(half)
          const eps = new Float32Array(half)
          for (let k = 0; k < half; k++) eps[k] = u[k]! + Math.fround(g * Math.fround(cnd[k]! - u[k]!))
          // the latents before step i: step_latents[i-1], or (i = 0) recovered from the UNet input
          let x: Float32Array
          if (i === 0) {
            if (p.scheduler !== 'ddim') continue // Euler's first input is divided by sqrt(sigma^2+1)
            x = inputs[0]!.slice(0, half)
          } else {
            x = latents[i - 1]!
            const r = compare(s.scaleModelInput(x, ts[i]!), inputs[i]!.subarray(0, half), tol)
            expect(r.ok, `unet input ${i}`).toBe(true)
          }
          const r = compare(
            s.step(eps, ts[i]!, x, () => new Float32Array(half)),
            latents[i]!,
            tol,
          )
          expect(r.ok, `latents after step ${i} (max |err| ${r.maxAbs})`).toBe(true)
        }
      } finally {
        await f.close()
      }
    })
  })
}
