/**
 * Standalone VAE files as users have them, probed from their headers: A1111 LDM naming with or without
 * `first_stage_model.`, diffusers naming (a lone file and a `vae/` folder with its config), and a pickled
 * `.pt`. SD 1.x and SDXL VAEs have the same shapes, so the family comes from what surrounds the weights:
 * a Civitai sidecar, `modelspec.architecture`, the diffusers scaling factor, or the file name.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeTinyVae } from '../../../bench/fixtures/tiny-vae'
import { torchSaveZip } from '../pickle/torch-writer'
import type { TensorToSave } from '../pickle/torch-writer'
import { SafetensorsFile } from '../safetensors'
import { probeModel } from './index'

let tmp = ''
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-vae-probe-'))
})
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const ARCH = {
  inChannels: 3,
  outChannels: 3,
  blockOutChannels: [32, 64, 64, 64],
  layersPerBlock: 2,
  latentChannels: 4,
  hasQuantConv: true,
}

describe('standalone VAE probe', () => {
  it('recognises every layout as type vae with the same architecture', async () => {
    const files = [
      writeTinyVae(path.join(tmp, 'a', 'plain.safetensors'), { seed: 1 }),
      writeTinyVae(path.join(tmp, 'a', 'prefixed.safetensors'), { seed: 1, layout: 'ldm-prefixed' }),
      writeTinyVae(path.join(tmp, 'a', 'diffusers-named.safetensors'), { seed: 1, layout: 'diffusers' }),
    ]
    const st = await SafetensorsFile.open(files[0] as string)
    const tensors: [string, TensorToSave][] = []
    for (const [name, t] of st.tensors)
      tensors.push([name, { dtype: t.dtype as 'F16', shape: t.shape, bytes: await st.readRaw(name) }])
    await st.close()
    const pt = path.join(tmp, 'a', 'pickled.vae.pt')
    fs.writeFileSync(pt, torchSaveZip(tensors, { wrapper: 'state_dict', archive: 'vae' }))
    files.push(pt)
    for (const f of files) {
      const p = await probeModel(f)
      expect(p).toMatchObject({ type: 'vae', base: null, family: 'any', runnable: true })
      expect(p.vae).toMatchObject({ ...ARCH, scalingFactor: 0.18215 })
    }
  })

  it('tells SD 1.x from SDXL by sidecar, metadata, diffusers config and name; else leaves it open', async () => {
    const dir = path.join(tmp, 'b')
    const probe = async (name: string, metadata?: Record<string, string>) =>
      (await probeModel(writeTinyVae(path.join(dir, name), { seed: 2, ...(metadata ? { metadata } : {}) })))
        .base
    expect(await probe('sdxl_vae.safetensors')).toBe('sdxl')
    expect(await probe('animagine-xl-vae.safetensors')).toBe('sdxl')
    expect(await probe('vae-ft-mse-840000-ema-pruned.safetensors')).toBe('sd-1')
    expect(await probe('kl-f8-anime2.safetensors')).toBe('sd-1')
    expect(await probe('mystery.safetensors')).toBeNull()
    expect(await probe('xlnt.safetensors')).toBeNull()
    expect(
      await probe('spec.safetensors', { 'modelspec.architecture': 'stable-diffusion-xl-v1-base/vae' }),
    ).toBe('sdxl')
    // A Civitai sidecar outranks the name.
    const civ = writeTinyVae(path.join(dir, 'sdxl-looking.safetensors'), { seed: 2 })
    fs.writeFileSync(path.join(dir, 'sdxl-looking.civitai.info'), JSON.stringify({ baseModel: 'SD 1.5' }))
    expect((await probeModel(civ)).base).toBe('sd-1')
    const pony = writeTinyVae(path.join(dir, 'plain2.safetensors'), { seed: 2 })
    fs.writeFileSync(path.join(dir, 'plain2.civitai.info'), JSON.stringify({ baseModel: 'Pony' }))
    expect(await probeModel(pony)).toMatchObject({ base: 'sdxl', family: 'sdxl', runnable: true })
    expect((await probeModel(pony)).vae?.scalingFactor).toBe(0.13025)

    // A diffusers vae/ folder: its config's scaling factor says SDXL.
    const folder = path.join(tmp, 'c', 'some-repo', 'vae')
    writeTinyVae(path.join(folder, 'diffusion_pytorch_model.safetensors'), { seed: 2, layout: 'diffusers' })
    fs.writeFileSync(
      path.join(folder, 'config.json'),
      JSON.stringify({ _class_name: 'AutoencoderKL', scaling_factor: 0.13025, latent_channels: 4 }),
    )
    expect(await probeModel(folder)).toMatchObject({ type: 'vae', base: 'sdxl' })
    fs.writeFileSync(
      path.join(folder, 'config.json'),
      JSON.stringify({ _class_name: 'AutoencoderKL', scaling_factor: 0.18215, latent_channels: 4 }),
    )
    expect(await probeModel(folder)).toMatchObject({ type: 'vae', base: null, vae: ARCH })
  })
})
