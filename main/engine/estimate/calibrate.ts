import fs from 'node:fs'
import os from 'node:os'
import * as ort from 'onnxruntime-node'
import { writeFileAtomicSync } from '../../platform/atomic-write'
import type { ModelSet } from '../runtime/model-set'
import type { Calibration, Family } from './estimate'
import { REF_LATENT } from './estimate'

/**
 * Calibration: a short run of the model's own graphs on this machine and provider — every session created
 * (timed), one text encoding, two UNet evaluations at REF_LATENT (the second is kept: the first pays
 * one-time kernel set-up) and one VAE decode — cached per machine, provider and family in the data folder.
 */
export async function calibrate(set: ModelSet, family: Family): Promise<Calibration> {
  const t0 = performance.now()
  await set.load()
  const loadSeconds = (performance.now() - t0) / 1000
  const ids = BigInt64Array.from({ length: 77 }, (_, i) => (i === 0 ? 49406n : 49407n))
  let t = performance.now()
  let context: ort.Tensor
  let added: { textEmbeds: ort.Tensor; timeIds: ort.Tensor } | undefined
  if (family === 'sdxl') {
    const x = await set.encodeTextXL(ids, ids, 1)
    const h = x.hidden.data as Float32Array
    const h2 = x.hidden2.data as Float32Array
    const w1 = x.hidden.dims[2] as number
    const w2 = x.hidden2.dims[2] as number
    const cat = new Float32Array(77 * (w1 + w2))
    for (let i = 0; i < 77; i++) {
      cat.set(h.subarray(i * w1, (i + 1) * w1), i * (w1 + w2))
      cat.set(h2.subarray(i * w2, (i + 1) * w2), i * (w1 + w2) + w1)
    }
    context = new ort.Tensor('float32', cat, [1, 77, w1 + w2])
    const r = REF_LATENT * 8
    added = {
      textEmbeds: x.pooled,
      timeIds: new ort.Tensor('float32', Float32Array.from([r, r, 0, 0, r, r]), [1, 6]),
    }
  } else {
    context = await set.encodeText(ids, 1)
  }
  const textSeconds = (performance.now() - t) / 1000
  const sample = new ort.Tensor(
    'float32',
    Float32Array.from({ length: 4 * REF_LATENT * REF_LATENT }, (_, i) => Math.sin(i)),
    [1, 4, REF_LATENT, REF_LATENT],
  )
  let unetSeconds = 0
  for (let i = 0; i < 2; i++) {
    t = performance.now()
    await set.unet(sample, 500, context, added)
    unetSeconds = (performance.now() - t) / 1000
  }
  t = performance.now()
  await set.decode(sample)
  const decodeSeconds = (performance.now() - t) / 1000
  return { unetSeconds, decodeSeconds, textSeconds, loadSeconds, memoryFactor: 1, measured: true }
}

/** This machine + provider, as the calibration cache keys it. */
export function machineKey(provider: string): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown cpu'
  const gib = Math.round(os.totalmem() / 2 ** 30)
  return `${cpu} x${os.cpus().length}, ${gib} GiB | ${provider} | onnxruntime ${ort.env.versions.common}`
}

interface StoreFile {
  version: 1
  entries: Record<string, Calibration & { at: string }>
}

/** `<data folder>/calibration.json`: one calibration per machine, provider and family. */
export class CalibrationStore {
  constructor(readonly file: string) {}

  private read(): StoreFile {
    try {
      const v = JSON.parse(fs.readFileSync(this.file, 'utf8')) as StoreFile
      if (v.version === 1 && typeof v.entries === 'object' && v.entries) return v
    } catch {
      // absent or damaged: start over
    }
    return { version: 1, entries: {} }
  }

  get(provider: string, family: Family): Calibration | undefined {
    const e = this.read().entries[`${machineKey(provider)} | ${family}`]
    if (!e || !(e.unetSeconds > 0) || !(e.decodeSeconds > 0)) return undefined
    const { at: _at, ...cal } = e
    return cal
  }

  put(provider: string, family: Family, cal: Calibration): void {
    const f = this.read()
    f.entries[`${machineKey(provider)} | ${family}`] = { ...cal, at: new Date().toISOString() }
    writeFileAtomicSync(this.file, JSON.stringify(f, null, 2), { mkdir: true })
  }
}
