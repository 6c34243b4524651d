/**
 * One path for the CLI and the app (issue 17): every command runs against a temp data folder whose settings name
 * a library folder other than `<home>/models`, and each one shows it used that folder — names resolve only there
 * (or in a folder added with `library scan`), installs land there, the stored key and ATELIER_CIVITAI_URL reach
 * Civitai, and conversions go to the data folder's cache. Models are the generated tiny ones (no ../shared),
 * except `reference`, which runs a golden set from ../shared and skips without it.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureTinyModels, type TinyModels } from '../../../bench/fixtures/tiny-models'
import { writeEmbeddingFixture } from '../../model-formats/embedding-fixtures'
import { repoRoot } from '../../platform/paths'
import { createServices } from '../../services/container'
import { readImageParameters } from '../../services/generation/parameters'
import { cli, cliSources, type CliRun, type CliSources } from '../testing'

const SLOW = 600_000
const ORACLE = path.resolve(repoRoot(), '../shared/oracle/manifest.json')
const haveOracle = fs.existsSync(ORACLE)
if (!haveOracle) console.warn(`one-path: the reference case is skipped, ${ORACLE} is absent`)

describe('every CLI command uses the settings of the data folder', () => {
  let tmp = ''
  let tiny: TinyModels
  let site: CliSources
  let home = ''
  let lib = '' // the library folder the settings name
  let webui = '' // a folder added with `library scan`
  let picture = ''
  let mask = ''
  // Run first (the other cases use the added folder and the Civitai metadata), checked in the first case.
  let scan: CliRun
  let match: CliRun
  const CKPT = 'onePathModel'
  const LORA = 'scannedStyle'
  const UPSCALER = 'libUpscaler'
  const EMBEDDING = 'libEmbedding'
  const size = ['--width', '64', '--height', '64', '--steps', '2', '--seed', '5', '--quiet']
  const params = (file: string): ReturnType<typeof readImageParameters> =>
    readImageParameters(new Uint8Array(fs.readFileSync(file)))
  const under = (dir: string, file: unknown): boolean =>
    typeof file === 'string' && path.resolve(file).startsWith(path.resolve(dir) + path.sep)

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-one-path-'))
    tiny = await ensureTinyModels()
    lib = path.join(tmp, 'my library')
    webui = path.join(tmp, 'webui')
    const ckpt = path.join(lib, 'checkpoints', `${CKPT}.safetensors`)
    fs.mkdirSync(path.dirname(ckpt), { recursive: true })
    fs.copyFileSync(tiny.sd15, ckpt)
    for (const d of ['upscalers', 'embeddings']) fs.mkdirSync(path.join(lib, d), { recursive: true })
    fs.copyFileSync(tiny.upscaler, path.join(lib, 'upscalers', `${UPSCALER}.safetensors`))
    await writeEmbeddingFixture(path.join(lib, 'embeddings', `${EMBEDDING}.safetensors`), 'safetensors', {
      vectors: 2,
      width: 64,
      seed: 3,
    })
    fs.mkdirSync(path.join(webui, 'models', 'Lora'), { recursive: true })
    fs.copyFileSync(tiny.lora, path.join(webui, 'models', 'Lora', `${LORA}.safetensors`))
    // The Civitai fixture knows the checkpoint's hash (for `library match`).
    site = await cliSources(tmp, { checkpoint: ckpt })
    home = site.home
    // The data folder's settings and stored key, written as the app writes them.
    const services = createServices({ home, mode: 'server', env: {} })
    services.settings.update({ libraryRoot: lib })
    services.secrets.set('civitaiApiKey', 'civitai-test-key')
    await services.dispose()
    const w = 64
    const data = new Uint8Array(w * w * 3).map((_, i) => (i * 29) % 256)
    picture = path.join(tmp, 'in.png')
    await sharp(Buffer.from(data), { raw: { width: w, height: w, channels: 3 } })
      .png()
      .toFile(picture)
    mask = path.join(tmp, 'mask.png')
    await sharp({ create: { width: w, height: w, channels: 3, background: '#000' } })
      .composite([
        {
          input: await sharp({
            create: { width: 32, height: 32, channels: 3, background: '#fff' },
          })
            .png()
            .toBuffer(),
          left: 16,
          top: 16,
        },
      ])
      .png()
      .toFile(mask)
    scan = await cli('library', 'scan', webui)
    match = await cli('library', 'match', '--json')
  }, SLOW)

  afterAll(async () => {
    await site?.close()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('library scan / list / match: the settings folder and the added one, Civitai with the stored key', async () => {
    expect(scan.code, scan.err).toBe(0)
    expect(scan.out).toMatch(/^4 models \(4 new, 0 gone\)/)
    const list = await cli('library', 'list', '--json')
    const rows = JSON.parse(list.out) as { name: string; type: string; path: string }[]
    const byName = new Map(rows.map((r) => [r.name, r]))
    expect(byName.get(CKPT)?.type).toBe('checkpoint')
    expect(under(lib, byName.get(CKPT)?.path)).toBe(true)
    expect(under(lib, byName.get(UPSCALER)?.path)).toBe(true)
    expect(byName.get(EMBEDDING)?.type).toBe('embedding')
    expect(under(webui, byName.get(LORA)?.path)).toBe(true)
    // The default library folder was never made.
    expect(fs.existsSync(path.join(home, 'models'))).toBe(false)

    expect(match.code, match.err).toBe(0)
    expect(JSON.parse(match.out)).toMatchObject({ matched: 1 })
    expect(fs.existsSync(path.join(lib, 'checkpoints', `${CKPT}.civitai.info`))).toBe(true)
    const byHash = site.sources.civitai.log.filter((r) => r.url.includes('/model-versions/by-hash'))
    expect(byHash.length).toBeGreaterThan(0)
    expect(byHash.every((r) => r.headers.authorization === 'Bearer civitai-test-key')).toBe(true)
  })

  it('probe resolves a library name to the file in the settings folder', async () => {
    const r = await cli('probe', '--no-hash', UPSCALER)
    expect(r.code, r.err).toBe(0)
    const json = JSON.parse(r.out) as { type: string; path: string }
    expect(json.type).toBe('upscaler')
    expect(json.path).toBe(path.join(lib, 'upscalers', `${UPSCALER}.safetensors`))
  })

  it('prompt knows the library embeddings and reads no --embeddings folder', async () => {
    const r = await cli('prompt', `a cat, ${EMBEDDING}`)
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain(`embeddings: ${EMBEDDING}\n`)
  })

  it(
    'txt2img / img2img / inpaint by library name; a checkpoint path takes LoRAs and embeddings from the library',
    async () => {
      /** `atelier <mode> --model <model> … --out <tmp>/<name>.png`; the written file. */
      const run = async (mode: string, model: string, name: string, ...args: string[]): Promise<string> => {
        const out = path.join(tmp, `${name}.png`)
        const r = await cli(mode, '--model', model, ...args, ...size, '--out', out)
        expect(r.code, `${name}: ${r.err}`).toBe(0)
        return out
      }
      const t2i = await run('txt2img', CKPT, 't2i', '--prompt', 'a cat', '--lora', `${LORA}:0.7`)
      expect(params(t2i).model).toBe(CKPT)
      expect(params(t2i).text).toContain(LORA)
      // Conversions go to the data folder's cache.
      expect(fs.readdirSync(path.join(home, 'cache', 'onnx')).length).toBeGreaterThan(0)

      // `--model path/file.safetensors`: the LoRA (prompt tag and flag) still comes from the library.
      const tagged = await run('txt2img', tiny.sd15, 'by-path', '--prompt', `a cat <lora:${LORA}:0.7>`)
      expect(params(tagged).text).toContain(`<lora:${LORA}:0.7>`)
      const flagged = await run(
        'txt2img',
        tiny.sd15,
        'by-path-flag',
        '--prompt',
        'a cat',
        '--lora',
        `${LORA}:0.7`,
      )
      const pixels = (f: string): Promise<Buffer> => sharp(f).raw().toBuffer()
      expect((await pixels(flagged)).equals(await pixels(tagged))).toBe(true)
      // … and so do the embeddings (the library's, by file name in the prompt).
      const embedded = await run('txt2img', tiny.sd15, 'by-path-emb', '--prompt', `a cat, ${EMBEDDING}`)
      expect(params(embedded).text).toMatch(new RegExp(`TI hashes: "?${EMBEDDING}: [0-9a-f]{12}`))

      const i2i = await run(
        'img2img',
        CKPT,
        'i2i',
        '--image',
        picture,
        '--prompt',
        'a cat',
        '--strength',
        '0.5',
      )
      expect(params(i2i).model).toBe(CKPT)
      const inp = await run(
        'inpaint',
        CKPT,
        'inpaint',
        '--image',
        picture,
        '--mask',
        mask,
        '--prompt',
        'a hat',
      )
      expect(params(inp).model).toBe(CKPT)
    },
    SLOW,
  )

  it(
    'imagine by library name',
    async () => {
      const grid = path.join(tmp, 'grid')
      const r = await cli(
        'imagine',
        'a cat --ar 1:1 --seed 9',
        '--model',
        CKPT,
        '--batch',
        '1',
        '--steps',
        '1',
        '--quiet',
        '--out',
        grid,
      )
      expect(r.code, r.err).toBe(0)
      expect(params(path.join(grid, '1.png')).model).toBe(CKPT)
    },
    SLOW,
  )

  it('upscale with the library upscaler by name', async () => {
    const out = path.join(tmp, 'up.png')
    const r = await cli('upscale', '--model', UPSCALER, '--image', picture, '--out', out, '--provider', 'cpu')
    expect(r.code, r.err).toBe(0)
    expect(r.err).toContain(`${UPSCALER}.safetensors`)
    expect((await sharp(out).metadata()).width).toBe(128)
  })

  it('convert a library checkpoint with a scanned LoRA into the data folder cache', async () => {
    const r = await cli('convert', CKPT, '--lora', `${LORA}:0.5`)
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain(path.join(home, 'cache', 'onnx'))
    expect(r.out).toContain(path.join(webui, 'models', 'Lora', `${LORA}.safetensors`))
  })

  it('models search / show / install: the settings folder receives the install', async () => {
    const search = await cli('models', 'search', 'tiny', '--type', 'lora')
    expect(search.code, search.err).toBe(0)
    expect(search.out).toContain('civitai:1002')
    const install = await cli('models', 'install', 'civitai:2003')
    expect(install.code, install.err).toBe(0)
    expect(fs.existsSync(path.join(lib, 'loras', 'tinyStyleLora_v1.safetensors'))).toBe(true)
    expect(fs.existsSync(path.join(home, 'models'))).toBe(false)
    // Commands that only read the library leave the download queue alone (no resume, no rewrite).
    const queueFile = path.join(home, 'downloads', 'downloads.json')
    const before = fs.statSync(queueFile).mtimeMs
    expect((await cli('library', 'list')).code).toBe(0)
    expect((await cli('probe', '--no-hash', 'tinyStyleLora_v1')).code).toBe(0)
    expect(fs.statSync(queueFile).mtimeMs).toBe(before)
    const show = await cli('models', 'show', 'civitai:1002')
    expect(show.code, show.err).toBe(0)
    expect(show.out).toContain('[installed]')
    // The checkpoint `library match` identified shows as installed too.
    const ckptModel = site.sources.civitai.findVersion(site.sources.extraCheckpointVersionId ?? 0)?.model
    const shown = await cli('models', 'show', `civitai:${ckptModel?.id}`)
    expect(shown.out).toContain('[installed]')
  })

  it.skipIf(!haveOracle)(
    'reference converts into the data folder cache',
    async () => {
      const before = fs.readdirSync(path.join(home, 'cache', 'onnx')).length
      const r = await cli(
        'reference',
        ORACLE,
        '--case',
        'text_encoder',
        '--out',
        path.join(tmp, 'ref'),
        '--quiet',
      )
      expect(r.code, r.err).toBe(0)
      expect(r.out).toMatch(/1 pass/)
      expect(fs.readdirSync(path.join(home, 'cache', 'onnx')).length).toBeGreaterThan(before)
    },
    SLOW,
  )
})
