import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels } from '../../bench/fixtures/tiny-models'
import { CivitaiFixtureServer } from '../../e2e/fixtures/remote/civitai-server'
import { makeFixtureModels } from '../../e2e/fixtures/remote/fixture-models'
import { HfFixtureServer } from '../../e2e/fixtures/remote/hf-server'
import { CivitaiClient } from '../remote/civitai/client'
import { HuggingFaceClient } from '../remote/huggingface/client'
import { DownloadManager } from './manager'

// The fixtures serve real model files so e2e can install a runnable model: here the seeded tiny SD 1.5 and its
// diffusers folder, which the tests write themselves.
const tiny = await ensureTinyModels()
const ckptPath = tiny.sd15
const diffusersDir = tiny.sd15Diffusers

describe('installing the tiny SD 1.5 through the fixtures', () => {
  let root: string
  let civitai: CivitaiFixtureServer
  let hf: HfFixtureServer
  let manager: DownloadManager

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-shared-dl-'))
    const models = await makeFixtureModels(path.join(root, 'models'))
    civitai = new CivitaiFixtureServer({
      models,
      extraModels: [{ path: ckptPath, modelName: 'Tiny SD 1.5', type: 'Checkpoint', baseModel: 'SD 1.5' }],
    })
    hf = new HfFixtureServer({
      models,
      extraRepos: [
        {
          id: 'atelier-test/tiny-sd15-diffusers',
          dir: diffusersDir,
          tags: ['diffusers', 'text-to-image'],
          libraryName: 'diffusers',
        },
      ],
    })
    await civitai.start()
    await hf.start()
    manager = await DownloadManager.open({ stateDir: path.join(root, 'state'), credentials: () => undefined })
  })

  afterAll(async () => {
    await manager.dispose()
    await civitai.close()
    await hf.close()
    fs.rmSync(root, { recursive: true, force: true })
  })

  it('downloads the checkpoint from the Civitai fixture and verifies it', async () => {
    const client = new CivitaiClient({ baseUrl: civitai.url })
    const page = await client.search({ query: 'Tiny SD 1.5' })
    const version = page.items[0]?.versions[0]
    const file = version?.files[0]
    expect(file?.name).toBe('tiny-sd15.safetensors')
    const dest = path.join(root, 'lib')
    const job = await manager.enqueue({
      url: file?.downloadUrl ?? '',
      destDir: dest,
      fileName: file?.name,
      expectedSha256: file?.sha256 ?? undefined,
      source: 'civitai',
    })
    const done = await manager.whenSettled(job.id)
    expect(done.state).toBe('done')
    expect(done.verified).toBe(true)
    const expected = crypto.createHash('sha256').update(fs.readFileSync(ckptPath)).digest('hex')
    expect(done.sha256).toBe(expected)
  })

  it('lists and downloads the diffusers folder from the HF fixture', async () => {
    const client = new HuggingFaceClient({ baseUrl: hf.url })
    const files = await client.diffusersFiles('atelier-test/tiny-sd15-diffusers')
    const paths = files.map((f) => f.path)
    expect(paths).toContain('model_index.json')
    expect(paths).toContain('unet/diffusion_pytorch_model.safetensors')
    expect(paths).toContain('tokenizer/vocab.json')
    const dest = path.join(root, 'pipeline')
    const jobs = await Promise.all(
      files.map((f) =>
        manager.enqueue({
          url: f.downloadUrl,
          destDir: path.join(dest, path.dirname(f.path)),
          fileName: f.name,
          expectedSha256: f.sha256 ?? undefined,
          expectedSize: f.sizeBytes ?? undefined,
          source: 'huggingface',
        }),
      ),
    )
    const done = await Promise.all(jobs.map((j) => manager.whenSettled(j.id)))
    expect(done.every((j) => j.state === 'done')).toBe(true)
    for (const f of files) {
      const a = fs.readFileSync(path.join(dest, f.path))
      const b = fs.readFileSync(path.join(diffusersDir, f.path))
      expect(a.equals(b), f.path).toBe(true)
    }
  })
})
