/**
 * fp16-vs-fp32 differences on the oracle sets, the measurements the fp16 tolerance rule
 * (main/engine/reference/tolerance.ts, `fp16Tolerance`) is derived from. Each manifest's cases run three
 * times on the CPU provider: fp32 (as always), the fp16 graph emulated (fp32 kernels, every value the fp16
 * graph stores rounded to fp16), and the fp16 graph natively (fp16 tensors; onnxruntime's CPU fp16 kernels
 * where it has them, else its own fp32 upcast). Prints JSON: per expected float tensor, max|expected|,
 * the max |diff| of each run against the golden, emulated vs native, the case's measured fp32-vs-fp64
 * difference (d64) and the ratio of the fp16 difference to 2^13 * d64 (fp16's unit roundoff over fp32's).
 * Mode `webgpu` runs the fp16 graphs on the WebGPU adapter of this process's Vulkan environment (real fp16
 * shaders; e.g. Mesa's lavapipe, which has shader-f16), `webgpu32` the fp32 graphs there.
 *
 *   npx tsx bench/fp16.ts ../shared/oracle/manifest.json [--case unet ...] [--modes fp32,emulate,native]
 *   VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json npx tsx bench/fp16.ts <manifest> --modes fp32,webgpu
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { SafetensorsFile } from '../main/model-formats/safetensors'
import { loadManifest } from '../main/engine/reference/manifest'
import { runReference } from '../main/engine/reference/run'
import { caseFp64Diff, maxAbsDiff } from '../main/engine/reference/tolerance'
import type { SessionConfig } from '../main/engine/runtime/session'

type Mode = 'fp32' | 'emulate' | 'native' | 'webgpu' | 'webgpu32'

function args(): { manifest: string; cases: string[]; modes: Mode[] } {
  const a = process.argv.slice(2)
  const manifest = a.find((x, i) => !x.startsWith('--') && !(a[i - 1] ?? '').startsWith('--'))
  if (!manifest)
    throw new Error('usage: bench/fp16.ts <manifest.json> [--case name ...] [--modes fp32,emulate,native]')
  const cases: string[] = []
  let modes: Mode[] = ['fp32', 'emulate', 'native']
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--case') cases.push(a[++i] as string)
    if (a[i] === '--modes') modes = (a[++i] as string).split(',') as Mode[]
  }
  return { manifest, cases, modes }
}

function session(mode: Mode): SessionConfig {
  if (mode === 'fp32') return { preference: 'cpu' }
  if (mode === 'webgpu') return { preference: 'webgpu', precision: 'fp16' }
  if (mode === 'webgpu32') return { preference: 'webgpu', precision: 'fp32' }
  return { preference: 'cpu', precision: 'fp16', cpuFp16: mode }
}

async function readAll(file: string): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>()
  if (!fs.existsSync(file)) return out
  const st = await SafetensorsFile.open(file)
  try {
    for (const n of st.keys()) {
      const dt = st.info(n).dtype
      if (dt === 'F32' || dt === 'F16') out.set(n, await st.readFloat32(n))
    }
  } finally {
    await st.close()
  }
  return out
}

/** Largest |a - b| (Infinity for NaN); null where a run did not produce the tensor or its size differs. */
function diffOrNull(a: Float32Array | undefined, b: Float32Array | undefined): number | null {
  if (!a || !b || a.length !== b.length) return null
  const m = maxAbsDiff(a, b)
  return Number.isNaN(m) ? Infinity : m
}

async function main(): Promise<void> {
  const { manifest, cases, modes } = args()
  const m = loadManifest(manifest)
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-fp16-'))
  const cacheRoot = path.join(os.tmpdir(), 'atelier-fp16-cache')
  const seconds: Record<string, number> = {}
  const status: Record<string, Record<string, string>> = {}
  for (const mode of modes) {
    const t0 = performance.now()
    const r = await runReference(m.path, {
      out: path.join(root, mode),
      cacheRoot,
      cases,
      session: session(mode),
    })
    seconds[mode] = Math.round((performance.now() - t0) / 100) / 10
    for (const c of r) (status[c.name] ??= {})[mode] = c.status + (c.message ? ` (${c.message})` : '')
  }
  const rows: Record<string, unknown>[] = []
  for (const c of m.cases) {
    if (cases.length && !cases.includes(c.name)) continue
    const goldenFile = path.join(m.dir, c.file)
    if (!fs.existsSync(goldenFile)) continue
    const golden = await readAll(goldenFile)
    const runs = Object.fromEntries(
      await Promise.all(
        modes.map(
          async (mode) => [mode, await readAll(path.join(root, mode, `${c.name}.safetensors`))] as const,
        ),
      ),
    ) as Record<Mode, Map<string, Float32Array>>
    const d64 = caseFp64Diff(c)
    for (const name of c.expected) {
      const ref = golden.get(name)
      if (!ref) continue
      const scale = ref.reduce((s, v) => Math.max(s, Math.abs(v)), 0)
      const row: Record<string, unknown> = { case: c.name, tensor: name, maxAbsExpected: scale, d64 }
      for (const mode of modes) row[mode] = diffOrNull(runs[mode]?.get(name), ref)
      if (modes.includes('emulate') && modes.includes('native'))
        row.emulateVsNative = diffOrNull(runs.emulate?.get(name), runs.native?.get(name))
      const worst = Math.max(...(['emulate', 'native', 'webgpu'] as const).map((k) => Number(row[k] ?? 0)))
      if (d64) row.ratioTo2p13d64 = worst / (2 ** 13 * d64)
      rows.push(row)
    }
  }
  const out = {
    manifest: m.path,
    modes,
    seconds,
    loadavg: os.loadavg().map((x) => Math.round(x * 10) / 10),
    status,
    rows,
  }
  process.stdout.write(`${JSON.stringify(out, null, 1)}\n`)
  fs.rmSync(root, { recursive: true, force: true })
}

void main()
