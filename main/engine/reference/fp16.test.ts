import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../../cli/index'
import { repoRoot } from '../../platform/paths'
import type { ReferenceCase } from './manifest'
import { runReference } from './run'
import { caseFp64Diff, fp16QuantizedTolerance, fp16Tolerance, quantizedFrom } from './tolerance'

const ORACLE = path.resolve(repoRoot(), '../shared/oracle')
const present = fs.existsSync(path.join(ORACLE, 'manifest.json'))
if (!present) console.warn(`skipping the fp16 oracle runs: ${ORACLE} is absent`)

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-ref16-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

function refCase(extra: Record<string, unknown>): ReferenceCase {
  return {
    name: 'x',
    file: 'x.safetensors',
    tensors: {},
    given: [],
    expected: [],
    trace: [],
    tolerance: {},
    ...extra,
  } as ReferenceCase
}

describe('the fp16 tolerance rule', () => {
  it('reads the case fp32-vs-fp64 difference: a number, the tensor own entry, else the largest float one', () => {
    expect(caseFp64Diff(refCase({ fp32_vs_fp64_max_abs_diff: 5e-6 }))).toBe(5e-6)
    const c = refCase({
      fp32_vs_fp64_max_abs_diff: { output_image: 4e-4, final_latents: 8e-4, uint8_max_abs_diff: 1 },
    })
    expect(caseFp64Diff(c, 'output_image')).toBe(4e-4)
    expect(caseFp64Diff(c, 'step_latents')).toBe(8e-4)
    expect(caseFp64Diff(refCase({}))).toBeUndefined()
  })

  it('atol16 = max(atol32, min(2^16 d64, 0.1 max|expected|)); rtol, exact and schedule values unchanged', () => {
    const fp32 = { atol: 2e-4, rtol: 1e-3 }
    // oracle-sdxl's UNet: d64 1.02e-6, so 2^16 d64 = 0.067 (below the cap of 0.128).
    const unet = refCase({ fp32_vs_fp64_max_abs_diff: 1.0239e-6 })
    const eps = [1.28, -0.5]
    expect(fp16Tolerance(unet, 'eps', fp32, eps)).toEqual({ atol: 2 ** 16 * 1.0239e-6, rtol: 1e-3 })
    // Capped at a tenth of the tensor's scale (pipelines: d64 carries the steps' growth).
    const pipe = refCase({ fp32_vs_fp64_max_abs_diff: { final_latents: 8e-4 } })
    expect(fp16Tolerance(pipe, 'final_latents', { atol: 0.01, rtol: 1e-3 }, [6.55, 1])).toEqual({
      atol: 0.655,
      rtol: 1e-3,
    })
    // Never below the fp32 tolerance.
    const tiny = refCase({ fp32_vs_fp64_max_abs_diff: 1e-9 })
    expect(fp16Tolerance(tiny, 'eps', fp32, eps)).toEqual(fp32)
    expect(fp16Tolerance(unet, 'eps', { exact: true }, eps)).toEqual({ exact: true })
    expect(fp16Tolerance(unet, 'step_timesteps', fp32, eps)).toEqual(fp32)
    expect(fp16Tolerance(unet, 'mask_processed', fp32, eps)).toEqual(fp32)
    // No measured d64 (e.g. oracle-ipadapter's blend): the cap alone.
    expect(fp16Tolerance(refCase({}), 'eps', fp32, eps)).toEqual({ atol: 0.128, rtol: 1e-3 })
    expect(fp16Tolerance(unet, 'delta.lora_unet_conv_in', fp32, eps)).toEqual(fp32)
  })

  it('an 8-bit image quantised from the case float image: its fp16 atol in levels (255/2 per unit), rounded up', () => {
    const c = refCase({ expected: ['output_image', 'output_uint8_hwc', 'final_latents'] })
    expect(quantizedFrom(c, 'output_uint8_hwc')).toBe('output_image')
    expect(quantizedFrom(c, 'final_latents')).toBeUndefined()
    expect(quantizedFrom(refCase({ expected: ['output_uint8_hwc'] }), 'output_uint8_hwc')).toBeUndefined()
    const u8 = { atol: 1, rtol: 0 }
    expect(fp16QuantizedTolerance(u8, { atol: 0.0284, rtol: 1e-3 })).toEqual({ atol: 1 + 4, rtol: 0 })
    expect(fp16QuantizedTolerance(u8, { atol: 0.002, rtol: 1e-3 })).toEqual({ atol: 2, rtol: 0 })
    expect(fp16QuantizedTolerance({ exact: true }, { atol: 0.1, rtol: 0 })).toEqual({ exact: true })
  })
})

describe.skipIf(!present)('the oracle under fp16 compute (CPU)', () => {
  it(
    'emulated fp16: text encoder and UNet pass the fp16 rule, fail the fp32 one; the VAE stays fp32',
    { timeout: 900_000 },
    async () => {
      const results = await runReference(path.join(ORACLE, 'manifest.json'), {
        out: path.join(tmp, 'emulate'),
        cases: ['text_encoder', 'unet', 'vae_decode'],
        cacheRoot: path.join(tmp, 'cache'),
        session: { preference: 'cpu', precision: 'fp16', cpuFp16: 'emulate' },
      })
      for (const r of results) expect(r.status, `${r.name}: ${r.message ?? ''}`).toBe('pass')
      const byName = Object.fromEntries(results.map((r) => [r.name, r]))
      for (const name of ['text_encoder', 'unet']) {
        for (const k of byName[name]?.checks ?? []) {
          expect(k.rule, `${name}/${k.name}`).toBe('fp16')
          // fp16 really ran: the difference is beyond what the fp32 tolerance allows (atol <= 2e-4).
          expect(k.comparison?.maxAbs, `${name}/${k.name}`).toBeGreaterThan(2e-4)
        }
      }
      // The VAE decoder computes in fp32 under the fp16 setting: fp32 rule, fp32-sized differences.
      for (const k of byName.vae_decode?.checks ?? []) {
        expect(k.rule).toBeUndefined()
        expect(k.comparison?.maxAbs).toBeLessThan(1e-4)
      }
    },
  )

  it(
    'native fp16 graphs (onnxruntime CPU fp16 tensors) pass the same rule, through the CLI',
    { timeout: 900_000 },
    async () => {
      const out = path.join(tmp, 'native')
      const lines: string[] = []
      const write = process.stdout.write.bind(process.stdout)
      process.stdout.write = ((s: string | Uint8Array) => {
        lines.push(String(s))
        return true
      }) as typeof process.stdout.write
      const home = process.env.ATELIER_HOME
      process.env.ATELIER_HOME = path.join(tmp, 'home')
      let code: number
      try {
        code = await runCli([
          'reference',
          path.join(ORACLE, 'manifest.json'),
          '--out',
          out,
          '--cache',
          path.join(tmp, 'cache'),
          '--case',
          'text_encoder',
          '--case',
          'unet',
          '--precision',
          'fp16',
          '--cpu-fp16',
          'native',
          '--quiet',
        ])
      } finally {
        process.stdout.write = write
        if (home === undefined) delete process.env.ATELIER_HOME
        else process.env.ATELIER_HOME = home
      }
      const table = lines.join('')
      expect(code, table).toBe(0)
      expect(table).toMatch(/unet\s+eps\s+\S+\s+0\/1536\s+fp16 rule: atol/)
      expect(table).toMatch(/2 pass, 0 fail/)
    },
  )
})
