import fs from 'node:fs'
import path from 'node:path'
import type { ExternalRef } from './builder'

/**
 * Appends tensor bytes to one side file next to a model, 64-byte aligned (mmap friendly), and hands out
 * ExternalRefs relative to the model's folder. Writes are synchronous so offsets stay ordered.
 */
export class ExternalDataWriter {
  private fd: number
  private offset = 0
  readonly location: string

  constructor(
    readonly modelDir: string,
    fileName: string,
  ) {
    fs.mkdirSync(modelDir, { recursive: true })
    this.location = fileName
    this.fd = fs.openSync(path.join(modelDir, fileName), 'w')
  }

  append(bytes: Uint8Array): ExternalRef {
    const pad = (64 - (this.offset % 64)) % 64
    if (pad) {
      fs.writeSync(this.fd, new Uint8Array(pad), 0, pad, this.offset)
      this.offset += pad
    }
    const at = this.offset
    let written = 0
    while (written < bytes.byteLength)
      written += fs.writeSync(this.fd, bytes, written, bytes.byteLength - written, at + written)
    this.offset += bytes.byteLength
    return { location: this.location, offset: at, length: bytes.byteLength }
  }

  get bytesWritten(): number {
    return this.offset
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
  }
}
