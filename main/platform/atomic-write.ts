import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

/**
 * Atomic file writes (temp file beside the target + rename): readers see the old or the new content, never a
 * torn one. The one helper for the library's sidecars and index, the conversion cache's manifests, the
 * calibration file and install state. The temp name is `.<name>.<pid>.<8 hex>.tmp` in the target's folder
 * (library/recover.ts finds leftovers by it).
 */

export interface AtomicWriteOptions {
  /** fsync the data before the rename so it survives a power cut (default on for the async write). */
  fsync?: boolean
  /** Create the target's folder first. */
  mkdir?: boolean
}

export function atomicTempName(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`,
  )
}

function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined
}

/** rename(), retried briefly on Windows' transient EPERM/EBUSY (a scanner or viewer holding the file). */
export async function renameRetry(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.promises.rename(from, to)
      return
    } catch (err) {
      const code = errCode(err)
      if (
        attempt < 5 &&
        (code === 'EPERM' || code === 'EBUSY' || code === 'EACCES') &&
        process.platform === 'win32'
      ) {
        await new Promise((r) => setTimeout(r, 50 * (attempt + 1)))
        continue
      }
      throw err
    }
  }
}

export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  if (opts.mkdir) await fs.promises.mkdir(path.dirname(file), { recursive: true })
  const tmp = atomicTempName(file)
  try {
    const fh = await fs.promises.open(tmp, 'w')
    try {
      await fh.writeFile(data)
      if (opts.fsync !== false) await fh.sync()
    } finally {
      await fh.close()
    }
    await renameRetry(tmp, file)
  } catch (err) {
    await fs.promises.rm(tmp, { force: true })
    throw err
  }
}

/** The synchronous form (fsync off unless asked): for small files written inside synchronous code. */
export function writeFileAtomicSync(
  file: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): void {
  if (opts.mkdir) fs.mkdirSync(path.dirname(file), { recursive: true })
  const tmp = atomicTempName(file)
  try {
    const fd = fs.openSync(tmp, 'w')
    try {
      fs.writeFileSync(fd, data)
      if (opts.fsync) fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, file)
  } catch (err) {
    fs.rmSync(tmp, { force: true })
    throw err
  }
}
