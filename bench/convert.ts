import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { convertCheckpoint } from '../main/engine/convert/convert'
import type { ConvertOptions } from '../main/engine/convert/convert'
import { ensureFullSd15 } from './fixtures/full-sd15'
import { loadAverage } from './unet-common'

/**
 * Conversion of the full-size random SD 1.5 checkpoint (bench/fixtures/full-sd15.ts, ~2.1 GB fp16) into the
 * ONNX cache, through the app's converter, from a fresh cache folder each time (so the source is hashed
 * too): wall time, peak RSS above the process baseline, bytes written; and the disk floor measured in the
 * same process: reading the checkpoint once plus writing as many bytes as the conversion wrote. Modes:
 * `linked` (the normal path: graphs point into a hard link of the checkpoint) and `copied` (no hard links
 * possible, e.g. another volume: every tensor is streamed into the side file). Also the cache-hit time.
 * The page cache is not dropped (that would slow the whole machine); `page_cache` says how warm it was.
 *
 *   npx tsx bench/convert.ts [--modes linked,copied]
 */

/** Peak resident set since the last reset, in bytes (Linux: VmHWM, reset through clear_refs). */
function resetPeak(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5')
    return true
  } catch {
    return false
  }
}

function peakRss(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** Polls RSS where VmHWM is unavailable (and as a cross-check); the converter yields on every await. */
function sampleRss(): { stop: () => number } {
  let max = process.memoryUsage().rss
  const t = setInterval(() => {
    max = Math.max(max, process.memoryUsage().rss)
  }, 5)
  return {
    stop: () => {
      clearInterval(t)
      return Math.max(max, process.memoryUsage().rss)
    },
  }
}

/** Bytes of regular files under dir that are not hard links of `source` (what the conversion wrote). */
function writtenBytes(dir: string, source: string): { written: number; linked: number } {
  const src = fs.statSync(source)
  let written = 0
  let linked = 0
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) {
        const st = fs.statSync(p)
        if (st.ino === src.ino && st.dev === src.dev) linked += st.size
        else written += st.size
      }
    }
  }
  walk(dir)
  return { written, linked }
}

function readOnce(file: string): number {
  const fd = fs.openSync(file, 'r')
  const buf = Buffer.allocUnsafe(64 << 20)
  const t0 = performance.now()
  let pos = 0
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos)
    if (n === 0) break
    pos += n
  }
  fs.closeSync(fd)
  return (performance.now() - t0) / 1000
}

function writeOnce(dir: string, bytes: number): number {
  const file = path.join(dir, 'floor.bin')
  const buf = Buffer.alloc(Math.min(64 << 20, Math.max(1, bytes)), 1)
  const fd = fs.openSync(file, 'w')
  const t0 = performance.now()
  for (let done = 0; done < bytes;) {
    const n = Math.min(buf.length, bytes - done)
    fs.writeSync(fd, buf, 0, n, done)
    done += n
  }
  fs.closeSync(fd)
  const s = (performance.now() - t0) / 1000
  fs.rmSync(file)
  return s
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

async function main(): Promise<void> {
  const modes = arg('modes', 'linked,copied').split(',')
  const file = ensureFullSd15()
  const size = fs.statSync(file).size
  // Same volume as the checkpoint, so hard links work (as in the app, where the cache sits in the data folder).
  const root = fs.mkdtempSync(path.join(path.dirname(file), 'convert-bench-'))
  const results: Record<string, unknown>[] = []
  try {
    const warm = readOnce(file)
    for (const mode of modes) {
      const cacheRoot = path.join(root, mode)
      const opts: ConvertOptions = { cacheRoot, noLinks: mode === 'copied' }
      global.gc?.()
      const baseline = process.memoryUsage().rss
      const hwm = resetPeak()
      const sampler = sampleRss()
      const t0 = performance.now()
      const converted = await convertCheckpoint(file, opts)
      const wall = (performance.now() - t0) / 1000
      const sampled = sampler.stop()
      const peak = (hwm ? peakRss() : undefined) ?? sampled
      const { written, linked } = writtenBytes(converted.dir, file)
      const t1 = performance.now()
      const again = await convertCheckpoint(file, opts)
      const hit = (performance.now() - t1) / 1000
      const read = readOnce(file)
      const write = writeOnce(root, written)
      const floor = read + write
      results.push({
        mode,
        wall_s: +wall.toFixed(2),
        peak_rss_above_baseline_mb: +((peak - baseline) / 2 ** 20).toFixed(0),
        baseline_rss_mb: +(baseline / 2 ** 20).toFixed(0),
        bytes_written: written,
        bytes_hard_linked: linked,
        graphs: Object.fromEntries(
          Object.entries(converted.manifest.graphs).map(([k, g]) => [
            k,
            { linked: g?.linked, copied: g?.copiedBytes },
          ]),
        ),
        cache_hit_s: +hit.toFixed(3),
        cache_hit_cached: again.cached,
        disk_floor: { read_s: +read.toFixed(2), write_s: +write.toFixed(2), total_s: +floor.toFixed(2) },
        vs_floor: +(wall / floor).toFixed(2),
        targets: { wall_le_10s: wall <= 10, rss_le_1gb: peak - baseline <= 2 ** 30 },
      })
      fs.rmSync(cacheRoot, { recursive: true, force: true })
    }
    const out = {
      bench: 'convert',
      checkpoint: file,
      bytes: size,
      page_cache: `warm: a first full read took ${warm.toFixed(2)} s (${(size / warm / 1e9).toFixed(2)} GB/s)`,
      results,
      cpus: os.cpus().length,
      load_average: loadAverage(),
    }
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}

await main()
