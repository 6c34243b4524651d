import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeAdapterFile } from '../../../e2e/fixtures/lycoris-files'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { cli, cliSources, type CliSources } from '../testing'

/**
 * A LoCon, a LoHa, a LoKr and a DoRA file (bytes generated here) install from the Civitai fixture as LoRA
 * library entries and generate from the CLI, by `<lora:name:w>` in the prompt and by `--lora name:w`.
 */

// The seeded tiny SD 1.5 the tests write themselves (no ../shared needed).
const CKPT = (await ensureTinyModels()).sd15

const ADAPTERS = [
  { kind: 'locon', type: 'LoCon', file: 'tinyLocon_v1.safetensors', name: 'Tiny LoCon' },
  { kind: 'loha', type: 'LyCORIS', file: 'tinyLoha_v1.safetensors', name: 'Tiny LoHa' },
  { kind: 'lokr', type: 'LyCORIS', file: 'tinyLokr_v1.safetensors', name: 'Tiny LoKr' },
  { kind: 'dora', type: 'DoRA', file: 'tinyDora_v1.safetensors', name: 'Tiny DoRA' },
] as const

describe('LyCORIS from the Civitai fixture to an image', () => {
  let tmp = ''
  let site: CliSources | undefined
  let sources: CliSources['sources']

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-lyco-cli-'))
    const gen = path.join(tmp, 'generated')
    fs.mkdirSync(gen)
    for (const [i, a] of ADAPTERS.entries())
      await writeAdapterFile(path.join(gen, a.file), a.kind, undefined, { seed: 40 + i, scale: 0.4 })
    site = await cliSources(tmp, {
      checkpoint: CKPT,
      extraModels: ADAPTERS.map((a) => ({
        path: path.join(gen, a.file),
        modelName: a.name,
        type: a.type,
        baseModel: 'SD 1.5',
        fileName: a.file,
      })),
    })
    sources = site.sources
  }, 120_000)

  afterAll(async () => {
    await site?.close()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('installs each file as a LoRA-type library entry', async () => {
    const ck = await cli('models', 'install', `civitai:${sources.extraCheckpointVersionId}`)
    expect(ck.code, ck.err).toBe(0)
    for (const [i, a] of ADAPTERS.entries()) {
      const r = await cli('models', 'install', `civitai:${sources.extraVersionIds[i]}`)
      expect(r.code, r.err).toBe(0)
      expect(r.out).toMatch(
        new RegExp(`Installed ${a.file.replace('.safetensors', '')} \\(lora, sd-1, verified\\)`),
      )
    }
    const list = await cli('library', 'list', '--json')
    const entries = JSON.parse(list.out) as { name: string; type: string; civitai?: { modelType?: string } }[]
    for (const a of ADAPTERS) {
      const e = entries.find((x) => x.name === a.file.replace('.safetensors', ''))
      expect(e?.type, a.file).toBe('lora')
      expect(e?.civitai?.modelType, a.file).toBe(a.type)
    }
  }, 120_000)

  it('generates with each one from the prompt tag and from --lora; the image changes', async () => {
    const gen = async (out: string, ...extra: string[]): Promise<Buffer> => {
      const r = await cli(
        'txt2img',
        '--model',
        'tinySD15_v1',
        '--steps',
        '2',
        '--width',
        '64',
        '--height',
        '64',
        '--seed',
        '7',
        '--out',
        path.join(tmp, out),
        ...extra,
      )
      expect(r.code, `${out}: ${r.err}`).toBe(0)
      return sharp(path.join(tmp, out)).raw().toBuffer()
    }
    const base = await gen('base.png', '--prompt', 'a cat')
    for (const a of ADAPTERS) {
      const stem = a.file.replace('.safetensors', '')
      const tagged = await gen(`${a.kind}-tag.png`, '--prompt', `a cat <lora:${stem}:0.8>`)
      const flagged = await gen(`${a.kind}-flag.png`, '--prompt', 'a cat', '--lora', `${stem}:0.8`)
      expect(tagged.equals(base), `${a.kind} changes the image`).toBe(false)
      // Same adapter and multiplier either way: the same pixels.
      expect(flagged.equals(tagged), `${a.kind}: tag and --lora agree`).toBe(true)
      const meta = await sharp(path.join(tmp, `${a.kind}-tag.png`)).metadata()
      const text = (meta.comments ?? []).map((c) => c.text).join('\n')
      expect(text).toContain(`<lora:${stem}:0.8>`)
    }
  }, 600_000)
})
