import { open as openFile } from 'node:fs/promises'
import path from 'node:path'
import type { DType, TensorInfo } from './safetensors'
import type { PickleKind } from './pickle/errors'
import { PickleRefusedError } from './pickle/errors'
import type { TorchDType } from './pickle/torch'
import { TorchFile, TorchFormatError } from './pickle/torch'

/**
 * PyTorch pickles: `.ckpt/.pt/.pth/.bin` files are Python pickles (raw, or inside a zip next to their tensor
 * storages). Unpickling with Python can call any function, so Atelier never does: pickle/ interprets the
 * stream itself with an allow-list of the globals a state dict needs (PyTorch's rebuild functions, storage
 * classes, OrderedDict) and refuses anything else by name. So a pickle is either read safely or refused
 * with the name of the forbidden global.
 */

export type { PickleKind } from './pickle/errors'
export { PickleRefusedError } from './pickle/errors'
export type { TorchDType, TorchFormat } from './pickle/torch'
export { ALLOWED_GLOBALS, TorchFile, TorchFormatError, TorchStorage, TorchTensor } from './pickle/torch'

export const PICKLE_EXTENSIONS = ['.ckpt', '.pt', '.pth', '.bin', '.pkl'] as const

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

/**
 * Throws PickleRefusedError when `file` is a pickle, whatever its extension: naming the forbidden global
 * when its pickle has one, else saying it is a pickle. For callers that only take safetensors; those that
 * can use a state dict call readPickleHeader instead.
 */
export async function refusePickle(file: string): Promise<void> {
  const kind = await detectPickle(file)
  if (!kind) return
  let t: TorchFile
  try {
    t = await TorchFile.open(file)
  } catch (err) {
    if (err instanceof PickleRefusedError) throw err
    throw new PickleRefusedError(file, kind)
  }
  await t.close()
  throw new PickleRefusedError(file, kind, undefined, true)
}

/** A pickled state dict described like a safetensors header (tensor dtypes, shapes, byte ranges). */
export interface PickleHeader {
  kind: PickleKind
  format: 'zip' | 'legacy'
  tensors: Map<string, TensorInfo>
  metadata: Record<string, string>
  /** Tensors whose bytes are not one range of the file (views, compressed entries): begin = end = -1. */
  scattered: string[]
}

const TO_DTYPE: Partial<Record<TorchDType, DType>> = {
  F32: 'F32',
  F16: 'F16',
  BF16: 'BF16',
  F64: 'F64',
  I64: 'I64',
  I32: 'I32',
  U8: 'U8',
  BOOL: 'BOOL',
}

/**
 * Reads a pickled PyTorch file safely and describes its state dict (the `state_dict` / `params_ema` /
 * `params` entry of a wrapper dict, else the dict itself); null when the file is not a pickle. Throws
 * PickleRefusedError (forbidden global, or not a PyTorch file) or TorchFormatError (damaged). With
 * `requireRanges`, a tensor whose bytes are not one contiguous range of the file is an error.
 */
export async function readPickleHeader(
  file: string,
  opts: { requireRanges?: boolean } = {},
): Promise<PickleHeader | null> {
  const kind = await detectPickle(file)
  if (!kind) return null
  const t = await TorchFile.open(file)
  try {
    const tensors = new Map<string, TensorInfo>()
    const scattered: string[] = []
    for (const [name, x] of t.stateDict()) {
      const dtype = TO_DTYPE[x.dtype]
      if (!dtype) continue
      const r = x.fileRange
      if (!r && opts.requireRanges)
        throw new TorchFormatError(
          `${path.basename(file)}: tensor "${name}" is not stored as one contiguous range ` +
            `(a strided view or a compressed archive entry); re-save the model with torch.save or as safetensors (${file})`,
          'scattered',
        )
      if (!r) scattered.push(name)
      tensors.set(name, { name, dtype, shape: [...x.shape], begin: r?.begin ?? -1, end: r?.end ?? -1 })
    }
    return { kind, format: t.format, tensors, metadata: {}, scattered }
  } finally {
    await t.close()
  }
}

export function hasPickleExtension(file: string): boolean {
  return (PICKLE_EXTENSIONS as readonly string[]).includes(path.extname(file).toLowerCase())
}
