import { describe, expect, it } from 'vitest'
import { encodePng } from '../../engine/image/codec'
import { insertPngText } from '../../engine/metadata'
import { samplerInfotext, studioSampler } from '../../engine/pipelines/generate'
import { planK } from '../../engine/pipelines/ksampling'
import { readImageParameters } from './parameters'

async function pngWith(text: string): Promise<Uint8Array> {
  const px = await encodePng({ width: 8, height: 8, channels: 3, data: new Uint8Array(8 * 8 * 3) })
  return insertPngText(px, [{ keyword: 'parameters', text }])
}

const A1111_110 =
  'a cat\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 6ce0161689, Model: v1-5, Version: v1.10.1'

describe('A1111 sampler and Schedule type in infotexts', () => {
  it('DPM++ SDE images: the sampler restores; A1111 Brownian-tree noise is listed as not reproduced', async () => {
    const a1111 = readImageParameters(
      await pngWith(
        A1111_110.replace('Sampler: DPM++ 2M, Schedule type: Karras', 'Sampler: DPM++ 2M SDE Karras'),
      ),
    )
    expect(a1111).toMatchObject({ sampler: 'DPM++ 2M SDE', scheduleType: 'Karras' })
    expect(a1111.notRestored).toEqual([
      'DPM++ 2M SDE: the Brownian-tree noise of A1111 / ComfyUI is not reproduced (same sampler and schedule, other pixels)',
    ])
    const own = readImageParameters(
      await pngWith(
        A1111_110.replace(
          'Sampler: DPM++ 2M, Schedule type: Karras',
          'Sampler: DPM++ 3M SDE, Schedule type: Exponential, SDE noise: per-step',
        ),
      ),
    )
    expect(own).toMatchObject({ sampler: 'DPM++ 3M SDE', scheduleType: 'Exponential' })
    expect(own.notRestored).toBeUndefined()
  })

  it('a PNG from A1111 1.9+ restores its sampler and schedule type', async () => {
    const p = readImageParameters(await pngWith(A1111_110))
    expect(p).toMatchObject({ sampler: 'DPM++ 2M', scheduleType: 'Karras', steps: 20 })
    // and that request runs what A1111 ran: Karras sigmas from sigma_max to sigma_min, then 0
    const r = studioSampler({ sampler: p.sampler!, scheduleType: p.scheduleType })
    expect(r.convention).toBe('a1111')
    const plan = planK(r.sampling!, 20)
    expect(plan.resolvedSchedule).toBe('karras')
    expect(plan.sigmas).toHaveLength(21)
  })

  it('older infotexts: a schedule in the sampler name; a missing Schedule type is Automatic', async () => {
    const old = readImageParameters(
      await pngWith('x\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1'),
    )
    expect(old).toMatchObject({ sampler: 'DPM++ 2M', scheduleType: 'Karras' })
    const euler = readImageParameters(
      await pngWith('x\nSteps: 20, Sampler: Euler a Exponential, CFG scale: 7'),
    )
    expect(euler).toMatchObject({ sampler: 'Euler a', scheduleType: 'Exponential' })
    const plain = readImageParameters(await pngWith('x\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1'))
    expect(plain).toMatchObject({ sampler: 'DPM++ 2M', scheduleType: 'Automatic' })
    // since v1.9 that means the sampler's default (Karras for DPM++ 2M)
    expect(
      planK(studioSampler({ sampler: 'DPM++ 2M', scheduleType: 'Automatic' }).sampling!, 20).resolvedSchedule,
    ).toBe('karras')
  })

  it('writes Schedule type as A1111 does: the schedule that ran, none for a default-less sampler on Automatic', () => {
    const w = (sampler: string, scheduleType?: string): ReturnType<typeof samplerInfotext> =>
      samplerInfotext({ sampler, scheduleType, steps: 20 })
    expect(w('DPM++ 2M')).toEqual({ sampler: 'DPM++ 2M', scheduleType: 'Karras', extra: {} })
    expect(w('DPM++ 2M Karras')).toEqual({ sampler: 'DPM++ 2M', scheduleType: 'Karras', extra: {} })
    expect(w('DPM++ 2M', 'Uniform')).toEqual({ sampler: 'DPM++ 2M', scheduleType: 'Uniform', extra: {} })
    expect(w('Euler a')).toEqual({ sampler: 'Euler a', extra: {} })
    expect(w('Euler', 'SGM Uniform')).toEqual({ sampler: 'Euler', scheduleType: 'SGM Uniform', extra: {} })
    expect(w('DPM2 a')).toEqual({ sampler: 'DPM2 a', scheduleType: 'Karras', extra: {} })
    expect(w('DDIM')).toEqual({ sampler: 'DDIM', extra: {} })
    expect(w('LCM')).toEqual({ sampler: 'LCM', extra: {} })
    expect(w('Euler', 'Beta')).toEqual({
      sampler: 'Euler',
      scheduleType: 'Beta',
      extra: { 'Beta schedule alpha': '0.6', 'Beta schedule beta': '0.6' },
    })
    expect(samplerInfotext({ sampler: 'Euler a', samplerConvention: 'diffusers', steps: 20 })).toEqual({
      sampler: 'Euler a',
      extra: { 'Sampler convention': 'diffusers' },
    })
  })

  it('the diffusers convention keeps its own names and spacings; bad combinations are readable errors', () => {
    const d = studioSampler({ sampler: 'DPM++ 2M', scheduleType: 'Karras', samplerConvention: 'diffusers' })
    expect(d).toMatchObject({ convention: 'diffusers', sampler: 'DPM++ 2M Karras' })
    const t = studioSampler({ sampler: 'Euler', scheduleType: 'trailing', samplerConvention: 'diffusers' })
    expect(t.diffusersConfig).toEqual({ timestep_spacing: 'trailing' })
    expect(() =>
      studioSampler({ sampler: 'Euler', scheduleType: 'Beta', samplerConvention: 'diffusers' }),
    ).toThrow(/not available .* diffusers/)
    expect(() => studioSampler({ sampler: 'Euler', scheduleType: 'Sideways' })).toThrow(
      /unknown schedule type "Sideways"/,
    )
    // The DPM++ SDE family runs the k-diffusion way; diffusers' SDE solver stays selectable
    expect(studioSampler({ sampler: 'DPM++ 2M SDE' }).convention).toBe('a1111')
    expect(studioSampler({ sampler: 'DPM++ 2M SDE Karras' })).toMatchObject({
      convention: 'a1111',
      sampler: 'DPM++ 2M SDE',
      scheduleType: 'Karras',
    })
    expect(
      studioSampler({ sampler: 'DPM++ 2M SDE', scheduleType: 'Karras', samplerConvention: 'diffusers' }),
    ).toMatchObject({ convention: 'diffusers', sampler: 'DPM++ 2M SDE Karras' })
    expect(samplerInfotext({ sampler: 'DPM++ 3M SDE', steps: 20 })).toEqual({
      sampler: 'DPM++ 3M SDE',
      scheduleType: 'Exponential',
      extra: { 'SDE noise': 'per-step' },
    })
    expect(
      studioSampler({ sampler: 'ddim', scheduleType: 'ddim_uniform', samplerConvention: 'comfy' }),
    ).toMatchObject({ convention: 'comfy', sampler: 'Euler', scheduleType: 'ddim_uniform' })
    expect(() => studioSampler({ sampler: 'euler_cfg_pp', samplerConvention: 'comfy' })).toThrow(
      /ComfyUI sampler "euler_cfg_pp" is not supported here: CFG\+\+/,
    )
    expect(samplerInfotext({ sampler: 'dpmpp_sde', samplerConvention: 'comfy', steps: 20 })).toEqual({
      sampler: 'DPM++ SDE',
      scheduleType: 'normal',
      extra: { 'Sampler convention': 'comfy', 'SDE noise': 'per-step' },
    })
    // few-step samplers: TCD runs diffusers' TCDScheduler; LCM is A1111's LCM unless diffusers is asked for
    expect(studioSampler({ sampler: 'TCD' })).toMatchObject({ convention: 'diffusers', sampler: 'TCD' })
    expect(studioSampler({ sampler: 'LCM' }).convention).toBe('a1111')
    expect(studioSampler({ sampler: 'LCM', samplerConvention: 'diffusers' })).toMatchObject({
      convention: 'diffusers',
      sampler: 'LCM',
    })
  })
})
