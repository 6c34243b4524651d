import { open as openFile } from 'node:fs/promises'
import path from 'node:path'

/**
 * PyTorch pickle detection. `.ckpt/.pt/.pth/.bin` files are Python pickles (raw, or inside a zip next to
 * their tensor storages); unpickling can call any Python function, so Atelier refuses them outright.
 */

export type PickleKind = 'torch-zip' | 'pickle'

export const PICKLE_EXTENSIONS = ['.ckpt', '.pt', '.pth', '.bin', '.pkl'] as const

export class PickleRefusedError extends Error {
  readonly code = 'pickle'
  constructor(
    readonly file: string,
    readonly kind: PickleKind,
  ) {
    const what = kind === 'torch-zip' ? 'a PyTorch zip archive with a pickled data.pkl' : 'a Python pickle'
    super(
      `${path.basename(file)} is ${what} (.ckpt/.pt/.pth/.bin). Loading a pickle can run arbitrary code, ` +
        'so Atelier refuses these files. Download the .safetensors version of this model instead ' +
        `(most models on Civitai and Hugging Face offer one). (${file})`,
    )
    this.name = 'PickleRefusedError'
  }
}

const ZIP_LOCAL = [0x50, 0x4b, 0x03, 0x04]
const ZIP_EMPTY = [0x50, 0x4b, 0x05, 0x06]
const TAIL_BYTES = 128 * 1024

function startsWith(buf: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => buf[i] === b)
}

/** Classify bytes from the start (and, for zips, the end) of a file. Exported for tests. */
export function classifyPickleBytes(head: Uint8Array, tail: Uint8Array = head): PickleKind | null {
  // Raw pickle (and torch's legacy format, which starts with a pickled magic number): PROTO opcode 2..5.
  if (head[0] === 0x80 && head[1] !== undefined && head[1] >= 2 && head[1] <= 5) return 'pickle'
  if (startsWith(head, ZIP_LOCAL) || startsWith(head, ZIP_EMPTY)) {
    // torch.save zips hold `<name>/data.pkl`; the name appears in the first local header and the central directory.
    const needle = Buffer.from('data.pkl', 'latin1')
    if (Buffer.from(head.buffer, head.byteOffset, head.byteLength).includes(needle)) return 'torch-zip'
    if (Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength).includes(needle)) return 'torch-zip'
  }
  return null
}

/** Whether a file is a pickle (by content, not by name); null when it is not. */
export async function detectPickle(file: string): Promise<PickleKind | null> {
  const fh = await openFile(file, 'r')
  try {
    const size = (await fh.stat()).size
    const head = new Uint8Array(Math.min(size, 4096))
    await fh.read(head, 0, head.byteLength, 0)
    if (!startsWith(head, ZIP_LOCAL) && !startsWith(head, ZIP_EMPTY)) return classifyPickleBytes(head)
    const tailLen = Math.min(size, TAIL_BYTES)
    const tail = new Uint8Array(tailLen)
    await fh.read(tail, 0, tailLen, size - tailLen)
    return classifyPickleBytes(head, tail)
  } finally {
    await fh.close()
  }
}

/** Throws PickleRefusedError when `file` is a pickle, whatever its extension. */
export async function refusePickle(file: string): Promise<void> {
  const kind = await detectPickle(file)
  if (kind) throw new PickleRefusedError(file, kind)
}

export function hasPickleExtension(file: string): boolean {
  return (PICKLE_EXTENSIONS as readonly string[]).includes(path.extname(file).toLowerCase())
}
