import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startModelSources, TOKENIZER_MERGES, type ModelSources } from '../../../e2e/fixtures/model-sources'
import { ClipTokenizer } from '../../engine/tokenizer/clip'
import { appPaths } from '../../platform/paths'
import { EventBus } from '../events'
import { JobManager } from '../jobs'
import { keyFileSecretBox, SecretsService } from '../secrets'
import { SettingsService } from '../settings'
import { memoryStore } from '../store'
import type { DownloadInfo } from '../../../preload/contract'
import { modelsRequestSchemas } from '../../../preload/contract-models'
import { mapImageMeta } from '../../remote/civitai/map'
import { toParams } from './dto'
import { ModelsService } from './service'

const noWait = { retries: 1, baseDelayMs: 1, maxDelayMs: 1, sleep: () => Promise.resolve() }

let tmp: string
let sources: ModelSources

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-models-'))
  sources = await startModelSources(tmp)
})

afterAll(async () => {
  await sources.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

interface Env {
  home: string
  models: ModelsService
  bus: EventBus
  settings: SettingsService
  secrets: SecretsService
  events: { name: string; payload: unknown }[]
}

const envs: Env[] = []

function makeEnv(home = fs.mkdtempSync(path.join(tmp, 'home-')), env: Record<string, string> = {}): Env {
  const store = memoryStore()
  const bus = new EventBus()
  const events: Env['events'] = []
  bus.subscribe((e) => events.push(e))
  const settings = new SettingsService(store, home, bus, { ...sources.env, ...env })
  const secrets = new SecretsService(store, keyFileSecretBox(path.join(home, 'secret.key')), env)
  const models = new ModelsService({
    home,
    settings,
    secrets,
    bus,
    jobs: new JobManager(bus),
    retry: noWait,
    eager: true,
  })
  const e = { home, models, bus, settings, secrets, events }
  envs.push(e)
  return e
}

function until(models: ModelsService, id: string, test: (d: DownloadInfo) => boolean): Promise<DownloadInfo> {
  return new Promise((resolve) => {
    const off = models.onDownload((d) => {
      if (d.id === id && test(d)) {
        off()
        resolve(d)
      }
    })
  })
}

async function closeAll(): Promise<void> {
  for (const e of envs.splice(0)) await e.models.dispose()
}

describe('ModelsService against the Civitai / HF fixtures', () => {
  it('searches Civitai with filters, hides NSFW by default, and proxies only listed images', async () => {
    const { models } = makeEnv()
    const all = await models.search({ source: 'civitai', limit: 100 })
    expect(all.items.some((c) => c.nsfw)).toBe(false)
    expect(all.items.map((c) => c.id)).toContain('1002')
    const loras = await models.search({
      source: 'civitai',
      types: ['lora'],
      baseModels: ['SDXL 1.0'],
      limit: 100,
    })
    expect(loras.items.map((c) => c.name)).toEqual(expect.arrayContaining(['Tiny XL Detail']))
    expect(loras.items.every((c) => c.kind === 'lora')).toBe(true)

    // Cursor paging.
    const first = await models.search({ source: 'civitai', limit: 3 })
    expect(first.items).toHaveLength(3)
    expect(first.nextCursor).not.toBeNull()
    const second = await models.search({ source: 'civitai', limit: 3, cursor: first.nextCursor })
    expect(second.items.map((c) => c.id)).not.toEqual(first.items.map((c) => c.id))

    const card = all.items.find((c) => c.id === '1001')
    expect(card?.image?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/img\//)
    const bytes = await models.image(card?.image?.url ?? '')
    expect(bytes[0]).toBe(0xff) // JPEG
    expect(bytes[1]).toBe(0xd8)
    await expect(models.image(`${sources.images.url}/img/not-listed.jpeg`)).rejects.toMatchObject({
      code: 'forbidden',
    })
    await expect(models.image('http://127.0.0.1:1/api/secret')).rejects.toMatchObject({ code: 'forbidden' })
    // Served once, then from the cache.
    const hits = sources.images.imageRequests.length
    await models.image(card?.image?.url ?? '')
    expect(sources.images.imageRequests.length).toBe(hits)

    const nsfw = makeEnv()
    nsfw.settings.update({ nsfw: 'show' })
    const shown = await nsfw.models.search({ source: 'civitai', limit: 100 })
    expect(shown.items.some((c) => c.nsfw)).toBe(true)
    await closeAll()
  })

  it('searches Hugging Face and describes a diffusers repo', async () => {
    const { models } = makeEnv()
    const page = await models.search({ source: 'huggingface', types: ['lora'] })
    expect(page.items.map((c) => c.id)).toEqual(
      expect.arrayContaining(['atelier-test/tiny-lora', 'atelier-test/tiny-xl-lora']),
    )
    const d = await models.details({ source: 'huggingface', id: 'atelier-test/tiny-sd-diffusers' })
    expect(d.diffusers).toBe(true)
    expect(d.readme).toContain('# Fixture')
    const gated = await models.details({ source: 'huggingface', id: 'atelier-test/gated-model' })
    expect(gated.access?.kind).toBe('gated')
    await expect(
      models.install({ source: 'huggingface', repo: 'atelier-test/gated-model' }),
    ).rejects.toMatchObject({
      code: 'unauthorized',
      message: expect.stringContaining('request access'),
    })
    await closeAll()
  })

  it('installs a checkpoint and a LoRA end to end, with sidecars, preview, badges and compatibility', async () => {
    const { models, home, events } = makeEnv()
    const ids = sources.civitai.catalog.versionIds
    // Before any checkpoint: nothing to compare a LoRA with.
    const before = await models.details({ source: 'civitai', id: '1002' })
    expect(before.versions[0]?.compat.state).toBe('unknown')

    const ckpt = await models.install({ source: 'civitai', versionId: String(ids.checkpoint) })
    const lora = await models.install({ source: 'civitai', versionId: String(ids.lora) })
    expect(ckpt.downloadIds).toHaveLength(1)
    const done = await models.whenInstalled([...ckpt.downloadIds, ...lora.downloadIds])
    expect(done.map((d) => [d.state, d.install.state, d.verified])).toEqual([
      ['done', 'installed', true],
      ['done', 'installed', true],
    ])
    expect(events.some((e) => e.name === 'library:changed')).toBe(true)
    expect(events.some((e) => e.name === 'downloads:progress')).toBe(true)

    const list = await models.libraryList({})
    const c = list.find((m) => m.type === 'checkpoint')
    const l = list.find((m) => m.type === 'lora')
    expect(c).toMatchObject({ source: 'civitai', family: 'sd-1', verified: 'verified', hasPreview: true })
    expect(c?.civitai).toMatchObject({
      modelId: 1001,
      versionId: ids.checkpoint,
      modelName: 'Tiny Checkpoint',
    })
    expect(l).toMatchObject({
      family: 'sd-1',
      trainedWords: ['tinystyle'],
      verified: 'verified',
      hasPreview: true,
    })
    expect(l?.sha256).toBe(sources.models.lora.sha256)

    const libDir = appPaths(home).library
    const loraDir = path.join(libDir, 'loras')
    expect(fs.readdirSync(loraDir).sort()).toEqual(
      expect.arrayContaining([
        'tinyStyleLora_v1.safetensors',
        'tinyStyleLora_v1.civitai.info',
        'tinyStyleLora_v1.preview.png',
      ]),
    )
    const info = JSON.parse(fs.readFileSync(path.join(loraDir, 'tinyStyleLora_v1.civitai.info'), 'utf8')) as {
      id: number
      model: { type: string }
    }
    expect(info).toMatchObject({ id: ids.lora, model: { type: 'LORA' } })
    const png = await models.libraryPreview(l?.id ?? '')
    expect([...png.slice(1, 4)]).toEqual([0x50, 0x4e, 0x47]) // "PNG"
    // Staging folders are cleaned up.
    expect(fs.readdirSync(path.join(appPaths(home).downloads, 'files'))).toEqual([])

    // Badges in search results.
    const page = await models.search({ source: 'civitai', limit: 100 })
    expect(page.items.find((x) => x.id === '1002')).toMatchObject({ installed: true, updateAvailable: false })
    expect(page.items.find((x) => x.id === '1003')).toMatchObject({ installed: false })

    // Compatibility against the installed SD 1.5 checkpoint.
    const sd1 = await models.details({ source: 'civitai', id: '1002' })
    expect(sd1.versions[0]?.compat).toMatchObject({ state: 'compatible' })
    expect(sd1.versions[0]?.files[0]).toMatchObject({ installed: true, libraryId: l?.id })
    const xl = await models.details({ source: 'civitai', id: '1003' })
    expect(xl.versions[0]?.compat.state).toBe('incompatible')
    expect(xl.versions[0]?.compat.reason).toMatch(/SDXL/)
    const pony = await models.details({ source: 'civitai', id: '1005' })
    expect(pony.versions[0]?.compat.state).toBe('incompatible')
    // Images of the selected version carry their generation parameters.
    const img = sd1.versions[0]?.images.find((i) => i.type === 'image')
    expect(img?.params).toMatchObject({
      seed: 1234567,
      steps: 20,
      cfgScale: 7,
      width: 512,
      height: 768,
      sampler: 'DPM++ 2M',
    })

    // Library details: compat of the LoRA against the checkpoint, source link.
    const ld = await models.libraryGet(l?.id ?? '')
    expect(ld.compat?.state).toBe('compatible')
    expect(ld.sourceUrl).toBe(`${sources.images.url}/models/1002?modelVersionId=${ids.lora}`)

    // Installing the same version again downloads nothing.
    const again = await models.install({ source: 'civitai', versionId: String(ids.lora) })
    expect(again).toEqual({ downloadIds: [], alreadyInstalled: l?.id })

    // Rename and delete go through the library.
    const renamed = await models.libraryRename(l?.id ?? '', 'tiny style')
    expect(renamed.name).toBe('tiny style')
    await models.libraryDelete(renamed.id)
    expect((await models.libraryList({})).map((m) => m.type)).toEqual(['checkpoint'])
    expect(fs.readdirSync(loraDir).filter((n) => n.startsWith('tiny'))).toEqual([])
    await closeAll()
  })

  it('explains Early Access and archived models before downloading anything', async () => {
    const { models } = makeEnv()
    const ids = sources.civitai.catalog.versionIds
    await expect(
      models.install({ source: 'civitai', versionId: String(ids.earlyAccess) }),
    ).rejects.toMatchObject({
      code: 'unauthorized',
      message: expect.stringContaining('Early Access'),
    })
    const ea = await models.details({ source: 'civitai', id: '1004' })
    expect(ea.access).toMatchObject({ kind: 'early-access' })
    await expect(
      models.install({ source: 'civitai', versionId: String(ids.archived) }),
    ).rejects.toMatchObject({
      code: 'not-found',
    })
    // A login-required download fails with the reason in plain words.
    const r = await models.install({ source: 'civitai', versionId: String(ids.loginRequired) })
    const [d] = await models.whenInstalled(r.downloadIds)
    expect(d?.state).toBe('failed')
    expect(d?.error?.message).toMatch(/logged in|API key/)
    await closeAll()
  })

  it('installs a single file and a whole diffusers folder from Hugging Face', async () => {
    const { models } = makeEnv()
    const one = await models.install({ source: 'huggingface', repo: 'atelier-test/tiny-lora' })
    const folder = await models.install({ source: 'huggingface', repo: 'atelier-test/tiny-sd-diffusers' })
    expect(folder.downloadIds.length).toBeGreaterThan(5)
    const done = await models.whenInstalled([...one.downloadIds, ...folder.downloadIds])
    expect(done.every((d) => d.install.state === 'installed')).toBe(true)
    const list = await models.libraryList({ source: 'huggingface' })
    const lora = list.find((m) => m.type === 'lora')
    expect(lora).toMatchObject({
      verified: 'verified',
      huggingface: { repo: 'atelier-test/tiny-lora', path: 'tinyStyleLora_v1.safetensors' },
    })
    const pipeline = list.find((m) => m.folder)
    expect(pipeline).toMatchObject({
      type: 'checkpoint',
      huggingface: { repo: 'atelier-test/tiny-sd-diffusers' },
    })
    const lib = await models.library()
    const dir = lib.resolve(pipeline?.id ?? '').path
    expect(fs.existsSync(path.join(dir, 'model_index.json'))).toBe(true)
    expect(fs.existsSync(path.join(dir, 'unet', 'diffusion_pytorch_model.safetensors'))).toBe(true)
    expect(fs.existsSync(path.join(dir, 'tokenizer', 'merges.txt'))).toBe(true)
    const card = (await models.search({ source: 'huggingface', types: ['lora'] })).items.find(
      (c) => c.id === 'atelier-test/tiny-lora',
    )
    expect(card?.installed).toBe(true)
    await closeAll()
  })

  it('fetches the CLIP tokenizer once through the downloader, into the tokenizer cache', async () => {
    const { models, home } = makeEnv()
    const before = sources.hf.log.length
    const [a, b] = await Promise.all([models.ensureClipTokenizer(), models.ensureClipTokenizer()])
    expect(a).toBe(path.join(appPaths(home).tokenizers, 'openai-clip-vit-large-patch14'))
    expect(b).toBe(a)
    expect(fs.readdirSync(a).sort()).toEqual(['merges.txt', 'vocab.json'])
    const tok = await ClipTokenizer.fromFolder(a)
    expect(tok.encode('cat dog')).toHaveLength(2)
    expect(TOKENIZER_MERGES.length).toBe(4)
    const used = sources.hf.log.length - before
    expect(used).toBeGreaterThan(0)
    await models.ensureClipTokenizer()
    expect(sources.hf.log.length - before).toBe(used)
    // Nothing half-written is left beside it.
    expect(fs.readdirSync(appPaths(home).tokenizers)).toEqual(['openai-clip-vit-large-patch14'])
    await closeAll()
  })

  it('resumes an interrupted install after a restart and registers it', async () => {
    const home = fs.mkdtempSync(path.join(tmp, 'home-'))
    sources.civitai.setFaults({ throttleBytesPerSec: 256 * 1024 })
    try {
      const first = makeEnv(home)
      const r = await first.models.install({
        source: 'civitai',
        versionId: String(sources.civitai.catalog.versionIds.checkpoint),
      })
      const id = r.downloadIds[0] ?? ''
      await new Promise<void>((resolve) => {
        const off = first.models.onDownload((d) => {
          if (d.id === id && d.bytes > 100_000) {
            off()
            resolve()
          }
        })
      })
      await first.models.dispose()
      envs.splice(envs.indexOf(first), 1)
      const storage = sources.civitai.storageRequests().length

      sources.civitai.setFaults({ throttleBytesPerSec: null })
      const second = makeEnv(home)
      const list = await second.models.downloads()
      expect(list.find((d) => d.id === id)?.bytes).toBeGreaterThan(100_000)
      const [d] = await second.models.whenInstalled([id])
      expect(d).toMatchObject({ state: 'done', verified: true, install: { state: 'installed' } })
      const resumed = sources.civitai.storageRequests().slice(storage)
      expect(resumed.some((q) => String(q.headers.range ?? '').startsWith('bytes='))).toBe(true)
      expect((await second.models.libraryList({ type: 'checkpoint' })).length).toBe(1)
    } finally {
      sources.civitai.resetFaults()
      await closeAll()
    }
  })

  it('tests keys against the services and adds a typed folder as a library root', async () => {
    const { models, home } = makeEnv()
    expect(await models.testSecret('civitaiApiKey', 'civitai-test-key')).toMatchObject({ ok: true })
    expect(await models.testSecret('civitaiApiKey', 'wrong')).toMatchObject({
      ok: false,
      message: expect.stringContaining('rejected'),
    })
    expect(await models.testSecret('hfToken', 'hf_atelier_ok')).toMatchObject({ ok: true })
    expect(await models.testSecret('hfToken', 'hf_wrong')).toMatchObject({ ok: false })
    expect(await models.testSecret('hfToken')).toMatchObject({
      ok: false,
      message: expect.stringContaining('No Hugging Face'),
    })

    await expect(models.libraryAddRoot('relative/path')).rejects.toMatchObject({ code: 'invalid-input' })
    await expect(models.libraryAddRoot('/')).rejects.toMatchObject({ code: 'invalid-input' })
    await expect(models.libraryAddRoot(path.join(home, 'missing'))).rejects.toMatchObject({
      code: 'not-found',
    })
    const a1111 = path.join(home, 'webui')
    fs.mkdirSync(path.join(a1111, 'models', 'Lora'), { recursive: true })
    fs.copyFileSync(sources.models.lora.path, path.join(a1111, 'models', 'Lora', 'mine.safetensors'))
    const root = await models.libraryAddRoot(a1111)
    expect(root).toMatchObject({ path: a1111, own: false })
    await expect
      .poll(async () => (await models.libraryList({ type: 'lora' })).map((m) => m.name), { timeout: 20_000 })
      .toEqual(['mine'])
    expect((await models.libraryRoots()).map((r) => r.own)).toEqual([true, false])
    const report = await models.libraryDoctor(false)
    expect(report).toMatchObject({ ok: true, checked: 1 })
    await closeAll()
  })

  it('pauses, resumes, cancels and retries a download, and honours the library folder setting', async () => {
    const { models, settings, home } = makeEnv()
    const ids = sources.civitai.catalog.versionIds
    sources.civitai.setFaults({ throttleBytesPerSec: 64 * 1024 })
    try {
      const r = await models.install({ source: 'civitai', versionId: String(ids.checkpoint) })
      const id = r.downloadIds[0] ?? ''
      // A second click on Install while it runs joins the same download.
      expect(
        (await models.install({ source: 'civitai', versionId: String(ids.checkpoint) })).downloadIds,
      ).toEqual([id])
      await until(models, id, (d) => d.bytes > 0)
      const paused = until(models, id, (d) => d.state === 'paused')
      await models.downloadAction('pause', id)
      expect((await paused).speedBps).toBe(0)
      const running = until(models, id, (d) => d.state === 'downloading')
      await models.downloadAction('resume', id)
      await running
      const cancelled = until(models, id, (d) => d.state === 'cancelled')
      await models.downloadAction('cancel', id)
      expect((await cancelled).bytes).toBe(0)
      sources.civitai.resetFaults()
      await models.downloadAction('retry', id)
      const [done] = await models.whenInstalled([id])
      expect(done).toMatchObject({ state: 'done', install: { state: 'installed' } })
      expect((await models.clearDownloads()).removed).toBe(1)
      expect(await models.downloads()).toEqual([])
      await expect(models.downloadAction('pause', id)).rejects.toMatchObject({ code: 'not-found' })

      // A new library folder: the next install lands there.
      const elsewhere = path.join(home, 'elsewhere')
      settings.update({ libraryRoot: elsewhere, concurrentDownloads: 3 })
      const lora = await models.install({ source: 'civitai', versionId: String(ids.lora) })
      await models.whenInstalled(lora.downloadIds)
      expect(fs.existsSync(path.join(elsewhere, 'loras', 'tinyStyleLora_v1.safetensors'))).toBe(true)
      expect((await models.libraryRoots())[0]).toMatchObject({ path: elsewhere, own: true })
    } finally {
      sources.civitai.resetFaults()
      await closeAll()
    }
  })

  it('validates requests at the contract: ids, repo paths and image URLs', () => {
    const install = modelsRequestSchemas['models:install']
    expect(install.safeParse({ source: 'civitai', versionId: '2003' }).success).toBe(true)
    expect(install.safeParse({ source: 'civitai', versionId: '../1' }).success).toBe(false)
    expect(
      install.safeParse({ source: 'huggingface', repo: 'o/r', path: 'unet/w.safetensors' }).success,
    ).toBe(true)
    expect(install.safeParse({ source: 'huggingface', repo: 'o/r', path: '../../etc/passwd' }).success).toBe(
      false,
    )
    expect(install.safeParse({ source: 'huggingface', repo: 'o/r/x' }).success).toBe(false)
    expect(modelsRequestSchemas['remote:image'].safeParse({ url: 'not a url' }).success).toBe(false)
    expect(modelsRequestSchemas['library:add-root'].safeParse({ path: '' }).success).toBe(false)
  })

  it('resolves the resources a preview image names by hash (use these settings -> one-click install)', async () => {
    const { models } = makeEnv()
    const loraHash = sources.models.lora.sha256.slice(0, 10)
    // An A1111 upload whose LoRA is only known by its `Lora hashes` AutoV2 entry.
    const params = toParams(
      mapImageMeta({
        prompt: 'a cat <lora:some_lora:0.7>',
        sampler: 'Euler a',
        'Lora hashes': `some_lora: ${loraHash.toUpperCase()}`,
      }),
    )
    const lora = params?.resources.find((r) => r.kind === 'lora')
    expect(lora).toMatchObject({ name: 'some_lora', weight: 0.7, hash: loraHash })
    expect(await models.byHash(lora?.hash ?? '')).toMatchObject({ versionId: '2003' })
    expect(await models.byHash(sources.models.checkpoint.sha256)).not.toBeNull()
    expect(await models.byHash('0123456789')).toBeNull()
    expect(modelsRequestSchemas['models:by-hash'].safeParse({ hash: 'xyz' }).success).toBe(false)
    await closeAll()
  })
})
