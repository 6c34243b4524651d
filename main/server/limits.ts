import { Decoder } from '@msgpack/msgpack'

/**
 * Limits on what one WebSocket frame of `atelier serve` may carry. Requests carry encoded images (img2img
 * input, mask, image prompts, a PNG to read parameters from), so a frame is allowed a few images' worth of
 * bytes; the structure around them (prompts, settings, lists of LoRAs) is small.
 */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024
export const MAX_FRAME_ITEMS = 100_000
export const MAX_FRAME_DEPTH = 32

const decoder = new Decoder({
  maxStrLength: 1024 * 1024,
  maxBinLength: MAX_FRAME_BYTES,
  maxArrayLength: 10_000,
  maxMapLength: 1_000,
  maxExtLength: 1024,
})

export class FrameLimitError extends Error {}

/**
 * Walks a MessagePack document without building it (linear time, no allocation) and throws when it is
 * malformed, deeper than `maxDepth` or holds more than `maxItems` values. A 22 MB frame of 3M map keys or a
 * 50M-element array is refused here in milliseconds instead of being materialised.
 */
export function checkMsgpackShape(
  bytes: Uint8Array,
  maxItems = MAX_FRAME_ITEMS,
  maxDepth = MAX_FRAME_DEPTH,
): { items: number; depth: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let pos = 0
  let items = 0
  let depth = 0
  const pending: number[] = [1] // values still expected at each open level
  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new FrameLimitError('truncated MessagePack frame')
  }
  const u8 = (): number => (need(1), view.getUint8(pos++))
  const u16 = (): number => {
    need(2)
    const v = view.getUint16(pos)
    pos += 2
    return v
  }
  const u32 = (): number => {
    need(4)
    const v = view.getUint32(pos)
    pos += 4
    return v
  }
  const skip = (n: number): void => {
    need(n)
    pos += n
  }
  const open = (values: number): void => {
    if (values > 0) {
      pending.push(values)
      depth = Math.max(depth, pending.length - 1)
      if (pending.length - 1 > maxDepth) throw new FrameLimitError(`frame nests deeper than ${maxDepth}`)
    }
  }
  while (pending.length > 0) {
    const top = pending.length - 1
    const left = pending[top] as number
    if (left === 0) {
      pending.pop()
      continue
    }
    pending[top] = left - 1
    if (++items > maxItems) throw new FrameLimitError(`frame holds more than ${maxItems} values`)
    const b = u8()
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) continue
    if (b >= 0x80 && b <= 0x8f) open((b & 0x0f) * 2)
    else if (b >= 0x90 && b <= 0x9f) open(b & 0x0f)
    else if (b >= 0xa0 && b <= 0xbf) skip(b & 0x1f)
    else
      switch (b) {
        case 0xc4:
        case 0xd9:
          skip(u8())
          break
        case 0xc5:
        case 0xda:
          skip(u16())
          break
        case 0xc6:
        case 0xdb:
          skip(u32())
          break
        case 0xc7:
          skip(u8() + 1)
          break
        case 0xc8:
          skip(u16() + 1)
          break
        case 0xc9:
          skip(u32() + 1)
          break
        case 0xca:
          skip(4)
          break
        case 0xcb:
          skip(8)
          break
        case 0xcc:
        case 0xd0:
          skip(1)
          break
        case 0xcd:
        case 0xd1:
          skip(2)
          break
        case 0xce:
        case 0xd2:
          skip(4)
          break
        case 0xcf:
        case 0xd3:
          skip(8)
          break
        case 0xd4:
          skip(2)
          break
        case 0xd5:
          skip(3)
          break
        case 0xd6:
          skip(5)
          break
        case 0xd7:
          skip(9)
          break
        case 0xd8:
          skip(17)
          break
        case 0xdc:
          open(u16())
          break
        case 0xdd:
          open(u32())
          break
        case 0xde:
          open(u16() * 2)
          break
        case 0xdf:
          open(u32() * 2)
          break
        default:
          throw new FrameLimitError(`invalid MessagePack byte 0x${b.toString(16)}`)
      }
  }
  if (pos !== bytes.length) throw new FrameLimitError('trailing bytes after the MessagePack value')
  return { items, depth }
}

/** Decodes a client's frame after checking its shape; throws on anything past the limits. */
export function decodeClientFrame(bytes: Uint8Array): unknown {
  if (bytes.length > MAX_FRAME_BYTES) throw new FrameLimitError('frame too large')
  checkMsgpackShape(bytes)
  return decoder.decode(bytes)
}
