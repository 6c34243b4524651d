import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../cli/index'
import { SafetensorsFile } from '../../model-formats/safetensors'
import { repoRoot } from '../../platform/paths'
import * as ort from 'onnxruntime-node'
import { coreImg2Img, coreTxt2Img } from '../pipelines/core'
import { samplerInfotext, studioSampler } from '../pipelines/generate'
import { RecordedNoise } from '../random'
import { createScheduler } from '../schedulers'
import { loadManifest } from './manifest'
import { ReferenceModels } from './models'
import { strippedCopy } from './test-support'
import { compareTensors, toleranceFor } from './tolerance'

// The k-diffusion / A1111 / ComfyUI sampling set; its model is ../oracle/tiny-sd15.safetensors.
const SET = path.resolve(repoRoot(), '../shared/oracle-kdiff')
const SIBLING = path.resolve(repoRoot(), '../shared/oracle')
const present = fs.existsSync(path.join(SET, 'manifest.json')) && fs.existsSync(SIBLING)
if (!present) console.warn(`skipping oracle-kdiff reference test: ${SET} (or ${SIBLING}) is absent`)

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-kdiff-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

async function read(st: SafetensorsFile, name: string): Promise<ArrayLike<number> | BigInt64Array> {
  const dt = st.info(name).dtype
  if (dt === 'I64' || dt === 'U8') return (await st.readTyped(name)) as BigInt64Array | Uint8Array
  return st.readFloat32(name)
}

describe.skipIf(!present)('atelier reference on the oracle-kdiff set', () => {
  it('runs every case from a copy without expected tensors, and every output is within tolerance', async () => {
    const copy = path.join(tmp, 'oracle-kdiff')
    // The set names its model by a path relative to its folder (../oracle/...): keep that sibling.
    fs.symlinkSync(SIBLING, path.join(tmp, path.basename(SIBLING)))
    const m = await strippedCopy(SET, copy)
    const out = path.join(tmp, 'out')
    const code = await runCli([
      'reference',
      path.join(copy, 'manifest.json'),
      '--out',
      out,
      '--cache',
      path.join(tmp, 'cache'),
      '--quiet',
    ])
    expect(code).toBe(0)
    const report: string[] = []
    for (const c of m.cases) {
      const mine = await SafetensorsFile.open(path.join(out, `${c.name}.safetensors`))
      const gold = await SafetensorsFile.open(path.join(SET, c.file))
      for (const e of c.expected) {
        expect(mine.has(e), `${c.name}/${e} written`).toBe(true)
        const tol = toleranceFor(c, e, c.tensors[e]?.dtype.toUpperCase())
        const cmp = compareTensors(
          (await read(mine, e)) as Float32Array,
          (await read(gold, e)) as Float32Array,
          tol,
          { actual: mine.info(e).shape, expected: gold.info(e).shape },
        )
        if (e === 'final_latents')
          report.push(
            `${c.name}: final_latents max ${cmp.maxAbs.toExponential(2)} (atol ${tol.exact ? 0 : tol.atol})`,
          )
        expect(cmp.pass, `${c.name}/${e} max ${cmp.maxAbs}`).toBe(true)
      }
      await mine.close()
      await gold.close()
    }
    console.log(report.join('\n'))
    expect(m.cases.length).toBeGreaterThan(20)
  }, 600_000)
})

interface RunParams {
  sampler?: string
  scheduler?: string
  steps: number
  cfg_scale: number
  denoising_strength?: number
  img2img_fix_steps?: boolean
}

describe.skipIf(!present)('the studio pipelines sample as A1111 (oracle-kdiff goldens)', () => {
  const m = present ? loadManifest(path.join(SET, 'manifest.json')) : undefined
  const runs = (m?.cases ?? []).filter(
    (c) => c.name.startsWith('a1111_') && (c as { params?: RunParams }).params?.sampler,
  )

  it('writes the infotext fields A1111 wrote for every run', () => {
    for (const c of runs) {
      const p = (c as { params?: RunParams }).params!
      const info = (c as { infotext?: Record<string, string> }).infotext ?? {}
      const w = samplerInfotext({ sampler: p.sampler!, scheduleType: p.scheduler, steps: p.steps })
      const mine = { ...(w.scheduleType ? { 'Schedule type': w.scheduleType } : {}), ...w.extra }
      expect(mine, c.name).toEqual(info)
    }
  })

  it('coreTxt2Img / coreImg2Img with an A1111 plan reproduce the final latents ([uncond, cond] batches, eps guidance)', async () => {
    const models = new ReferenceModels(m!, { cacheRoot: path.join(tmp, 'cache-core') })
    try {
      const set = await models.modelSet(await models.checkpoint(runs[0]!, 'normal'))
      const report: string[] = []
      for (const c of runs) {
        const p = (c as { params?: RunParams }).params!
        const st = await SafetensorsFile.open(path.join(SET, c.file))
        const cond = await st.readFloat32('cond')
        const uncond = await st.readFloat32('uncond')
        const draws = []
        for (const n of c.given.filter((g) => /^noise_\d+$/.test(g)).sort())
          draws.push({ data: await st.readFloat32(n), shape: st.info(n).shape, name: n })
        const noise = new RecordedNoise(draws)
        const ctx = new Float32Array(cond.length * 2)
        ctx.set(uncond)
        ctx.set(cond, cond.length)
        const [, seq = 77, width = 64] = st.info('cond').shape
        const r = studioSampler({ sampler: p.sampler!, scheduleType: p.scheduler })
        const shape = { batch: 1, channels: 4, height: 8, width: 8 }
        const base = {
          model: set,
          scheduler: createScheduler('Euler'),
          steps: p.steps,
          context: new ort.Tensor('float32', ctx, [2, seq, width]),
          guidanceScale: p.cfg_scale,
          noise,
          shape,
          sampling: r.sampling,
        }
        let latents: Float32Array
        if (p.denoising_strength !== undefined) {
          const u8 = (await st.readTyped('image_uint8_hwc')) as Uint8Array
          const image = new Float32Array(3 * 64 * 64)
          for (let i = 0; i < 64 * 64; i++)
            for (let k = 0; k < 3; k++)
              image[k * 4096 + i] = Math.fround(Math.fround(u8[i * 3 + k]! / 255) * 2 - 1)
          const vae = new RecordedNoise([await st.readFloat32('vae_noise')])
          latents = (
            await coreImg2Img({
              ...base,
              vaeNoise: vae,
              image,
              strength: p.denoising_strength,
              exactSteps: p.img2img_fix_steps ?? false,
            })
          ).latents
        } else latents = (await coreTxt2Img(base)).latents
        const gold = await st.readFloat32('final_latents')
        const tol = toleranceFor(c, 'final_latents')
        const cmp = compareTensors(latents, gold, tol)
        report.push(`${c.name}: ${cmp.maxAbs.toExponential(2)}`)
        expect(cmp.pass, `${c.name} max ${cmp.maxAbs}`).toBe(true)
        await st.close()
      }
      console.log(`studio path, final_latents max |diff|:\n${report.join('\n')}`)
    } finally {
      await models.release()
    }
  }, 600_000)
})
