import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, cliSources, type CliSources } from '../testing'

describe('atelier models', () => {
  let tmp = ''
  let site: CliSources
  let sources: CliSources['sources']

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-models-cli-'))
    site = await cliSources(tmp)
    sources = site.sources
  })

  afterAll(async () => {
    await site?.close()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('searches with filters, as a table and as JSON', async () => {
    const table = await cli('models', 'search', 'tiny', '--type', 'lora')
    expect(table.code).toBe(0)
    expect(table.out).toMatch(/^REF\s+NAME/)
    expect(table.out).toContain('civitai:1002')
    expect(table.out).not.toContain('Tiny Checkpoint')
    const json = await cli('models', 'search', '--source', 'hf', '--type', 'lora', '--json')
    const page = JSON.parse(json.out) as { items: { id: string }[] }
    expect(page.items.map((i) => i.id)).toEqual(expect.arrayContaining(['atelier-test/tiny-lora']))
    const bad = await cli('models', 'search', '--type', 'potato')
    expect(bad.code).toBe(1)
    expect(bad.err).toContain('unknown type "potato"')
  })

  it('installs by version id and by Hugging Face path, then shows the badges', async () => {
    const r = await cli('models', 'install', 'civitai:2003')
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(/Installed tinyStyleLora_v1 \(lora, sd-1, verified\)/)
    expect(fs.existsSync(path.join(tmp, 'home', 'models', 'loras', 'tinyStyleLora_v1.civitai.info'))).toBe(
      true,
    )
    const again = await cli('models', 'install', 'civitai:2003')
    expect(again.out).toContain('Already in the library')

    const hf = await cli('models', 'install', 'hf:atelier-test/tiny-xl-lora/pytorch_lora_weights.safetensors')
    expect(hf.code, hf.err).toBe(0)
    expect(hf.out).toMatch(/Installed pytorch_lora_weights \(lora, sdxl, verified\)/)

    const show = await cli('models', 'show', `${sources.env.ATELIER_CIVITAI_URL}/models/1002`)
    expect(show.code, show.err).toBe(0)
    expect(show.out).toContain('[installed]')
    expect(show.out).toContain('trigger words: tinystyle')

    const ea = await cli('models', 'install', 'civitai:2005')
    expect(ea.code).toBe(1)
    expect(ea.err).toContain('Early Access')
    const nope = await cli('models', 'install', 'https://example.com/model.safetensors')
    expect(nope.code).toBe(1)
    expect(nope.err).toContain('only Civitai and Hugging Face')
  })

  it('fetches the CLIP tokenizer into the data folder', async () => {
    const r = await cli('models', 'tokenizer')
    expect(r.code, r.err).toBe(0)
    const dir = r.out.trim()
    expect(dir).toBe(path.join(tmp, 'home', 'cache', 'tokenizers', 'openai-clip-vit-large-patch14'))
    expect(fs.readdirSync(dir).sort()).toEqual(['merges.txt', 'vocab.json'])
  })
})
