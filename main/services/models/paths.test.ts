import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { DownloadRequest } from '../../downloads/types'
import { isInside, isReallyInside, PathEscapeError, resolveInside } from '../../platform/contain'
import { Installer, type InstallerDeps } from './installer'

describe('containment helpers (attack 8)', () => {
  it('resolveInside accepts plain relative paths and refuses every escape', () => {
    expect(resolveInside('/data/x', 'unet/diffusion_pytorch_model.safetensors')).toBe(
      path.resolve('/data/x/unet/diffusion_pytorch_model.safetensors'),
    )
    for (const bad of [
      'unet/../../../../outside/evil.txt',
      '../evil',
      '/etc/passwd',
      'C:/x',
      'unet\\..\\..\\evil',
      'a//b',
      './a',
      'a/./b',
      '',
      'x\0y',
    ])
      expect(() => resolveInside('/data/x', bad), bad).toThrow(PathEscapeError)
    expect(isInside('/a/b', '/a/b/c')).toBe(true)
    expect(isInside('/a/b', '/a/bc')).toBe(false)
    expect(isReallyInside(['/nonexistent-root'], '/etc/passwd')).toBe(false)
  })
})

describe('Hugging Face diffusers-folder install (attack 8)', () => {
  it('refuses a tree that lists unet/../../../../outside/evil.txt and downloads nothing', async () => {
    const enqueued: DownloadRequest[] = []
    const deps = {
      library: { list: () => [] },
      downloads: {
        list: () => [],
        enqueue: async (req: DownloadRequest) => {
          enqueued.push(req)
          return { id: String(enqueued.length) }
        },
      },
      statuses: { get: () => undefined, set: () => undefined },
      stagingDir: '/tmp/atelier-staging-test',
      fetchImage: async () => ({ bytes: new Uint8Array(0), contentType: 'image/png' }),
      changed: () => undefined,
      log: () => undefined,
    } as unknown as InstallerDeps
    const files = [
      {
        path: 'model_index.json',
        name: 'model_index.json',
        downloadUrl: 'http://hf.test/a',
        sha256: null,
        sizeBytes: 2,
      },
      {
        path: 'unet/../../../../outside/evil.txt',
        name: 'evil.txt',
        downloadUrl: 'http://hf.test/b',
        sha256: null,
        sizeBytes: 2,
      },
    ]
    const model = {
      id: 'evil/repo',
      name: '../../repo',
      gated: false,
      kind: 'checkpoint',
      versions: [{ id: 'c0ffee', files: [{ path: 'model_index.json', primary: false }] }],
    }
    const client = { getModel: async () => model, diffusersFiles: async () => files }
    const installer = new Installer(deps)
    await expect(
      installer.huggingface(client as never, 'evil/repo', undefined, undefined, false),
    ).rejects.toThrow(/leaves the model folder \("unet\/\.\.\/\.\.\/\.\.\/\.\.\/outside\/evil\.txt"\)/)
    expect(enqueued).toEqual([])
    // a clean tree goes through, every file inside the (sanitised) folder
    files.pop()
    files.push({
      path: 'unet/w.safetensors',
      name: 'w.safetensors',
      downloadUrl: 'http://hf.test/c',
      sha256: null,
      sizeBytes: 2,
    })
    await installer.huggingface(client as never, 'evil/repo', undefined, undefined, false)
    expect(enqueued.map((r) => path.join(r.destDir, r.fileName ?? ''))).toEqual([
      expect.stringMatching(/^\/tmp\/atelier-staging-test\/folders\/\w+\/_\._repo\/model_index\.json$/),
      expect.stringMatching(/^\/tmp\/atelier-staging-test\/folders\/\w+\/_\._repo\/unet\/w\.safetensors$/),
    ])
  })
})
