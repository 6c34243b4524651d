import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createApi } from './api'
import { dispatch } from './dispatch'
import { encodePng } from '../engine/image/codec'
import { insertPngText, readPngText } from '../engine/metadata/png-chunks'
import { repoRoot } from '../platform/paths'

/** The app's upscale action: `upscale:start` on a gallery image, progress as a job, result saved to the gallery. */

const homes: string[] = []
afterEach(() => {
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true })
})

async function waitForJob(
  services: ReturnType<typeof createApi>['services'],
  id: string,
): Promise<{ state: string; message?: string }> {
  for (let i = 0; i < 600; i++) {
    const j = services.jobs.list().find((x) => x.id === id)
    if (j && j.state !== 'running') return j
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('the job did not finish')
}

const shared = path.resolve(repoRoot(), '../shared/oracle-upscale/tiny-srvgg-x4.pth')

describe('upscale:start', () => {
  it('upscales a gallery image (Lanczos and a model), keeps its parameters, adds postprocessing fields', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-upscale-jobs-'))
    homes.push(home)
    const { services, handlers } = createApi({ home, mode: 'server', env: {} })
    try {
      const data = new Uint8Array(24 * 16 * 3).map((_, i) => (i * 7) % 256)
      const png = insertPngText(await encodePng({ data, width: 24, height: 16, channels: 3 }), [
        { keyword: 'parameters', text: 'a cat\nSteps: 20, Seed: 42, Size: 24x16' },
      ])
      const src = await services.gallery.save(png, 42)
      const progress: number[] = []
      const off = services.bus.subscribe((e) => {
        if (e.name === 'jobs:progress') progress.push(e.payload.progress)
      })
      const r = await dispatch(
        handlers,
        'upscale:start',
        { galleryId: src.id, upscaler: 'Lanczos', scale: 2 },
        { transport: 'test' },
      )
      expect(r.ok).toBe(true)
      const job = await waitForJob(services, (r as { value: { jobId: string } }).value.jobId)
      expect(job.state, job.message).toBe('done')
      expect(job.message).toMatch(/Saved \d+-42\.png \(48x32\)/)
      const list = await services.gallery.list()
      const out = list.find((i) => i.id !== src.id)
      expect(out).toMatchObject({ width: 48, height: 32, seed: 42 })
      const text = readPngText(await services.gallery.image(out?.id ?? '')).find(
        (t) => t.keyword === 'parameters',
      )?.text
      expect(text).toBe(
        'a cat\nSteps: 20, Seed: 42, Size: 24x16\nPostprocess upscale by: 2, Postprocess upscaler: Lanczos',
      )
      expect(progress.at(-1)).toBe(1)
      off()

      if (fs.existsSync(shared)) {
        // Requests name files inside the library only: the model goes into the library's upscalers folder.
        const inLibrary = path.join(services.settings.get().libraryRoot, 'upscalers', path.basename(shared))
        fs.mkdirSync(path.dirname(inLibrary), { recursive: true })
        fs.copyFileSync(shared, inLibrary)
        const m = await dispatch(
          handlers,
          'upscale:start',
          { galleryId: src.id, upscaler: inLibrary, scale: 4, tile: 8 },
          { transport: 'test' },
        )
        const j = await waitForJob(services, (m as { value: { jobId: string } }).value.jobId)
        expect(j.state, j.message).toBe('done')
        expect(j.message).toMatch(/\(96x64\)/)
      }
      const bad = await dispatch(
        handlers,
        'upscale:start',
        { upscaler: 'Lanczos', scale: 2 },
        { transport: 'test' },
      )
      expect(bad).toMatchObject({ ok: false, error: { code: 'invalid-input' } })
      const missing = await dispatch(
        handlers,
        'upscale:start',
        { galleryId: src.id, upscaler: 'nope-x4', scale: 4 },
        { transport: 'test' },
      )
      const jm = await waitForJob(services, (missing as { value: { jobId: string } }).value.jobId)
      expect(jm).toMatchObject({ state: 'failed' })
      expect(jm.message).toMatch(/Upscaler "nope-x4" was not found/)
    } finally {
      await services.dispose()
    }
  })
})
