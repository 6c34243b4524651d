import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { HashFileFn } from '../main/library/hashing'
import { hashFile } from '../main/library/hashing'
import { Library } from '../main/library/library'
import { tinyLora } from '../main/library/test-support'

/**
 * Library scan cost: a library of N tiny LoRA files (kohya keys, ~4.5 KB each) spread over a few subfolders,
 * scanned once (probe + hash + sidecar), rescanned unchanged (target < 2 s for 2,000 files, no file read),
 * and rebuilt from the sidecars after the index is deleted (no hashing). Prints JSON.
 *
 *   npx tsx bench/library-scan.ts [--files 2000] [--keep]
 */

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

async function main(): Promise<void> {
  const files = Number(arg('files', '2000'))
  const home = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'atelier-bench-library-'))
  const loras = path.join(home, 'models', 'loras')
  let hashed = 0
  const counting: HashFileFn = async (f, o) => {
    hashed++
    return hashFile(f, o)
  }
  try {
    let t = performance.now()
    for (let i = 0; i < files; i++) {
      const family = i % 3 === 0 ? 'sdxl' : 'sd-1'
      await tinyLora(path.join(loras, `set-${i % 20}`, `lora-${i}.safetensors`), family, { seed: i + 1 })
    }
    const createMs = performance.now() - t

    const lib = await Library.open(home, { hashFile: counting })
    t = performance.now()
    const first = await lib.scan()
    const firstMs = performance.now() - t
    const firstHashed = hashed

    hashed = 0
    const rescans: number[] = []
    for (let k = 0; k < 3; k++) {
      t = performance.now()
      const s = await lib.scan()
      rescans.push(performance.now() - t)
      if (s.hashed !== 0 || s.reused !== files) throw new Error(`rescan touched files: ${JSON.stringify(s)}`)
    }
    await lib.dispose()

    // A fresh process: open (reads library.json) + rescan.
    t = performance.now()
    const lib2 = await Library.open(home, { hashFile: counting })
    const openMs = performance.now() - t
    t = performance.now()
    await lib2.scan()
    const coldRescanMs = performance.now() - t
    await lib2.dispose()

    // Index deleted: rebuilt from the sidecars.
    await fs.promises.rm(path.join(home, 'library.json'))
    const lib3 = await Library.open(home, { hashFile: counting })
    t = performance.now()
    const rebuilt = await lib3.scan()
    const rebuildMs = performance.now() - t
    await lib3.dispose()

    const sorted = [...rescans].sort((a, b) => a - b)
    const median = sorted[1] ?? 0
    const indexBytes = (await fs.promises.stat(path.join(home, 'library.json'))).size
    const out = {
      bench: 'library-scan',
      files,
      bytesPerFile: (await fs.promises.stat(path.join(loras, 'set-0', 'lora-0.safetensors'))).size,
      createMs: Math.round(createMs),
      firstScan: {
        ms: Math.round(firstMs),
        hashed: firstHashed,
        models: first.models,
        problems: first.problems,
      },
      rescanUnchanged: {
        medianMs: Math.round(median),
        runsMs: rescans.map(Math.round),
        hashed,
        targetMs: 2000,
      },
      openIndexMs: Math.round(openMs),
      freshProcessRescanMs: Math.round(coldRescanMs),
      rebuildFromSidecars: { ms: Math.round(rebuildMs), hashed: rebuilt.hashed, models: rebuilt.models },
      indexBytes,
      pass: median < 2000 && hashed === 0 && rebuilt.hashed === 0,
      node: process.version,
      cpus: os.cpus().length,
    }
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
  } finally {
    if (!process.argv.includes('--keep')) await fs.promises.rm(home, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
