import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { ModelSet } from '../runtime/model-set'
import { repoRoot } from '../../platform/paths'
import { writeSafetensors } from '../../model-formats/safetensors'
import { CONVERTER_VERSION, cachedSha256, listCacheEntries, pruneCache, removeCacheEntriesFor } from './cache'
import { convertCheckpoint } from './convert'
import type { ConvertProgress } from './convert'
import { SourceError, openCheckpointSource } from './source'

// The converter records real paths (symlinks resolved), so compare against the real path too.
const ORACLE_DIR = path.resolve(repoRoot(), '../shared/oracle')
const ORACLE = fs.existsSync(ORACLE_DIR) ? fs.realpathSync(ORACLE_DIR) : ORACLE_DIR
// The oracle's single file and the diffusers folder that diffusers' save_pretrained wrote from it: the two
// layout tests compare against that folder; everything else runs on the seeded tiny model.
const ORACLE_CKPT = path.join(ORACLE, 'tiny-sd15.safetensors')
const present = fs.existsSync(path.join(ORACLE, 'tiny-sd15-diffusers'))
if (!present)
  console.warn(`skipping the diffusers-folder conversion tests: ${ORACLE}/tiny-sd15-diffusers is absent`)
const CKPT = fs.realpathSync((await ensureTinyModels()).sd15)

let tmp: string
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-convert-'))
})
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

const IDS = BigInt64Array.from([49406n, 320n, 1125n, 539n, 320n, 2368n, 49407n, 49407n])

async function textOutput(paths: Record<string, string>): Promise<Float32Array> {
  const set = new ModelSet('t', paths, { preference: 'cpu' })
  try {
    return (await set.encodeText(IDS, 1)).data as Float32Array
  } finally {
    await set.release()
  }
}

describe('source reading', () => {
  it('refuses non-checkpoints with a readable reason', async () => {
    const f = path.join(tmp, 'lora-like.safetensors')
    await writeSafetensors(f, {
      'lora_unet_x.lora_down.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) },
    })
    await expect(openCheckpointSource(f)).rejects.toThrow(/no UNet .*not a Stable Diffusion checkpoint/)
    const x = path.join(tmp, 'sdxl.safetensors')
    await writeSafetensors(x, {
      'conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight': {
        dtype: 'F32',
        shape: [1],
        data: new Float32Array(1),
      },
      'model.diffusion_model.input_blocks.0.0.weight': {
        dtype: 'F32',
        shape: [1],
        data: new Float32Array(1),
      },
    })
    await expect(openCheckpointSource(x)).rejects.toThrow(SourceError)
    await expect(openCheckpointSource(x)).rejects.toThrow(/SDXL/)
    await expect(openCheckpointSource(path.join(tmp, 'missing.safetensors'))).rejects.toThrow(/no such file/)
  })

  it.skipIf(!present)('maps every tensor of the LDM file and of the diffusers folder', async () => {
    const ldm = await openCheckpointSource(ORACLE_CKPT)
    expect(ldm.ignored).toBe(0)
    const dif = await openCheckpointSource(path.join(ORACLE, 'tiny-sd15-diffusers'))
    for (const c of ['text_encoder', 'unet', 'vae'] as const) {
      expect([...(dif.components[c]?.keys() ?? [])].sort()).toEqual(
        [...(ldm.components[c]?.keys() ?? [])].sort(),
      )
    }
  })
})

describe('conversion cache', () => {
  it('converts once; the second call is a cache hit that rewrites nothing', async () => {
    const cacheRoot = path.join(tmp, 'cache-hit')
    const first = await convertCheckpoint(CKPT, { cacheRoot })
    expect(first.cached).toBe(false)
    expect(path.basename(first.dir)).toMatch(new RegExp(`^v${CONVERTER_VERSION}-[0-9a-f]{24}-fp16$`))
    const graphFiles = Object.values(first.manifest.graphs).map((g) => path.join(first.dir, g?.model ?? ''))
    expect(graphFiles).toHaveLength(4)
    const mtimes = graphFiles.map((p) => fs.statSync(p).mtimeMs)
    const phases: string[] = []
    const second = await convertCheckpoint(CKPT, { cacheRoot, onProgress: (p) => phases.push(p.phase) })
    expect(second.cached).toBe(true)
    expect(second.dir).toBe(first.dir)
    expect(phases.every((p) => p === 'hash')).toBe(true)
    expect(graphFiles.map((p) => fs.statSync(p).mtimeMs)).toEqual(mtimes)
    // Weights are not copied: each graph folder hard-links the checkpoint.
    for (const g of Object.values(first.manifest.graphs)) expect(g?.copiedBytes).toBe(0)
    expect(fs.statSync(path.join(first.dir, 'unet', 'checkpoint.safetensors')).ino).toBe(
      fs.statSync(CKPT).ino,
    )
    // No temp folders left behind.
    expect(fs.readdirSync(cacheRoot).filter((n) => n.startsWith('.tmp-'))).toEqual([])
  })

  it('remembers hashes by path, size and mtime', async () => {
    const cacheRoot = path.join(tmp, 'hashes')
    const sha = await cachedSha256(cacheRoot, CKPT)
    const index = JSON.parse(fs.readFileSync(path.join(cacheRoot, 'hashes.json'), 'utf8')) as Record<
      string,
      { sha256: string }
    >
    expect(index[CKPT]?.sha256).toBe(sha)
    let calls = 0
    expect(await cachedSha256(cacheRoot, CKPT, { onProgress: () => calls++ })).toBe(sha)
    expect(calls).toBe(1)
  })

  it('cancels cleanly: AbortError, no entry, no temp folder', async () => {
    const cacheRoot = path.join(tmp, 'cancel')
    const ac = new AbortController()
    const seen: ConvertProgress[] = []
    const run = convertCheckpoint(CKPT, {
      cacheRoot,
      signal: ac.signal,
      onProgress: (p) => {
        seen.push(p)
        if (p.phase === 'convert' && p.graph === 'unet') ac.abort()
      },
    })
    await expect(run).rejects.toMatchObject({ name: 'AbortError' })
    expect(seen.some((p) => p.phase === 'convert')).toBe(true)
    expect(fs.readdirSync(cacheRoot).filter((n) => n !== 'hashes.json')).toEqual([])
    // A later conversion still works.
    expect((await convertCheckpoint(CKPT, { cacheRoot })).cached).toBe(false)
  })

  it('copies weights into a side file when hard links are impossible, with identical results', async () => {
    const cacheRoot = path.join(tmp, 'copy')
    const linked = await convertCheckpoint(CKPT, { cacheRoot, precision: 'fp32' })
    const copiedRoot = path.join(tmp, 'copy2')
    const copied = await convertCheckpoint(CKPT, { cacheRoot: copiedRoot, precision: 'fp32', noLinks: true })
    expect(copied.manifest.graphs.text_encoder?.linked).toBe(false)
    expect(copied.manifest.graphs.text_encoder?.copiedBytes).toBeGreaterThan(0)
    expect(fs.existsSync(path.join(copied.dir, 'text_encoder', 'checkpoint.safetensors'))).toBe(false)
    expect(await textOutput(copied.paths)).toEqual(await textOutput(linked.paths))
  })

  it.skipIf(!present)(
    'gives the same text encoder from the diffusers folder as from the single file',
    async () => {
      const cacheRoot = path.join(tmp, 'diffusers')
      const a = await convertCheckpoint(ORACLE_CKPT, { cacheRoot })
      const b = await convertCheckpoint(path.join(ORACLE, 'tiny-sd15-diffusers'), { cacheRoot })
      expect(b.dir).not.toBe(a.dir)
      expect(b.manifest.source.kind).toBe('diffusers')
      expect(b.manifest.tokenizerDir).toBe(path.join(ORACLE, 'tiny-sd15-diffusers', 'tokenizer'))
      expect(await textOutput(b.paths)).toEqual(await textOutput(a.paths))
    },
  )

  it('opens a ready ONNX pipeline folder without converting', async () => {
    const cacheRoot = path.join(tmp, 'onnx')
    const a = await convertCheckpoint(CKPT, { cacheRoot })
    const again = await convertCheckpoint(a.dir, { cacheRoot })
    expect(again.cached).toBe(true)
    expect(again.manifest.source.kind).toBe('onnx')
    expect(again.paths.unet).toBe(a.paths.unet)
    expect(ModelSet.fromFolder(a.dir).has('vae_decoder')).toBe(true)
  })

  it('lists entries and removes those of a deleted source', async () => {
    const cacheRoot = path.join(tmp, 'remove')
    const a = await convertCheckpoint(CKPT, { cacheRoot })
    const b = await convertCheckpoint(CKPT, { cacheRoot, precision: 'fp32' })
    expect(
      listCacheEntries(cacheRoot)
        .map((e) => e.dir)
        .sort(),
    ).toEqual([a.dir, b.dir].sort())
    expect(listCacheEntries(cacheRoot)[0]?.sourcePath).toBe(CKPT)
    expect(removeCacheEntriesFor(cacheRoot, { path: CKPT }).sort()).toEqual([a.dir, b.dir].sort())
    expect(fs.existsSync(a.dir)).toBe(false)
    const c = await convertCheckpoint(CKPT, { cacheRoot })
    expect(removeCacheEntriesFor(cacheRoot, { sha256: c.manifest.sourceKey })).toEqual([c.dir])
  })

  it('prunes entries of other converter versions', () => {
    const cacheRoot = path.join(tmp, 'prune')
    fs.mkdirSync(path.join(cacheRoot, `v${CONVERTER_VERSION + 1}-abc-fp16`), { recursive: true })
    fs.mkdirSync(path.join(cacheRoot, `v${CONVERTER_VERSION}-abc-fp16`), { recursive: true })
    expect(pruneCache(cacheRoot).map((p) => path.basename(p))).toEqual([`v${CONVERTER_VERSION + 1}-abc-fp16`])
  })
})
