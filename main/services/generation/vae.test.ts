/**
 * A separate VAE through the generation worker: resolved by name from the library folders, converted once,
 * swapped in without new UNet / text-encoder sessions, written to the infotext as A1111 writes it
 * (`VAE hash: <10 hex of SHA-256>, VAE: <file name>`), read back; a VAE of another family is refused.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { writeTinyVae } from '../../../bench/fixtures/tiny-vae'
import type { GenerateRequest } from '../../../preload/contract-types'
import { decodeImage } from '../../engine/image'
import { readImageParameters } from './parameters'
import type { FromWorker, WorkerJob } from './protocol'
import { createResolvers } from './resolve'
import { JobRunner } from './runner'

const SLOW = 300_000
let tmp = ''
let model = ''
let vaeFile = ''
let xlVae = ''

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-vae-job-'))
  model = (await ensureTinyModels()).sd15
  vaeFile = writeTinyVae(path.join(tmp, 'models', 'VAE', 'tiny-ft-mse.safetensors'), { seed: 21 })
  xlVae = writeTinyVae(path.join(tmp, 'models', 'VAE', 'sdxl_vae.safetensors'), { seed: 22 })
}, SLOW)
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const request: GenerateRequest = {
  mode: 'txt2img',
  model: 'tiny',
  prompt: 'a lighthouse at dusk',
  steps: 2,
  width: 64,
  height: 64,
  seed: 5,
  sampler: 'Euler',
}

describe('VAE override in jobs', () => {
  it('resolves a VAE by name or file name under the library folders, by path, and Automatic is none', async () => {
    const r = createResolvers({ roots: [path.join(tmp, 'models')] })
    expect(await r.vae?.('tiny-ft-mse')).toEqual({ path: vaeFile, name: 'tiny-ft-mse.safetensors' })
    expect(await r.vae?.('tiny-ft-mse.safetensors')).toMatchObject({ path: vaeFile })
    expect(await r.vae?.(vaeFile)).toMatchObject({ path: vaeFile, name: 'tiny-ft-mse.safetensors' })
    expect(() => r.vae?.('nope')).toThrow(/VAE "nope" was not found/)
    // Requests from the UI may not name files outside the library folders.
    const outside = createResolvers({ roots: [path.join(tmp, 'models')], allowPaths: false })
    const stray = writeTinyVae(path.join(tmp, 'elsewhere', 'stray.safetensors'), { seed: 1 })
    expect(() => outside.vae?.(stray)).toThrow(/not found/)
  })

  it(
    'decodes with the VAE, keeps the UNet and text encoder sessions, and writes VAE / VAE hash',
    async () => {
      const messages: FromWorker[] = []
      const runner = new JobRunner((m) => messages.push(m))
      const job = (id: string, vae?: string): WorkerJob => ({
        jobId: id,
        request: { ...request, ...(vae ? { vae } : {}) },
        seed: 5,
        model: { path: model, name: 'tiny-sd15' },
        loras: [],
        ...(vae ? { vae: { path: vae, name: path.basename(vae) } } : {}),
        cacheRoot: path.join(tmp, 'cache'),
        appVersion: 'test',
        executionProvider: 'cpu',
      })
      try {
        await runner.run(job('own'))
        const create = vi.spyOn(ort.InferenceSession, 'create')
        await runner.run(job('override', vaeFile))
        const opened = create.mock.calls.map((c) => String(c[0]))
        create.mockRestore()
        expect(messages.filter((m) => m.type === 'error')).toEqual([])
        // Only the VAE decoder opened anew (txt2img does not encode).
        expect(opened).toHaveLength(1)
        expect(opened[0]).toMatch(/vae_decoder/)

        const pngs = messages.flatMap((m) => (m.type === 'images' ? m.images.map((i) => i.png) : []))
        expect(pngs).toHaveLength(2)
        const [own, over] = await Promise.all(pngs.map((p) => decodeImage(p)))
        expect(Buffer.from(own?.data ?? []).equals(Buffer.from(over?.data ?? []))).toBe(false)

        const sha = crypto.createHash('sha256').update(fs.readFileSync(vaeFile)).digest('hex')
        const a = readImageParameters(pngs[0] as Uint8Array)
        const b = readImageParameters(pngs[1] as Uint8Array)
        expect(a.vae).toBeUndefined()
        expect(a.text).not.toMatch(/VAE/)
        expect(b).toMatchObject({ vae: 'tiny-ft-mse.safetensors', vaeHash: sha.slice(0, 10) })
        expect(b.text).toContain(
          `Model: tiny-sd15, VAE hash: ${sha.slice(0, 10)}, VAE: tiny-ft-mse.safetensors`,
        )

        // Back to Automatic: the checkpoint's own VAE again, same pixels as the first job.
        await runner.run(job('own-again'))
        const again = messages.flatMap((m) =>
          m.type === 'images' && m.jobId === 'own-again' ? m.images : [],
        )
        const px = await decodeImage(again[0]?.png as Uint8Array)
        expect(Buffer.from(px.data).equals(Buffer.from(own?.data ?? []))).toBe(true)
      } finally {
        runner.handle({ type: 'dispose' })
      }
    },
    SLOW,
  )

  it(
    'refuses an SDXL VAE on an SD 1.5 checkpoint with a clear error',
    async () => {
      const messages: FromWorker[] = []
      const runner = new JobRunner((m) => messages.push(m))
      try {
        await runner.run({
          jobId: 'xl',
          request: { ...request, vae: xlVae },
          seed: 5,
          model: { path: model, name: 'tiny-sd15' },
          loras: [],
          vae: { path: xlVae, name: 'sdxl_vae.safetensors' },
          cacheRoot: path.join(tmp, 'cache'),
          appVersion: 'test',
          executionProvider: 'cpu',
        })
        const err = messages.find((m) => m.type === 'error')
        expect(err).toMatchObject({
          error: {
            code: 'unsupported',
            message: expect.stringMatching(
              /VAE sdxl_vae\.safetensors is for SDXL, but the checkpoint tiny-sd15 is SD 1\.x/,
            ),
          },
        })
        expect(messages.some((m) => m.type === 'images')).toBe(false)
      } finally {
        runner.handle({ type: 'dispose' })
      }
    },
    SLOW,
  )
})
