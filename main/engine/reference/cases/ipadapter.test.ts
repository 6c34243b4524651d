import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../../cli/index'
import { SafetensorsFile, writeSafetensors } from '../../../model-formats/safetensors'
import type { TensorToWrite } from '../../../model-formats/safetensors'
import { strippedCopy } from '../test-support'
import { repoRoot } from '../../../platform/paths'
import { loadManifest } from '../manifest'
import { runReference } from '../run'
import { compareTensors, toleranceFor } from '../tolerance'
import { scaleOfName } from './ipadapter'

const SET = path.resolve(repoRoot(), '../shared/oracle-ipadapter')
const present =
  fs.existsSync(path.join(SET, 'manifest.json')) &&
  fs.existsSync(path.resolve(repoRoot(), '../shared/oracle/tiny-sd15.safetensors'))
if (!present) console.warn(`skipping the IP-Adapter reference cases: ${SET} (or ../shared/oracle) is absent`)

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ref-ip-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe('IP-Adapter case helpers', () => {
  it('reads the scale out of eps_scale_* names', () => {
    expect(scaleOfName('eps_scale_1_0')).toBe(1)
    expect(scaleOfName('eps_scale_0_5')).toBe(0.5)
    expect(scaleOfName('eps_scale_0_25')).toBe(0.25)
    expect(scaleOfName('eps_scale_0_0')).toBe(0)
    expect(scaleOfName('eps_scale_2')).toBe(2)
    expect(scaleOfName('eps_scale_m0_5')).toBe(-0.5)
    expect(scaleOfName('eps_text_only')).toBeUndefined()
  })
})

describe.skipIf(!present)('atelier reference on the IP-Adapter set', () => {
  it('passes every case within its tolerance', async () => {
    const results = await runReference(path.join(SET, 'manifest.json'), {
      out: path.join(tmp, 'out'),
      cacheRoot: path.join(tmp, 'cache'),
      session: { preference: 'cpu' },
    })
    const m = loadManifest(path.join(SET, 'manifest.json'))
    expect(results.map((r) => r.name)).toEqual(m.cases.map((c) => c.name))
    for (const r of results) {
      expect(r.status, `${r.name}: ${r.message ?? ''}`).toBe('pass')
      const def = m.cases.find((c) => c.name === r.name)
      expect(r.checks.map((k) => k.name).sort()).toEqual([...(def?.expected ?? [])].sort())
      for (const k of r.checks)
        expect(k.comparison?.pass, `${r.name}/${k.name} ${k.comparison?.maxAbs}`).toBe(true)
    }
  })

  it('runs variants of the format: other scales, three blended images from raw images, img2img, no CFG', async () => {
    const m = loadManifest(path.join(SET, 'manifest.json'))
    const dir = path.join(tmp, 'variants')
    fs.mkdirSync(dir)
    const byName = (n: string) => m.cases.find((c) => c.name === n) as (typeof m.cases)[number]
    const read = async (file: string, names: string[]): Promise<Record<string, TensorToWrite>> => {
      const st = await SafetensorsFile.open(path.join(SET, file))
      const out: Record<string, TensorToWrite> = {}
      for (const n of names)
        out[n] = { dtype: st.info(n).dtype, shape: st.info(n).shape, data: await st.readRaw(n) }
      await st.close()
      return out
    }
    const unet = byName('unet_ip')
    const t2i = byName('txt2img_ip')
    const blend = byName('blend')
    const ip = await read(t2i.file, t2i.given)
    const noise = ip.noise_00 as TensorToWrite
    const img = ip.image_uint8_hwc as TensorToWrite
    await writeSafetensors(path.join(dir, 'unet.safetensors'), await read(unet.file, unet.given))
    await writeSafetensors(path.join(dir, 'blend.safetensors'), {
      ...(await read(blend.file, ['image_uint8_hwc_0', 'image_uint8_hwc_1', 'sample', 'text_embeds'])),
      image_uint8_hwc_2: img,
    })
    await writeSafetensors(path.join(dir, 't2i.safetensors'), ip)
    await writeSafetensors(path.join(dir, 'i2i.safetensors'), {
      ...ip,
      init_image_uint8_hwc: img,
      noise_01: noise,
    })
    const cases = [
      {
        ...unet,
        name: 'unet_ip_more',
        file: 'unet.safetensors',
        expected: ['eps_scale_0_25', 'eps_scale_1_5', 'eps_scale_0', 'eps_text_only'],
        trace: [],
      },
      {
        ...blend,
        name: 'blend_three',
        file: 'blend.safetensors',
        given: ['image_uint8_hwc_0', 'image_uint8_hwc_1', 'image_uint8_hwc_2', 'sample', 'text_embeds'],
        params: { ...(blend.params as object), n_images: 3 },
      },
      {
        ...t2i,
        name: 'txt2img_ip_nocfg',
        file: 't2i.safetensors',
        params: { ...(t2i.params as object), guidance_scale: 1, scale: 0.3 },
      },
      {
        ...t2i,
        name: 'img2img_ip_ddim',
        file: 'i2i.safetensors',
        given: [...t2i.given, 'init_image_uint8_hwc', 'noise_01'],
        noise: [{ tensor: 'noise_00' }, { tensor: 'noise_01' }],
        params: { ...(t2i.params as object), strength: 0.5 },
      },
    ]
    const manifest = {
      ...JSON.parse(fs.readFileSync(m.path, 'utf8')),
      cases,
      files: {},
      model: {
        sd1_checkpoint: { file: path.resolve(SET, '../oracle/tiny-sd15.safetensors') },
        image_encoder: { folder: `${path.join(SET, 'image_encoder')}/` },
        ip_adapter: { file: path.join(SET, 'tiny-ip-adapter.safetensors') },
      },
    }
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest))
    const results = await runReference(path.join(dir, 'manifest.json'), {
      out: path.join(tmp, 'out-variants'),
      cacheRoot: path.join(tmp, 'cache'),
      session: { preference: 'cpu' },
    })
    for (const r of results) expect(r.status, `${r.name}: ${r.message ?? ''}`).toBe('written')
    const out = async (c: string, n: string): Promise<Float32Array> => {
      const st = await SafetensorsFile.open(path.join(tmp, 'out-variants', `${c}.safetensors`))
      const v = await st.readFloat32(n)
      await st.close()
      return v
    }
    expect([...(await out('unet_ip_more', 'eps_scale_0'))]).toEqual([
      ...(await out('unet_ip_more', 'eps_text_only')),
    ])
    expect(await out('unet_ip_more', 'eps_scale_1_5')).not.toEqual(
      await out('unet_ip_more', 'eps_scale_0_25'),
    )
    expect((await out('blend_three', 'image_embeds')).length).toBe(3 * 48)
    for (const c of ['txt2img_ip_nocfg', 'img2img_ip_ddim']) {
      const lat = await out(c, 'final_latents')
      expect(lat.every(Number.isFinite), c).toBe(true)
    }
  })

  it('works from a copy with the expected and trace tensors removed (CLI), and its outputs match the goldens', async () => {
    const copy = path.join(tmp, 'stripped')
    const m = await strippedCopy(SET, copy)
    // the checkpoint lives in a sibling set, named relative to the manifest
    fs.symlinkSync(path.resolve(SET, '../oracle'), path.join(tmp, 'oracle'))
    const out = path.join(tmp, 'out-stripped')
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
    for (const c of m.cases) {
      const mine = await SafetensorsFile.open(path.join(out, `${c.name}.safetensors`))
      const gold = await SafetensorsFile.open(path.join(SET, c.file))
      for (const e of c.expected) {
        expect(mine.has(e), `${c.name}/${e} written`).toBe(true)
        const tol = toleranceFor(c, e, c.tensors[e]?.dtype.toUpperCase())
        const cmp = compareTensors(await mine.readFloat32(e), await gold.readFloat32(e), tol, {
          actual: mine.info(e).shape,
          expected: gold.info(e).shape,
        })
        expect(cmp.pass, `${c.name}/${e} max ${cmp.maxAbs}`).toBe(true)
      }
      await mine.close()
      await gold.close()
    }
  })
})
