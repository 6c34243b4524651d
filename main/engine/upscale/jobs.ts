import path from 'node:path'
import { decodeImageWithAlpha, encodePng } from '../image/codec'
import { insertPngText, readPngText } from '../metadata/png-chunks'
import type { UpscalerChoice } from './service'
import { resolveUpscaler, UpscaleService } from './service'
import type { SessionConfig } from '../runtime/session'

/**
 * Upscale jobs for the app (the Gallery's and Img2img's "Upscale" action): a gallery image or PNG bytes,
 * an upscaler name (Lanczos, or a library upscaler), a factor; runs as a cancellable job with tile
 * progress, and saves the result as a new gallery image that keeps the source's generation parameters
 * plus A1111's postprocessing fields ("Postprocess upscale by", "Postprocess upscaler").
 */

export interface UpscaleJobRequest {
  galleryId?: string
  png?: Uint8Array
  upscaler: string
  scale: number
  tile?: number
  tilePad?: number
}

interface JobContextLike {
  signal: AbortSignal
  report(progress: number, message?: string): void
}

export interface UpscaleJobDeps {
  jobs: {
    start(kind: string, label: string, work: (ctx: JobContextLike) => Promise<string | void>): { id: string }
  }
  gallery: {
    image(id: string): Promise<Uint8Array>
    save(png: Uint8Array, seed: number): Promise<{ id: string; fileName: string }>
  }
  /** Upscaler name -> model file (library names); keywords come back unchanged. */
  resolve?: (name: string) => string | Promise<string>
  service?: UpscaleService
  /** Session settings (execution provider) read when a job starts. */
  session?: () => SessionConfig
  /** After a result is saved (the app refreshes the gallery). */
  onSaved?: (saved: { id: string; fileName: string }) => void
}

export class UpscaleJobs {
  private readonly service: UpscaleService

  constructor(private readonly d: UpscaleJobDeps) {
    this.service = d.service ?? new UpscaleService()
  }

  start(req: UpscaleJobRequest): { jobId: string } {
    if (!req.galleryId && !req.png) throw new Error('upscale: give a gallery image or PNG bytes')
    const what = req.galleryId ?? 'image'
    const label = `Upscale ${what} x${req.scale} (${path.basename(req.upscaler)})`
    const job = this.d.jobs.start('upscale', label, async (ctx) => {
      const bytes = req.png ?? (await this.d.gallery.image(req.galleryId as string))
      const img = await decodeImageWithAlpha(bytes, { name: what })
      const file = this.d.resolve ? await this.d.resolve(req.upscaler) : req.upscaler
      const choice: UpscalerChoice = resolveUpscaler(file)
      ctx.report(0, 'Loading the upscaler…')
      const out = await this.service.upscale(img, {
        upscaler: choice,
        scale: req.scale,
        tile: req.tile,
        tilePad: req.tilePad,
        ...(this.d.session ? { session: this.d.session() } : {}),
        signal: ctx.signal,
        onProgress: (p) => ctx.report(p.done / p.total, `Upscaling: tile ${p.done}/${p.total}`),
      })
      const label = choice.kind === 'model' ? path.basename(choice.file).replace(/\.[^.]+$/, '') : 'Lanczos'
      const params = readPngText(bytes).find((t) => t.keyword === 'parameters')?.text
      const extra = `Postprocess upscale by: ${req.scale}, Postprocess upscaler: ${label}`
      let png: Uint8Array = await encodePng(out)
      png = insertPngText(png, [
        { keyword: 'parameters', text: params ? `${params}\n${extra}` : extra },
        { keyword: 'postprocessing', text: extra },
      ])
      const seed = /-(\d+)(?:-\d+)?$/.exec(req.galleryId ?? '')?.[1]
      const saved = await this.d.gallery.save(png, seed ? Number(seed) : 0)
      this.d.onSaved?.(saved)
      return `Saved ${saved.fileName} (${out.width}x${out.height})`
    })
    return { jobId: job.id }
  }

  async dispose(): Promise<void> {
    await this.service.release()
  }
}
