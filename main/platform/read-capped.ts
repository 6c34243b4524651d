import fs from 'node:fs'
import path from 'node:path'

export class FileTooLargeError extends Error {
  constructor(
    readonly file: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      Number.isFinite(size)
        ? `${path.basename(file)} is ${size} bytes, more than the ${limit} bytes read for it; ignored`
        : `${path.basename(file)} is not a regular file; ignored`,
    )
    this.name = 'FileTooLargeError'
  }
}

/**
 * A small text file (a sidecar, a config.json) as UTF-8, refusing it before anything is read when it is
 * larger than `maxBytes` or not a regular file (a 300 MB sidecar costs nothing; a link to /dev/zero never
 * ends). The size is checked on the open file, so a swap after the check cannot grow the read.
 */
export async function readTextCapped(file: string, maxBytes: number): Promise<string> {
  const fh = await fs.promises.open(file, 'r')
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new FileTooLargeError(file, Number.POSITIVE_INFINITY, maxBytes)
    if (st.size > maxBytes) throw new FileTooLargeError(file, st.size, maxBytes)
    const buf = Buffer.alloc(st.size)
    let done = 0
    while (done < st.size) {
      const { bytesRead } = await fh.read(buf, done, st.size - done, done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return buf.subarray(0, done).toString('utf8')
  } finally {
    await fh.close()
  }
}

/** Largest sidecar or config file read beside a model. */
export const MAX_SIDECAR_BYTES = 8 * 1024 * 1024
