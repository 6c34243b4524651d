/**
 * The end of a download: compare the SHA-256 computed while downloading (and the size) with what the service
 * published, then either move the `.partial` file into place under a name that does not overwrite anything,
 * or move it aside to the quarantine folder so a corrupt file never reaches the library.
 */
import fs from 'node:fs'
import path from 'node:path'
import { containedPath } from './filename'
import { formatBytes } from './transfer'
import type { DownloadError, DownloadJob } from './types'

export type Verdict = { ok: true; destPath: string } | { ok: false; error: DownloadError }

export async function verifyAndInstall(
  job: DownloadJob,
  sha256: string,
  quarantineDir: string,
): Promise<Verdict> {
  const name = job.fileName ?? 'download.bin'
  const expected = job.request.expectedSha256
  const expectedSize = job.request.expectedSize
  let problem: DownloadError | null = null
  if (expected && expected !== sha256) {
    problem = {
      code: 'hash-mismatch',
      message: `${name} is corrupt: its SHA-256 is ${sha256.slice(0, 12)}…, expected ${expected.slice(0, 12)}….`,
    }
  } else if (!expected && expectedSize !== undefined && expectedSize !== job.bytes) {
    problem = {
      code: 'size-mismatch',
      message: `${name} has ${formatBytes(job.bytes)}, expected ${formatBytes(expectedSize)}.`,
    }
  }
  if (problem) {
    const where = await quarantine(job.partialPath, quarantineDir, name)
    return {
      ok: false,
      error: {
        code: problem.code,
        message: `${problem.message} It was moved to ${where} and not installed.`,
      },
    }
  }
  try {
    return { ok: true, destPath: await moveIntoPlace(job.partialPath, job.request.destDir, name) }
  } catch (err) {
    return {
      ok: false,
      error: {
        code: 'io',
        message: `Could not move ${name} into ${job.request.destDir}: ${(err as Error).message}`,
      },
    }
  }
}

async function moveIntoPlace(from: string, dir: string, name: string): Promise<string> {
  const ext = path.extname(name)
  const stem = name.slice(0, name.length - ext.length)
  for (let i = 0; i < 1000; i++) {
    const candidate = containedPath(dir, i === 0 ? name : `${stem} (${i})${ext}`)
    try {
      // link() fails atomically when the name exists, so a file that appeared meanwhile is never replaced.
      await fs.promises.link(from, candidate)
      await fs.promises.unlink(from)
      return candidate
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') continue
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EXDEV' || code === 'ENOSYS') {
        if (fs.existsSync(candidate)) continue
        await fs.promises.rename(from, candidate)
        return candidate
      }
      throw err
    }
  }
  throw new Error(`too many files named like ${name}`)
}

/** Move a rejected `.partial` to `<quarantineDir>/<name>.corrupt` (numbered if that exists). */
async function quarantine(partialPath: string, quarantineDir: string, name: string): Promise<string> {
  await fs.promises.mkdir(quarantineDir, { recursive: true })
  let target = path.join(quarantineDir, `${name}.corrupt`)
  for (let i = 1; fs.existsSync(target); i++) target = path.join(quarantineDir, `${name} (${i}).corrupt`)
  try {
    await fs.promises.rename(partialPath, target)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
    await fs.promises.copyFile(partialPath, target)
    await fs.promises.unlink(partialPath)
  }
  return target
}
