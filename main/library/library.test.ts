import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ensureTinyModels } from '../../bench/fixtures/tiny-models'
import { autoV3 } from '../model-formats/hash'
import type { HashFileFn } from './hashing'
import { hashFile } from './hashing'
import { Library } from './library'
import { identifyModel as probeModel } from '../model-formats/probe/identify'
import { readAtelierSidecar } from './sidecars'
import { tempDir, tinyCheckpoint, tinyEmbedding, tinyLora, tinyVae } from './test-support'
import type { CivitaiVersionJson, LibraryChange, ProbeFn } from './types'

function sha(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
}

function civitaiJson(
  over: Partial<CivitaiVersionJson> & { sha256: string; fileName: string },
): CivitaiVersionJson {
  const { sha256, fileName, ...rest } = over
  return {
    id: 1050496,
    modelId: 706978,
    name: 'V.3',
    baseModel: 'SD 1.5',
    trainedWords: ['aesthetic_pos3', 'dynamic_pos3'],
    description: '<p>New Triggers</p>',
    model: { name: 'Aesthetic Poses', type: 'LORA', nsfw: false },
    files: [
      {
        id: 956231,
        name: fileName,
        type: 'Model',
        primary: true,
        hashes: { AutoV2: sha256.slice(0, 10).toUpperCase(), SHA256: sha256.toUpperCase() },
      },
    ],
    ...rest,
  }
}

let home: string
let libDir: string
let hashCalls: string[]
let probeCalls: string[]
const countingHash: HashFileFn = async (file, opts) => {
  hashCalls.push(file)
  return hashFile(file, opts)
}
const countingProbe: ProbeFn = async (file) => {
  probeCalls.push(file)
  return probeModel(file)
}

async function open(): Promise<Library> {
  return Library.open(home, { hashFile: countingHash, probe: countingProbe })
}

beforeEach(async () => {
  home = await tempDir()
  libDir = path.join(home, 'models')
  hashCalls = []
  probeCalls = []
})

afterEach(async () => {
  await fs.promises.rm(home, { recursive: true, force: true })
})

async function standardLibrary(): Promise<Record<string, string>> {
  return {
    ckpt: await tinyCheckpoint(path.join(libDir, 'checkpoints', 'dream.safetensors'), 'sd-1', { seed: 1 }),
    xl: await tinyCheckpoint(path.join(libDir, 'checkpoints', 'xl', 'juggernaut.safetensors'), 'sdxl', {
      seed: 2,
    }),
    lora: await tinyLora(path.join(libDir, 'loras', 'detail.safetensors'), 'sd-1', { seed: 3 }),
    xlLora: await tinyLora(path.join(libDir, 'loras', 'ponystyle.safetensors'), 'sdxl', { seed: 4 }),
    emb: await tinyEmbedding(path.join(libDir, 'embeddings', 'badhands.safetensors'), 'sd-1', 5),
    vae: await tinyVae(path.join(libDir, 'vaes', 'kl-f8.safetensors'), 6),
  }
}

describe('Library scan', () => {
  it('builds records with type, family, hashes and sidecars', async () => {
    const f = await standardLibrary()
    const lib = await open()
    const summary = await lib.scan()
    expect(summary).toMatchObject({ models: 6, added: 6, removed: 0, hashed: 6, reused: 0, problems: 0 })
    const byName = new Map(lib.list().map((r) => [r.name, r]))
    expect(byName.get('dream')).toMatchObject({
      type: 'checkpoint',
      family: 'sd-1',
      variant: 'normal',
      source: 'local',
    })
    expect(byName.get('juggernaut')).toMatchObject({ type: 'checkpoint', family: 'sdxl' })
    expect(byName.get('detail')).toMatchObject({ type: 'lora', family: 'sd-1', verified: 'unverified' })
    expect(byName.get('ponystyle')).toMatchObject({ type: 'lora', family: 'sdxl' })
    expect(byName.get('badhands')).toMatchObject({ type: 'embedding', family: 'sd-1' })
    expect(byName.get('kl-f8')).toMatchObject({ type: 'vae', family: null })

    const lora = byName.get('detail')!
    expect(lora.sha256).toBe(sha(f.lora!))
    expect(lora.id).toBe(lora.sha256!.slice(0, 16))
    expect(lora.autoV2).toBe(lora.sha256!.slice(0, 10).toUpperCase())
    expect(lora.autoV3).toBe(await autoV3(f.lora!))
    expect(byName.get('dream')!.autoV3).toBeNull()
    expect(lora.path).toBe(f.lora)
    expect(lora.size).toBe(fs.statSync(f.lora!).size)

    const sc = await readAtelierSidecar(f.lora!.replace(/\.safetensors$/, ''))
    expect(sc).toMatchObject({ id: lora.id, sha256: lora.sha256, type: 'lora', probeFamily: 'sd-1' })
    expect(fs.existsSync(path.join(home, 'library.json'))).toBe(true)

    expect(lib.list({ type: 'lora' }).map((r) => r.name)).toEqual(['detail', 'ponystyle'])
    expect(lib.list({ family: 'sdxl' }).map((r) => r.name)).toEqual(['juggernaut', 'ponystyle'])
    expect(lib.list({ text: 'DREA' }).map((r) => r.name)).toEqual(['dream'])
    expect(lib.list({ source: 'civitai' })).toEqual([])
  })

  it('rescans an unchanged library without hashing or probing', async () => {
    await standardLibrary()
    const lib = await open()
    await lib.scan()
    hashCalls = []
    probeCalls = []
    const again = await lib.scan()
    expect(again).toMatchObject({ models: 6, added: 0, removed: 0, hashed: 0, reused: 6 })
    expect(hashCalls).toEqual([])
    expect(probeCalls).toEqual([])

    // A fresh process reads the index: still nothing hashed.
    const lib2 = await open()
    expect(lib2.list()).toHaveLength(6)
    expect((await lib2.scan()).hashed).toBe(0)
    expect(hashCalls).toEqual([])
  })

  it('re-hashes only a file that changed, and drops a removed one', async () => {
    const f = await standardLibrary()
    const lib = await open()
    await lib.scan()
    const before = lib.get('detail')!
    hashCalls = []
    await tinyLora(f.lora!, 'sd-1', { seed: 99 })
    await fs.promises.utimes(f.lora!, new Date(), new Date(Date.now() + 5000))
    await fs.promises.rm(f.vae!)
    const s = await lib.scan()
    expect(s).toMatchObject({ models: 5, hashed: 1, removed: 1, reused: 4 })
    expect(hashCalls).toEqual([f.lora])
    const after = lib.get('detail')!
    expect(after.sha256).toBe(sha(f.lora!))
    expect(after.sha256).not.toBe(before.sha256)
    expect(after.id).toBe(before.id) // the id survives a content change at the same path
  })

  it('rebuilds a deleted index from the sidecars without hashing', async () => {
    await standardLibrary()
    const lib = await open()
    await lib.scan()
    const records = lib.list()
    await lib.dispose()
    await fs.promises.rm(path.join(home, 'library.json'))
    hashCalls = []
    probeCalls = []
    const lib2 = await open()
    expect(lib2.list()).toEqual([])
    const s = await lib2.scan()
    expect(s).toMatchObject({ models: 6, hashed: 0 })
    expect(hashCalls).toEqual([])
    expect(probeCalls).toEqual([])
    const strip = (r: (typeof records)[number]): object => ({ ...r, addedAt: undefined })
    expect(lib2.list().map(strip)).toEqual(records.map(strip))
    expect(lib2.list().map((r) => r.addedAt)).toEqual(records.map((r) => r.addedAt))
  })

  it('stops on abort and keeps what was hashed', async () => {
    await standardLibrary()
    const lib = await open()
    const ctl = new AbortController()
    let hashedCount = 0
    const p = lib.scan({
      signal: ctl.signal,
      onProgress: (e) => {
        if (e.phase === 'hash' && e.done === 2 && hashedCount === 0) {
          hashedCount = e.done
          ctl.abort()
        }
      },
    })
    await expect(p).rejects.toThrow()
    expect(lib.list()).toHaveLength(2)
    hashCalls = []
    const s = await lib.scan()
    expect(s.models).toBe(6)
    expect(hashCalls).toHaveLength(4)
  })

  it('reports scan progress through each phase', async () => {
    await standardLibrary()
    const lib = await open()
    const phases = new Set<string>()
    let lastBytes = 0
    await lib.scan({
      onProgress: (p) => {
        phases.add(p.phase)
        if (p.phase === 'hash') lastBytes = Math.max(lastBytes, p.bytesDone)
      },
    })
    expect([...phases]).toEqual(['discover', 'probe', 'hash', 'done'])
    expect(lastBytes).toBeGreaterThan(0)
  })

  it('lists damaged files with the problem instead of dropping them', async () => {
    const f = await standardLibrary()
    const buf = fs.readFileSync(f.lora!)
    fs.writeFileSync(f.lora!, buf.subarray(0, buf.length - 100))
    const lib = await open()
    const s = await lib.scan()
    expect(s.problems).toBe(1)
    const r = lib.get('detail')!
    expect(r.type).toBe('lora') // from the folder
    expect(r.problem).toMatch(/incomplete|truncated|ended/)
  })
})

describe('Library with an A1111 install in place', () => {
  it('reads .civitai.info, .json and preview, and never moves the files', async () => {
    const webui = path.join(home, 'webui')
    const ckpt = await tinyCheckpoint(
      path.join(webui, 'models', 'Stable-diffusion', 'anything.safetensors'),
      'sd-1',
    )
    const lora = await tinyLora(path.join(webui, 'models', 'Lora', 'styles', 'ponyxl.safetensors'), 'sdxl', {
      seed: 7,
    })
    const lyco = await tinyLora(path.join(webui, 'models', 'LyCORIS', 'locon.safetensors'), 'sd-1', {
      seed: 8,
    })
    const emb = await tinyEmbedding(path.join(webui, 'embeddings', 'easyneg.safetensors'))
    const stem = lora.replace(/\.safetensors$/, '')
    fs.writeFileSync(
      `${stem}.civitai.info`,
      JSON.stringify(
        civitaiJson({
          sha256: sha(lora),
          fileName: 'ponyxl.safetensors',
          baseModel: 'Pony',
          trainedWords: ['pnystyle'],
        }),
      ),
    )
    fs.writeFileSync(
      `${stem}.json`,
      JSON.stringify({
        description: 'my pony style',
        'sd version': 'SDXL',
        'activation text': 'pnystyle, score_9',
        'preferred weight': 0.7,
        notes: 'works at 0.7',
      }),
    )
    fs.writeFileSync(`${stem}.preview.png`, Buffer.from([0x89, 0x50, 0x4e, 0x47]))
    const lycoStem = lyco.replace(/\.safetensors$/, '')
    fs.writeFileSync(
      `${lycoStem}.json`,
      JSON.stringify({ 'activation text': 'foo, bar baz', 'preferred weight': 0 }),
    )
    fs.writeFileSync(`${lycoStem}.png`, 'png')
    fs.writeFileSync(`${lycoStem}.preview.png`, 'png')

    const lib = await open()
    const root = await lib.addRoot(webui)
    expect(root.layout).toBe('a1111')
    const s = await lib.scan()
    expect(s.models).toBe(4)

    const r = lib.get('ponyxl')!
    expect(r).toMatchObject({
      type: 'lora',
      family: 'sdxl',
      subBase: 'pony',
      baseModel: 'Pony',
      source: 'civitai',
      civitai: {
        modelId: 706978,
        versionId: 1050496,
        modelName: 'Aesthetic Poses',
        versionName: 'V.3',
        modelType: 'LORA',
      },
      trainedWords: ['pnystyle'],
      description: 'my pony style',
      preferredWeight: 0.7,
      notes: 'works at 0.7',
      verified: 'verified',
      expectedSha256: sha(lora),
      path: lora,
      root: webui,
      preview: `${stem}.preview.png`,
    })
    const l2 = lib.get('locon')!
    expect(l2.trainedWords).toEqual(['foo', 'bar baz'])
    expect(l2.preferredWeight).toBeNull()
    expect(l2.preview).toBe(`${lycoStem}.png`) // A1111 order: <name>.png before <name>.preview.png
    expect(lib.get('anything')).toMatchObject({ type: 'checkpoint', path: ckpt })
    expect(lib.get('easyneg')).toMatchObject({ type: 'embedding', path: emb })
    expect(fs.existsSync(ckpt) && fs.existsSync(lora) && fs.existsSync(emb)).toBe(true)
    expect(fs.readdirSync(path.join(libDir, 'loras'))).toEqual([])

    // Editing a foreign sidecar is noticed by the next rescan (no hashing).
    hashCalls = []
    fs.writeFileSync(`${lycoStem}.json`, JSON.stringify({ 'activation text': 'changed' }))
    await fs.promises.utimes(`${lycoStem}.json`, new Date(), new Date(Date.now() + 3000))
    await lib.scan()
    expect(lib.get('locon')!.trainedWords).toEqual(['changed'])
    expect(hashCalls).toEqual([])

    // The roots survive the index being deleted.
    await fs.promises.rm(path.join(home, 'library.json'))
    const lib2 = await open()
    expect(lib2.getRoots().map((x) => x.path)).toEqual([libDir, webui])
    await lib2.scan()
    expect(lib2.get('ponyxl')!.subBase).toBe('pony')
  })

  it('reads a Stability Matrix .cm-info.json', async () => {
    const lora = await tinyLora(path.join(libDir, 'loras', 'sm.safetensors'), 'sd-1', { seed: 11 })
    fs.writeFileSync(
      lora.replace(/\.safetensors$/, '.cm-info.json'),
      JSON.stringify({
        ModelId: 5,
        ModelName: 'SM Model',
        ModelDescription: 'desc',
        Nsfw: true,
        ModelType: 'LORA',
        VersionId: 6,
        VersionName: 'v1',
        BaseModel: 'SD 1.4',
        TrainedWords: ['smword'],
        Hashes: { SHA256: sha(lora).toUpperCase(), BLAKE3: 'X' },
      }),
    )
    const lib = await open()
    await lib.scan()
    expect(lib.get('sm')).toMatchObject({
      source: 'civitai',
      civitai: { modelId: 5, versionId: 6 },
      subBase: 'sd-1.4',
      trainedWords: ['smword'],
      nsfw: true,
      verified: 'verified',
    })
  })

  it('detects ComfyUI and plain folders', async () => {
    const comfy = path.join(home, 'ComfyUI')
    await tinyLora(path.join(comfy, 'models', 'loras', 'c.safetensors'), 'sd-1', { seed: 12 })
    const plain = path.join(home, 'downloads-old')
    await tinyLora(path.join(plain, 'deep', 'p.safetensors'), 'sd-2', { seed: 13 })
    fs.writeFileSync(path.join(plain, 'notes.bin'), 'not a model at all')
    const lib = await open()
    expect((await lib.addRoot(comfy)).layout).toBe('comfyui')
    expect((await lib.addRoot(plain)).layout).toBe('folder')
    await lib.scan()
    expect(lib.list().map((r) => `${r.name}:${r.type}:${r.family}`)).toEqual(['c:lora:sd-1', 'p:lora:sd-2'])
    expect(await lib.removeRoot(plain)).toBe(true)
    expect(lib.list().map((r) => r.name)).toEqual(['c'])
  })
})

describe('Library operations', () => {
  it('renames the model and all its sidecars, sanitising the name', async () => {
    const lora = await tinyLora(path.join(libDir, 'loras', 'old.safetensors'), 'sd-1', { seed: 21 })
    const stem = lora.replace(/\.safetensors$/, '')
    fs.writeFileSync(
      `${stem}.civitai.info`,
      JSON.stringify(civitaiJson({ sha256: sha(lora), fileName: 'old.safetensors' })),
    )
    fs.writeFileSync(`${stem}.json`, '{"activation text": "x"}')
    fs.writeFileSync(`${stem}.preview.webp`, 'img')
    await tinyLora(path.join(libDir, 'loras', 'other.safetensors'), 'sd-1', { seed: 22 })
    const lib = await open()
    await lib.scan()
    const id = lib.get('old')!.id
    const events: LibraryChange[] = []
    const off = lib.on('changed', (e) => events.push(e))

    const r = await lib.rename(id, 'new: name/v2?.safetensors')
    expect(r.name).toBe('new_ name_v2_')
    expect(r.id).toBe(id)
    const dir = path.join(libDir, 'loras')
    expect(fs.readdirSync(dir).sort()).toEqual(
      [
        'new_ name_v2_.atelier.json',
        'new_ name_v2_.civitai.info',
        'new_ name_v2_.json',
        'new_ name_v2_.preview.webp',
        'new_ name_v2_.safetensors',
        'other.atelier.json',
        'other.safetensors',
      ].sort(),
    )
    expect(r.preview).toBe(path.join(dir, 'new_ name_v2_.preview.webp'))
    expect(lib.get('old')).toBeUndefined()
    expect(events).toEqual([{ reason: 'rename', ids: [id] }])
    await expect(lib.rename(id, 'other')).rejects.toMatchObject({ code: 'exists' })
    await expect(lib.rename(id, '..')).rejects.toMatchObject({ code: 'invalid-name' })
    off()

    // A rescan after the rename hashes nothing: the record moved with the file.
    hashCalls = []
    const s = await lib.scan()
    expect(s).toMatchObject({ hashed: 0, models: 2 })
    expect(lib.get(id)!.verified).toBe('verified')
    expect(events).toHaveLength(1) // disposed listener got nothing more
  })

  it('deletes a model with its sidecars, or moves them to the trash', async () => {
    const a = await tinyLora(path.join(libDir, 'loras', 'a.safetensors'), 'sd-1', { seed: 31 })
    const b = await tinyLora(path.join(libDir, 'loras', 'b.safetensors'), 'sd-1', { seed: 32 })
    fs.writeFileSync(a.replace(/\.safetensors$/, '.preview.png'), 'p')
    fs.writeFileSync(b.replace(/\.safetensors$/, '.json'), '{}')
    const lib = await open()
    await lib.scan()
    const events: LibraryChange[] = []
    lib.on('changed', (e) => events.push(e))
    const del = await lib.delete('a')
    expect(del.trashedTo).toBeNull()
    expect(fs.readdirSync(path.join(libDir, 'loras')).sort()).toEqual([
      'b.atelier.json',
      'b.json',
      'b.safetensors',
    ])
    const t = await lib.delete('b', { trash: true })
    expect(fs.readdirSync(path.join(libDir, 'loras'))).toEqual([])
    expect(fs.readdirSync(t.trashedTo!).sort()).toEqual(['b.atelier.json', 'b.json', 'b.safetensors'])
    expect(lib.list()).toEqual([])
    expect(events.map((e) => e.reason)).toEqual(['delete', 'delete'])
    await expect(lib.delete('a')).rejects.toMatchObject({ code: 'not-found' })
  })

  it('add() moves a downloaded file into the library without re-hashing', async () => {
    const dl = path.join(home, 'downloads')
    const file = await tinyLora(path.join(dl, 'Cool LoRA.safetensors'), 'sd-1', { seed: 41 })
    const digest = sha(file)
    const lib = await open()
    const events: LibraryChange[] = []
    lib.on('changed', (e) => events.push(e))
    const info = civitaiJson({
      sha256: digest,
      fileName: 'Cool LoRA.safetensors',
      trainedWords: ['coolstyle'],
    })
    const r = await lib.add(file, {
      sha256: digest,
      civitai: info,
      preview: { data: new Uint8Array([1, 2]), ext: 'jpeg' },
    })
    expect(hashCalls).toEqual([])
    expect(r).toMatchObject({
      type: 'lora',
      family: 'sd-1',
      subBase: 'sd-1.5',
      source: 'civitai',
      verified: 'verified',
      sha256: digest,
      trainedWords: ['coolstyle'],
      path: path.join(libDir, 'loras', 'Cool LoRA.safetensors'),
    })
    expect(r.autoV3).toBe(await autoV3(r.path))
    expect(fs.existsSync(file)).toBe(false)
    const stem = path.join(libDir, 'loras', 'Cool LoRA')
    expect(JSON.parse(fs.readFileSync(`${stem}.civitai.info`, 'utf8'))).toEqual(info)
    expect(JSON.parse(fs.readFileSync(`${stem}.json`, 'utf8'))).toMatchObject({
      'activation text': 'coolstyle',
      'sd version': 'SD1',
    })
    expect(r.preview).toBe(`${stem}.preview.jpeg`)
    expect(events).toEqual([{ reason: 'install', ids: [r.id] }])

    // An HF install with a wrong expected hash is recorded as a mismatch.
    const hf = await tinyCheckpoint(path.join(dl, 'model.safetensors'), 'sd-1', { seed: 42 })
    const r2 = await lib.add(hf, {
      huggingface: { repo: 'someone/tiny', revision: 'abc', path: 'model.safetensors' },
      expectedSha256: '0'.repeat(64),
      name: 'tiny-hf',
    })
    expect(hashCalls).toHaveLength(1)
    expect(r2).toMatchObject({
      source: 'huggingface',
      verified: 'mismatch',
      name: 'tiny-hf',
      type: 'checkpoint',
    })
    expect(r2.path).toBe(path.join(libDir, 'checkpoints', 'tiny-hf.safetensors'))

    // A rescan keeps the install facts (from the sidecar) and re-reads nothing.
    hashCalls = []
    await fs.promises.rm(path.join(home, 'library.json'))
    const lib2 = await open()
    await lib2.scan()
    expect(hashCalls).toEqual([])
    expect(lib2.get('tiny-hf')).toMatchObject({
      source: 'huggingface',
      huggingface: { repo: 'someone/tiny' },
    })
    expect(lib2.get('Cool LoRA')).toMatchObject({ verified: 'verified', civitai: { versionId: 1050496 } })

    // A corrupt download is refused with the file's name in the message.
    const bad = path.join(dl, 'bad.safetensors')
    fs.writeFileSync(bad, Buffer.from([1, 2, 3]))
    await expect(lib.add(bad)).rejects.toThrow(/bad\.safetensors/)
  })

  it('matches unknown local files on Civitai by hash in bulk', async () => {
    const a = await tinyLora(path.join(libDir, 'loras', 'a.safetensors'), 'sd-1', { seed: 51 })
    await tinyLora(path.join(libDir, 'loras', 'b.safetensors'), 'sd-1', { seed: 52 })
    const c = await tinyCheckpoint(path.join(libDir, 'checkpoints', 'c.safetensors'), 'sdxl', { seed: 53 })
    const lib = await open()
    await lib.scan()
    const calls: string[][] = []
    const lookup = vi.fn(async (hashes: string[]) => {
      calls.push(hashes)
      const m = new Map<string, CivitaiVersionJson>()
      m.set(
        sha(a).toUpperCase(),
        civitaiJson({
          sha256: sha(a),
          fileName: 'a.safetensors',
          baseModel: 'SD 1.4',
          trainedWords: ['aword'],
        }),
      )
      m.set(
        sha(c), // lowercase key works too
        civitaiJson({
          sha256: sha(c),
          fileName: 'c.safetensors',
          id: 2,
          modelId: 3,
          baseModel: 'Illustrious',
          model: { name: 'C', type: 'Checkpoint', nsfw: true },
        }),
      )
      return m
    })
    const events: LibraryChange[] = []
    lib.on('changed', (e) => events.push(e))
    const res = await lib.matchCivitai(lookup)
    expect(res.looked).toBe(3)
    expect(res.matched).toBe(2)
    expect(calls).toHaveLength(1)
    expect(calls[0]!.every((h) => /^[0-9A-F]{64}$/.test(h))).toBe(true)
    expect(lib.get('a')).toMatchObject({
      source: 'civitai',
      subBase: 'sd-1.4',
      trainedWords: ['aword'],
      verified: 'verified',
    })
    expect(lib.get('c')).toMatchObject({
      family: 'sdxl',
      subBase: 'illustrious',
      nsfw: true,
      civitai: { versionId: 2 },
    })
    expect(lib.get('b')).toMatchObject({ source: 'local', civitai: null })
    expect(fs.existsSync(a.replace(/\.safetensors$/, '.civitai.info'))).toBe(true)
    expect(JSON.parse(fs.readFileSync(a.replace(/\.safetensors$/, '.json'), 'utf8'))['activation text']).toBe(
      'aword',
    )
    expect(events).toEqual([
      { reason: 'update', ids: expect.arrayContaining([lib.get('a')!.id, lib.get('c')!.id]) },
    ])

    // Already matched files are not looked up again; the next scan reads the new sidecars without hashing.
    calls.length = 0
    expect((await lib.matchCivitai(lookup)).looked).toBe(1)
    hashCalls = []
    await lib.scan()
    expect(hashCalls).toEqual([])
    expect(lib.get('a')!.civitai?.versionId).toBe(1050496)
  })

  it('keeps what a failed Civitai lookup matched before the error', async () => {
    const files: string[] = []
    for (let i = 0; i < 101; i++)
      files.push(await tinyLora(path.join(libDir, 'loras', `l${i}.safetensors`), 'sd-1', { seed: 100 + i }))
    const lib = await open()
    await lib.scan()
    let call = 0
    const lookup = async (hashes: string[]): Promise<Map<string, CivitaiVersionJson>> => {
      call++
      if (call === 2) throw new Error('Civitai answered 503')
      expect(hashes).toHaveLength(100)
      return new Map(
        hashes.map((h) => [h, civitaiJson({ sha256: h.toLowerCase(), fileName: 'x.safetensors' })]),
      )
    }
    await expect(lib.matchCivitai(lookup)).rejects.toThrow(/503/)
    expect(call).toBe(2)
    expect(lib.list({ source: 'civitai' })).toHaveLength(100)
    const lib2 = await open()
    expect(lib2.list({ source: 'civitai' })).toHaveLength(100)
  })

  it('keeps the records of a folder that went offline', async () => {
    const ext = path.join(home, 'usb-drive')
    await tinyLora(path.join(ext, 'loras', 'far.safetensors'), 'sd-1', { seed: 81 })
    const lib = await open()
    await lib.addRoot(ext)
    await lib.scan()
    fs.renameSync(ext, `${ext}-unplugged`)
    const s = await lib.scan()
    expect(s).toMatchObject({ models: 1, removed: 0 })
    expect(lib.warnings.join('\n')).toMatch(/usb-drive is not reachable/)
    expect((await lib.doctor()).issues.map((i) => i.kind)).toEqual(['missing'])
    fs.renameSync(`${ext}-unplugged`, ext)
    hashCalls = []
    await lib.scan()
    expect(hashCalls).toEqual([])
  })

  it('add() with a new name carries existing sidecars along', async () => {
    const dl = path.join(home, 'downloads')
    const file = await tinyLora(path.join(dl, 'tmp-123.safetensors'), 'sd-1', { seed: 91 })
    fs.writeFileSync(path.join(dl, 'tmp-123.preview.png'), 'img')
    const lib = await open()
    const r = await lib.add(file, { name: 'Final Name' })
    expect(r.preview).toBe(path.join(libDir, 'loras', 'Final Name.preview.png'))
    expect(fs.readdirSync(dl)).toEqual([])
  })

  it('resolves ambiguous names with a readable error', async () => {
    await tinyLora(path.join(libDir, 'loras', 'same.safetensors'), 'sd-1', { seed: 61 })
    await tinyCheckpoint(path.join(libDir, 'checkpoints', 'same.safetensors'), 'sd-1', { seed: 62 })
    const lib = await open()
    await lib.scan()
    expect(() => lib.resolve('same')).toThrow(/matches 2 models/)
    const id = lib.list({ type: 'lora' })[0]!.id
    expect(lib.resolve(id.slice(0, 8)).type).toBe('lora')
  })

  it('computes compatibility between library records', async () => {
    await standardLibrary()
    const lib = await open()
    await lib.scan()
    expect(lib.compatibility('detail', 'dream').state).toBe('compatible')
    expect(lib.compatibility('ponystyle', 'dream')).toMatchObject({ state: 'incompatible' })
    expect(lib.compatibility('ponystyle', 'juggernaut').state).toBe('compatible')
  })
})

describe('Library doctor', () => {
  it('finds missing, truncated, mismatched, changed and duplicate files', async () => {
    const f = await standardLibrary()
    const dup = path.join(libDir, 'loras', 'detail-copy.safetensors')
    fs.copyFileSync(f.lora!, dup)
    const mm = await tinyLora(path.join(libDir, 'loras', 'mismatch.safetensors'), 'sd-1', { seed: 71 })
    fs.writeFileSync(
      mm.replace(/\.safetensors$/, '.civitai.info'),
      JSON.stringify(civitaiJson({ sha256: 'ab'.repeat(32), fileName: 'mismatch.safetensors' })),
    )
    const lib = await open()
    await lib.scan()
    expect(lib.get('mismatch')!.verified).toBe('mismatch')
    const clean = await lib.doctor()
    expect(clean.issues.map((i) => `${i.kind}:${i.name}`).sort()).toEqual([
      'duplicate:detail',
      'duplicate:detail-copy',
      'hash-mismatch:mismatch',
    ])

    fs.rmSync(f.emb!)
    const buf = fs.readFileSync(f.xlLora!)
    fs.writeFileSync(f.xlLora!, buf.subarray(0, buf.length - 64))
    const report = await lib.doctor()
    expect(report.ok).toBe(false)
    expect(report.checked).toBe(8)
    const kinds = report.issues.map((i) => `${i.kind}:${i.name}`).sort()
    expect(kinds).toEqual([
      'changed:ponystyle',
      'corrupt:ponystyle',
      'duplicate:detail',
      'duplicate:detail-copy',
      'hash-mismatch:mismatch',
      'missing:badhands',
    ])
    const corrupt = report.issues.find((i) => i.kind === 'corrupt')!
    expect(corrupt.message).toMatch(/ponystyle\.safetensors/)
    expect(corrupt.message).toMatch(/incomplete|truncated/)
    expect(report.issues.find((i) => i.kind === 'duplicate' && i.name === 'detail')!.others).toEqual([
      lib.get('detail-copy')!.id,
    ])

    // Re-hashing catches content that changed behind an unchanged size and mtime.
    const st = fs.statSync(f.ckpt!)
    const bytes = fs.readFileSync(f.ckpt!)
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff
    fs.writeFileSync(f.ckpt!, bytes)
    fs.utimesSync(f.ckpt!, st.atime, st.mtime)
    const deep = await lib.doctor({ rehash: true })
    expect(deep.issues.filter((i) => i.name === 'dream').map((i) => i.kind)).toEqual(['hash-mismatch'])
  })
})

describe('Library with the seeded tiny models', () => {
  it('classifies tiny-sd15, tiny-sd15-inpaint and tiny-lora', async () => {
    // Copies (not links): a scan writes sidecars beside the files and must never reach the shared cache.
    const tiny = await ensureTinyModels()
    await fs.promises.mkdir(path.join(libDir, 'checkpoints'), { recursive: true })
    await fs.promises.mkdir(path.join(libDir, 'loras'), { recursive: true })
    fs.copyFileSync(tiny.sd15, path.join(libDir, 'checkpoints', 'tiny-sd15.safetensors'))
    fs.copyFileSync(tiny.sd15Inpaint, path.join(libDir, 'checkpoints', 'tiny-sd15-inpaint.safetensors'))
    fs.copyFileSync(tiny.lora, path.join(libDir, 'loras', 'tiny-lora.safetensors'))
    const lib = await open()
    await lib.scan()
    expect(lib.get('tiny-sd15')).toMatchObject({
      type: 'checkpoint',
      family: 'sd-1',
      variant: 'normal',
      problem: null,
      note: null,
    })
    expect(lib.get('tiny-sd15-inpaint')).toMatchObject({
      type: 'checkpoint',
      family: 'sd-1',
      variant: 'inpaint',
    })
    expect(lib.get('tiny-lora')).toMatchObject({ type: 'lora', family: 'sd-1' })
    expect(lib.get('tiny-sd15')!.sha256).toBe(sha(tiny.sd15))
    expect(lib.compatibility('tiny-lora', 'tiny-sd15').state).toBe('compatible')
    hashCalls = []
    await lib.scan()
    expect(hashCalls).toEqual([])
  })

  it('files the tiny diffusers folders as SD 1.x and SDXL checkpoint folders', async () => {
    // Copies (not links), as above: the shared tiny-models folder stays untouched by the scan.
    const tiny = await ensureTinyModels()
    await fs.promises.mkdir(path.join(libDir, 'checkpoints'), { recursive: true })
    fs.cpSync(tiny.sd15Diffusers, path.join(libDir, 'checkpoints', 'tiny-sd15-diffusers'), {
      recursive: true,
    })
    fs.cpSync(tiny.sdxlDiffusers, path.join(libDir, 'checkpoints', 'tiny-sdxl-diffusers'), {
      recursive: true,
    })
    const lib = await open()
    await lib.scan()
    expect(lib.get('tiny-sd15-diffusers')).toMatchObject({
      type: 'checkpoint',
      family: 'sd-1',
      folder: true,
      sha256: null,
      problem: null,
    })
    expect(lib.get('tiny-sdxl-diffusers')).toMatchObject({
      type: 'checkpoint',
      family: 'sdxl',
      folder: true,
      sha256: null,
      problem: null,
    })
  })
})
