import fs from 'node:fs'
import path from 'node:path'
import { SafetensorsFile, writeSafetensors } from '../../model-formats/safetensors'
import type { TensorToWrite } from '../../model-formats/safetensors'
import { loadManifest, type ReferenceManifest } from './manifest'

/**
 * Copies a reference set into `copy` keeping only what `atelier reference` may read: the manifest, each
 * case's `given` tensors, and (as symlinks) every other file of the set such as model files.
 */
export async function strippedCopy(set: string, copy: string): Promise<ReferenceManifest> {
  fs.mkdirSync(copy)
  const m = loadManifest(path.join(set, 'manifest.json'))
  fs.copyFileSync(m.path, path.join(copy, 'manifest.json'))
  const caseFiles = new Set(m.cases.map((c) => c.file))
  for (const name of fs.readdirSync(set))
    if (!caseFiles.has(name) && name !== 'manifest.json')
      fs.symlinkSync(path.join(set, name), path.join(copy, name))
  for (const c of m.cases) {
    const st = await SafetensorsFile.open(path.join(set, c.file))
    const keep: Record<string, TensorToWrite> = {}
    for (const g of c.given) {
      const info = st.info(g)
      keep[g] = { dtype: info.dtype, shape: info.shape, data: await st.readRaw(g) }
    }
    await st.close()
    await writeSafetensors(path.join(copy, c.file), keep)
  }
  return m
}
