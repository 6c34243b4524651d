import { describe, expect, it } from 'vitest'
import type { ModelRecord } from '../../library/types'
import type { RemoteFile, RemoteModel, RemoteVersion } from '../../remote/types'
import { InstalledIndex } from './badges'
import { readmeText } from './browse'
import { remoteCompat } from './compat'
import { defaultVersion, isInstallable, toParams } from './dto'
import { ImageProxy, thumbnailUrl } from './images'
import { parseModelRef } from './refs'

function record(p: Partial<ModelRecord>): ModelRecord {
  return {
    id: 'abc',
    name: 'x',
    fileName: 'x.safetensors',
    type: 'checkpoint',
    family: 'sd-1',
    subBase: 'sd-1.5',
    variant: 'normal',
    architecture: null,
    format: 'safetensors',
    path: '/m/x.safetensors',
    folder: false,
    root: '/m',
    size: 1,
    mtimeMs: 1,
    sha256: null,
    autoV2: null,
    autoV3: null,
    source: 'local',
    civitai: null,
    huggingface: null,
    expectedSha256: null,
    verified: 'unverified',
    trainedWords: [],
    baseModel: null,
    preview: null,
    description: null,
    preferredWeight: null,
    notes: null,
    nsfw: false,
    addedAt: '',
    problem: null,
    note: null,
    ...p,
  }
}

function file(p: Partial<RemoteFile>): RemoteFile {
  return {
    id: '1',
    name: 'a.safetensors',
    path: 'a.safetensors',
    sizeBytes: 1,
    sizeExact: true,
    fileType: 'Model',
    format: 'safetensors',
    precision: null,
    sizeVariant: null,
    primary: true,
    sha256: null,
    hashes: {},
    downloadUrl: 'https://x/a',
    pickleScan: null,
    virusScan: null,
    scanMessage: null,
    ...p,
  }
}

function version(id: string, files: RemoteFile[], p: Partial<RemoteVersion> = {}): RemoteVersion {
  return {
    source: 'civitai',
    id,
    modelId: '7',
    name: `v${id}`,
    description: null,
    baseModel: 'SD 1.5',
    baseModelType: null,
    trainedWords: [],
    publishedAt: null,
    earlyAccess: false,
    earlyAccessEndsAt: null,
    files,
    images: [],
    downloadUrl: null,
    stats: { downloads: null, likes: null },
    air: null,
    ...p,
  }
}

function model(versions: RemoteVersion[], p: Partial<RemoteModel> = {}): RemoteModel {
  return {
    source: 'civitai',
    id: '7',
    name: 'M',
    description: null,
    kind: 'lora',
    rawType: 'LORA',
    nsfw: false,
    nsfwLevel: 1,
    tags: [],
    creator: null,
    stats: { downloads: null, likes: null },
    baseModels: [],
    versions,
    gated: false,
    archived: false,
    license: null,
    commercialUse: [],
    pageUrl: '',
    updatedAt: null,
    ...p,
  }
}

const SHA_OLD = 'a'.repeat(64)
const SHA_NEW = 'b'.repeat(64)

describe('installed / update-available badges', () => {
  it('flags an update when only an older Civitai version is installed (by version id or by hash)', () => {
    const m = model([version('20', [file({ sha256: SHA_NEW })]), version('10', [file({ sha256: SHA_OLD })])])
    const byId = new InstalledIndex([
      record({ civitai: { modelId: 7, versionId: 10, modelName: null, versionName: null, modelType: null } }),
    ])
    expect(byId.badges(m)).toEqual({ installed: true, installedVersionIds: ['10'], updateAvailable: true })
    const byHash = new InstalledIndex([record({ sha256: SHA_OLD })])
    expect(byHash.badges(m)).toEqual({ installed: true, installedVersionIds: ['10'], updateAvailable: true })
    const latest = new InstalledIndex([record({ sha256: SHA_NEW })])
    expect(latest.badges(m).updateAvailable).toBe(false)
    expect(new InstalledIndex([]).badges(m)).toEqual({
      installed: false,
      installedVersionIds: [],
      updateAvailable: false,
    })
    // A newer version still in Early Access is not offered as an update.
    const ea = model([
      version('20', [file({ sha256: SHA_NEW })], { earlyAccess: true }),
      version('10', [file({ sha256: SHA_OLD })]),
    ])
    expect(byHash.badges(ea).updateAvailable).toBe(false)
  })

  it('opens a model page on the newest version that is not in Early Access', () => {
    const ea = version('30', [file({ sha256: SHA_NEW })], { earlyAccess: true })
    const older = version('20', [file({ sha256: SHA_OLD })])
    expect(defaultVersion(model([ea, older, version('10', [file({})])]).versions)?.id).toBe('20')
    // Every version in Early Access: the newest, whose page explains the access rule.
    expect(defaultVersion(model([ea]).versions)?.id).toBe('30')
    expect(defaultVersion([])).toBeUndefined()
  })

  it('flags an HF update when the installed file changed upstream', () => {
    const hfFile = file({ path: 'w.safetensors', sha256: SHA_NEW })
    const m = model([version('c'.repeat(40), [hfFile], { source: 'huggingface' })], {
      source: 'huggingface',
      id: 'o/r',
    })
    const old = new InstalledIndex([
      record({
        sha256: SHA_OLD,
        huggingface: { repo: 'o/r', revision: 'd'.repeat(40), path: 'w.safetensors' },
      }),
    ])
    expect(old.badges(m)).toMatchObject({ installed: true, updateAvailable: true })
    const same = new InstalledIndex([
      record({
        sha256: SHA_NEW,
        huggingface: { repo: 'O/R', revision: 'd'.repeat(40), path: 'w.safetensors' },
      }),
    ])
    expect(same.badges(m)).toMatchObject({ installed: true, updateAvailable: false })
  })
})

describe('remote compatibility', () => {
  const sd15 = record({ id: 'c1', name: 'sd15', family: 'sd-1', subBase: 'sd-1.5' })
  const sdxl = record({ id: 'c2', name: 'xl', family: 'sdxl', subBase: 'sdxl' })
  it('summarises against every checkpoint, best state first', () => {
    expect(remoteCompat('lora', 'SD 1.5', [sd15]).state).toBe('compatible')
    expect(remoteCompat('lora', 'SDXL 1.0', [sd15])).toMatchObject({ state: 'incompatible' })
    expect(remoteCompat('lora', 'Pony', [sdxl]).state).toBe('partial')
    const both = remoteCompat('lora', 'SDXL 1.0', [sd15, sdxl])
    expect(both.state).toBe('compatible')
    expect(both.checkpoints.map((c) => c.state)).toEqual(['incompatible', 'compatible'])
    expect(remoteCompat('lora', 'SD 1.5', []).state).toBe('unknown')
    expect(remoteCompat('lora', 'Flux.1 D', []).state).toBe('incompatible')
    expect(remoteCompat('lora', 'Flux.1 D', [sd15]).reason).toMatch(/Flux/)
    expect(remoteCompat('lora', null, [sd15]).state).toBe('partial')
  })
  it('rates checkpoints by whether Atelier runs their family', () => {
    expect(remoteCompat('checkpoint', 'SD 1.5', []).state).toBe('compatible')
    expect(remoteCompat('checkpoint', 'Flux.1 D', []).state).toBe('incompatible')
    expect(remoteCompat('checkpoint', 'Flux.1 D', []).reason).toMatch(/runs SD 1\.x/)
    expect(remoteCompat('controlnet', 'SD 1.5', [sd15]).state).toBe('unknown')
  })
})

describe('references', () => {
  it('parses ids, hf repos and URLs', () => {
    expect(parseModelRef('civitai:2003', { civitaiId: 'version' })).toEqual({
      source: 'civitai',
      versionId: '2003',
    })
    expect(parseModelRef('civitai:1002', { civitaiId: 'model' })).toEqual({
      source: 'civitai',
      modelId: '1002',
    })
    expect(parseModelRef('hf:owner/repo/sub/w.safetensors', { civitaiId: 'model' })).toEqual({
      source: 'huggingface',
      repo: 'owner/repo',
      path: 'sub/w.safetensors',
    })
    expect(
      parseModelRef('https://civitai.com/models/1002/tiny?modelVersionId=2003', { civitaiId: 'version' }),
    ).toEqual({
      source: 'civitai',
      modelId: '1002',
      versionId: '2003',
    })
    expect(
      parseModelRef('https://civitai.com/api/download/models/2003?type=Model', { civitaiId: 'version' }),
    ).toEqual({
      source: 'civitai',
      versionId: '2003',
    })
    expect(
      parseModelRef('https://huggingface.co/o/r/blob/main/a/b.safetensors', { civitaiId: 'version' }),
    ).toEqual({
      source: 'huggingface',
      repo: 'o/r',
      revision: 'main',
      path: 'a/b.safetensors',
    })
    expect(
      parseModelRef('http://127.0.0.1:9/models/5', { civitaiId: 'version', civitaiHosts: ['127.0.0.1:9'] }),
    ).toEqual({
      source: 'civitai',
      modelId: '5',
    })
    expect(() => parseModelRef('https://example.com/x', { civitaiId: 'version' })).toThrow(
      /only Civitai and Hugging Face/,
    )
    expect(() => parseModelRef('hf:nope', { civitaiId: 'version' })).toThrow(/owner\/name/)
    expect(() => parseModelRef('something', { civitaiId: 'version' })).toThrow(/civitai:<id>/)
  })
})

describe('small mappers', () => {
  it('asks Civitai for thumbnails and leaves other hosts alone', () => {
    expect(thumbnailUrl('https://image.civitai.com/k/uuid/original=true/1.jpeg')).toBe(
      'https://image.civitai.com/k/uuid/width=450/1.jpeg',
    )
    expect(thumbnailUrl('http://127.0.0.1:5/img/k/uuid/original=true/1.jpeg')).toBe(
      'http://127.0.0.1:5/img/k/uuid/original=true/1.jpeg',
    )
  })
  it('keeps weights installable and configs / pickles not', () => {
    expect(isInstallable(file({}))).toBe(true)
    expect(isInstallable(file({ format: 'ckpt', name: 'a.ckpt' }))).toBe(false)
    expect(isInstallable(file({ fileType: 'Training Data', format: 'other' }))).toBe(false)
    expect(isInstallable(file({ format: null, name: 'x.safetensors', fileType: 'lfs' }))).toBe(true)
  })
  it('maps image meta to generation parameters', () => {
    expect(
      toParams({
        prompt: 'a',
        negativePrompt: null,
        seed: 1,
        steps: 2,
        sampler: 'Euler a',
        cfgScale: 7,
        clipSkip: null,
        size: '512x768',
        raw: { Model: 'm' },
      }),
    ).toMatchObject({ width: 512, height: 768, model: 'm' })
    expect(toParams(null)).toBeNull()
  })
  it('strips the model card front matter', () => {
    expect(readmeText('---\nlicense: mit\n---\n\n# Hi\n')).toBe('# Hi')
    expect(readmeText('---\nlicense: mit\n---\n')).toBeNull()
  })
  it('the image proxy refuses what it did not hand out, and fetches each URL once', async () => {
    let calls = 0
    const proxy = new ImageProxy(async () => {
      calls++
      return { bytes: new Uint8Array([1, 2, 3]), contentType: 'image/png' }
    })
    await expect(proxy.get('https://x/a.png')).rejects.toMatchObject({ code: 'forbidden' })
    proxy.allow('https://x/a.png')
    const [a, b] = await Promise.all([proxy.get('https://x/a.png'), proxy.get('https://x/a.png')])
    expect([...a]).toEqual([1, 2, 3])
    expect(b).toBe(a)
    await proxy.get('https://x/a.png')
    expect(calls).toBe(1)
    expect(proxy.allow('file:///etc/passwd')).toBe('file:///etc/passwd')
    expect(proxy.isAllowed('file:///etc/passwd')).toBe(false)
  })
})
