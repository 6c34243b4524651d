/**
 * What the CLI tests share: run `atelier …` in-process with its output captured, set env variables for a test
 * file and put them back, and point the CLI at the Civitai / Hugging Face fixtures with a data folder of its own.
 *
 *   const r = await cli('library', 'list', '--json')            // { code, out, err }
 *   const env = envScope(); env.set('ATELIER_HOME', dir); …; env.restore()
 *   const site = await cliSources(tmp, { checkpoint })           // sets ATELIER_HOME and the fixture URLs
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { vi } from 'vitest'
import { startModelSources, type ModelSources } from '../../e2e/fixtures/model-sources'
import { runCli } from './index'

export interface CliRun {
  code: number
  out: string
  err: string
}

let scratchHome: string | undefined

/** A data folder for runs whose test sets none, so a test never writes into the user's real one. */
function testHome(): string {
  if (!scratchHome) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-cli-test-home-'))
    scratchHome = dir
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  }
  return scratchHome
}

/**
 * `atelier <args>` in this process; stdout and stderr are captured (not printed), `stdin` replaces stdin.
 * Without ATELIER_HOME (and `--home`), the run gets a scratch data folder of this test file.
 */
export async function cliRun(args: string[], opts: { stdin?: string } = {}): Promise<CliRun> {
  const env = envScope()
  if (!process.env.ATELIER_HOME) env.set('ATELIER_HOME', testHome())
  let out = ''
  let err = ''
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s)
    return true
  })
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    err += String(s)
    return true
  })
  const realStdin = Object.getOwnPropertyDescriptor(process, 'stdin')
  if (opts.stdin !== undefined)
    Object.defineProperty(process, 'stdin', { value: Readable.from([opts.stdin]), configurable: true })
  try {
    return { code: await runCli(args), out, err }
  } finally {
    if (opts.stdin !== undefined && realStdin) Object.defineProperty(process, 'stdin', realStdin)
    o.mockRestore()
    e.mockRestore()
    env.restore()
  }
}

/** `cli('models', 'search', 'x')`: cliRun with the arguments spread. */
export function cli(...args: string[]): Promise<CliRun> {
  return cliRun(args)
}

export interface EnvScope {
  /** Set (or with undefined, remove) a variable; the first change of each name remembers its old value. */
  set(name: string, value: string | undefined): void
  /** Put every changed variable back. */
  restore(): void
}

export function envScope(): EnvScope {
  const saved = new Map<string, string | undefined>()
  return {
    set(name, value) {
      if (!saved.has(name)) saved.set(name, process.env[name])
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    },
    restore() {
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
      saved.clear()
    },
  }
}

export interface CliSources {
  sources: ModelSources
  /** The data folder the CLI uses (ATELIER_HOME): `<tmp>/home`. */
  home: string
  /** Stops the fixtures and restores the env. */
  close(): Promise<void>
}

/**
 * Starts the Civitai and Hugging Face fixtures (startModelSources) and points the CLI at them: ATELIER_HOME
 * `<tmp>/home`, ATELIER_CIVITAI_URL / ATELIER_HF_URL at the fixtures, no keys from the environment.
 */
export async function cliSources(
  tmp: string,
  opts: Parameters<typeof startModelSources>[1] = {},
): Promise<CliSources> {
  const sources = await startModelSources(tmp, opts)
  const home = path.join(tmp, 'home')
  const env = envScope()
  env.set('ATELIER_HOME', home)
  env.set('ATELIER_CIVITAI_URL', sources.env.ATELIER_CIVITAI_URL)
  env.set('ATELIER_HF_URL', sources.env.ATELIER_HF_URL)
  env.set('ATELIER_CIVITAI_KEY', undefined)
  env.set('ATELIER_HF_TOKEN', undefined)
  return {
    sources,
    home,
    close: async () => {
      env.restore()
      await sources.close()
    },
  }
}
