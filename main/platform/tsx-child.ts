import { spawn, type ChildProcess } from 'node:child_process'

/**
 * A TypeScript script in a child Node process (through tsx) with its own environment, its output collected:
 * how the tests run work that needs another process environment (a software Vulkan driver's
 * VK_ICD_FILENAMES, a fresh ORT) without changing their own.
 */

export interface TsxChildResult {
  code: number | null
  out: string
  err: string
}

export function runTsxChild(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  /** Called with the started process (e.g. to kill it when a test times out). */
  onSpawn?: (child: ChildProcess) => void,
): Promise<TsxChildResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    onSpawn?.(c)
    let out = ''
    let err = ''
    c.stdout.on('data', (d: Buffer) => (out += d.toString()))
    c.stderr.on('data', (d: Buffer) => (err += d.toString()))
    c.on('error', reject)
    c.on('exit', (code) => resolve({ code, out, err }))
  })
}

/** The last line of a child's stdout that is a JSON object or array, parsed; undefined where none is. */
export function lastJsonLine<T>(out: string): T | undefined {
  const line = out
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{') || l.startsWith('['))
    .pop()
  return line === undefined ? undefined : (JSON.parse(line) as T)
}
