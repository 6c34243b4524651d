import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { cliRun } from '../testing'

describe('atelier prompt', () => {
  it('--a1111-pairs: one json.dumps line per JSON string line', async () => {
    const input = ['"(chibi: 1.2), ((best quality)), [blurry]"', '', '"a BREAK b"', '"(x:1.2.3)"', ''].join(
      '\n',
    )
    const r = await cliRun(['prompt', '--a1111-pairs'], { stdin: input })
    expect(r.code).toBe(0)
    expect(r.out.split('\n')).toEqual([
      '[["chibi", 1.2], [", ", 1.0], ["best quality", 1.2100000000000002], [", ", 1.0], ["blurry", 0.9090909090909091]]',
      '[["a", 1.0], ["BREAK", -1], ["b", 1.0]]',
      '{"error": "ValueError: could not convert string to float: \'1.2.3\'"}',
      '',
    ])
  })

  it('breakdown: LoRA tags, edits, weights, Midjourney flags', async () => {
    const r = await cliRun([
      'prompt',
      '--steps',
      '10',
      'a [cat:dog:0.5] (fur: 1.3) <lora:style:0.8> --ar 3:2 --seed 7',
    ])
    expect(r.code).toBe(0)
    expect(r.out).toContain('size: 640 x 448')
    expect(r.out).toContain('seed: 7')
    expect(r.out).toContain('<lora:style:0.8>  ->  style: text encoder 0.8, UNet 0.8')
    expect(r.out).toContain('       5: "a cat (fur: 1.3)"')
    expect(r.out).toContain('      10: "a dog (fur: 1.3)"')
    expect(r.out).toMatch(/1\.3 {2}"fur"/)
  })

  it('names the embeddings of an --embeddings folder the prompt uses', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-prompt-emb-'))
    try {
      fs.writeFileSync(path.join(dir, 'EasyNeg.safetensors'), '')
      fs.writeFileSync(path.join(dir, 'other.pt'), '')
      const r = await cliRun(['prompt', '--embeddings', dir, 'a cat, (EasyNeg:1.2), othering'])
      expect(r.out).toContain('embeddings: EasyNeg\n')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('--json breakdown and bad arguments', async () => {
    const r = await cliRun(['prompt', '--json', '[a|b] c AND d :0.5'])
    const b = JSON.parse(r.out) as {
      subPrompts: { text: string; weight: number; schedule: [number, string][] }[]
    }
    expect(b.subPrompts.map((s) => s.weight)).toEqual([1, 0.5])
    expect(b.subPrompts[0]?.schedule.slice(0, 2)).toEqual([
      [1, 'a c'],
      [2, 'b c'],
    ])
    expect((await cliRun(['prompt'])).code).toBe(1)
    expect((await cliRun(['prompt', '--steps', '0', 'x'])).code).toBe(1)
  })
})
