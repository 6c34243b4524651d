/**
 * The lint enforces the layers and the absence of cycles: a planted cross-layer import and a planted cycle fail
 * it, with the rule's message. The planted files live in a temporary folder inside main/ (the rules resolve real
 * paths) and are removed afterwards.
 */
import fs from 'node:fs'
import path from 'node:path'
import { ESLint } from 'eslint'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = path.resolve(import.meta.dirname, '..')
const planted = (layer: string): string => path.join(root, 'main', layer, `__planted-${process.pid}`)
const dirs = ['engine', 'library', 'model-formats', 'services', 'cli'].map(planted)

let eslint: ESLint
async function lint(file: string, text: string): Promise<string[]> {
  fs.writeFileSync(file, text)
  const [result] = await eslint.lintFiles([file])
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`)
}

beforeAll(() => {
  eslint = new ESLint({ cwd: root })
  for (const d of dirs) fs.mkdirSync(d, { recursive: true })
})
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})

describe('layer rules', () => {
  it('fails engine -> library, library -> engine and model-formats -> engine imports', async () => {
    const e = await lint(
      path.join(planted('engine'), 'x.ts'),
      "import { Library } from '../../library/library'\nexport const x = Library\n",
    )
    expect(e.join('\n')).toMatch(
      /import-x\/no-restricted-paths: .*engine\/ and library\/ meet only in services/,
    )
    const l = await lint(
      path.join(planted('library'), 'x.ts'),
      "export { convertCheckpoint } from '../../engine/convert/convert'\n",
    )
    expect(l.join('\n')).toMatch(/import-x\/no-restricted-paths/)
    const m = await lint(
      path.join(planted('model-formats'), 'x.ts'),
      "import { buildUnet } from '../../engine/graphs/unet'\nexport const x = buildUnet\n",
    )
    expect(m.join('\n')).toMatch(/model-formats\/ must not import a layer above it/)
  }, 120_000)

  it('fails services -> cli and a door reaching below services', async () => {
    const s = await lint(
      path.join(planted('services'), 'x.ts'),
      "import { runCli } from '../../cli/index'\nexport const x = runCli\n",
    )
    expect(s.join('\n')).toMatch(/services\/ must not import a layer above it/)
    const c = await lint(
      path.join(planted('cli'), 'x.ts'),
      "import { Library } from '../../library/library'\nexport const x = Library\n",
    )
    expect(c.join('\n')).toMatch(/A door .* goes through services\//)
  }, 120_000)

  it('holds for every door file (no exceptions), and a type-only import below services fails too', async () => {
    const doorFiles = ['cli', 'server', 'ipc', 'app']
      .flatMap((d) =>
        fs
          .readdirSync(path.join(root, 'main', d), { recursive: true, encoding: 'utf8' })
          .map((f) => `main/${d}/${f}`),
      )
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.includes('__planted'))
    expect(doorFiles).toContain('main/cli/commands/generate.ts')
    for (const f of doorFiles) {
      const config = (await eslint.calculateConfigForFile(path.join(root, f))) as {
        rules?: Record<string, [string, { zones: { message: string }[] }]>
      }
      const zones = config.rules?.['import-x/no-restricted-paths']?.[1].zones ?? []
      expect(
        zones.some((z) => /A door .* goes through services/.test(z.message)),
        f,
      ).toBe(true)
    }
    const commands = path.join(root, 'main', 'cli', 'commands')
    const c = await lint(
      path.join(commands, `__planted-${process.pid}.ts`),
      "import type { ModelRecord } from '../../library/types'\nexport type X = ModelRecord\n",
    ).finally(() => fs.rmSync(path.join(commands, `__planted-${process.pid}.ts`), { force: true }))
    expect(c.join('\n')).toMatch(/A door .* goes through services\//)
  }, 120_000)

  it('passes imports that go down the layers', async () => {
    const ok = await lint(
      path.join(planted('engine'), 'ok.ts'),
      "import { readHeader } from '../../model-formats/safetensors'\nexport const x = readHeader\n",
    )
    expect(ok).toEqual([])
  }, 120_000)
})

describe('cycle check', () => {
  it('fails a two-file import cycle and passes a type-only back edge', async () => {
    const dir = planted('engine')
    fs.writeFileSync(
      path.join(dir, 'b.ts'),
      "import { a } from './a'\nexport const b = (): number => a() + 1\n",
    )
    const a = await lint(
      path.join(dir, 'a.ts'),
      "import { b } from './b'\nexport const a = (): number => b() - 1\n",
    )
    expect(a.join('\n')).toMatch(/import-x\/no-cycle: Dependency cycle/)
    fs.writeFileSync(
      path.join(dir, 'd.ts'),
      "import type { c } from './c'\nexport const d = (f: typeof c): number => f() + 1\n",
    )
    const typeOnly = await lint(
      path.join(dir, 'c.ts'),
      "import { d } from './d'\nexport const c = (): number => d(c) - 1\n",
    )
    expect(typeOnly).toEqual([])
  }, 120_000)
})
