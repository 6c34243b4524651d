import fs from 'node:fs'
import path from 'node:path'
import type { ImageParameters, OutputImage } from '../../../preload/contract-types'
import { AppError } from '../errors'

const ID_RE = /^[\w.-]{1,200}$/
const FILE_RE = /^(\d{5,})-(\d+)(?:-\d+)?\.png$/

/** Width and height from a PNG's IHDR chunk (bytes 16..24); undefined when the bytes are not a PNG. */
export function pngSize(png: Uint8Array): { width: number; height: number } | undefined {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
  if (png.length < 24 || sig.some((b, i) => png[i] !== b)) return undefined
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength)
  return { width: v.getUint32(16), height: v.getUint32(20) }
}

/**
 * The gallery: generated PNGs in the outputs folder, named `<counter>-<seed>.png` as A1111 names them;
 * the id is the file stem. The index is the folder itself (rebuilt on demand), so files added or
 * removed by hand show up.
 */
export class GalleryStore {
  constructor(
    readonly dir: string,
    private readonly readParameters: (png: Uint8Array) => ImageParameters,
  ) {}

  private fileOf(id: string): string {
    if (!ID_RE.test(id) || id.startsWith('.'))
      throw new AppError('invalid-input', `"${id}" is not a gallery id.`)
    return path.join(this.dir, `${id}.png`)
  }

  private async entry(name: string): Promise<OutputImage | undefined> {
    const file = path.join(this.dir, name)
    let st: fs.Stats
    try {
      st = await fs.promises.stat(file)
    } catch {
      return undefined
    }
    if (!st.isFile()) return undefined
    const fh = await fs.promises.open(file, 'r')
    const head = new Uint8Array(24)
    try {
      await fh.read(head, 0, 24, 0)
    } finally {
      await fh.close()
    }
    const size = pngSize(head)
    if (!size) return undefined
    const m = FILE_RE.exec(name)
    return {
      id: name.slice(0, -4),
      fileName: name,
      width: size.width,
      height: size.height,
      sizeBytes: st.size,
      createdAt: Math.round(st.mtimeMs),
      ...(m ? { seed: Number(m[2]) } : {}),
    }
  }

  /** Newest first. */
  async list(): Promise<OutputImage[]> {
    let names: string[]
    try {
      names = await fs.promises.readdir(this.dir)
    } catch {
      return []
    }
    const entries = await Promise.all(names.filter((n) => n.endsWith('.png')).map((n) => this.entry(n)))
    return entries
      .filter((e): e is OutputImage => e !== undefined)
      .sort((a, b) => b.createdAt - a.createdAt || b.fileName.localeCompare(a.fileName))
  }

  async image(id: string): Promise<Uint8Array> {
    const file = this.fileOf(id)
    try {
      return new Uint8Array(await fs.promises.readFile(file))
    } catch {
      throw new AppError('not-found', `No image ${id} in the gallery (${this.dir}).`)
    }
  }

  async delete(id: string): Promise<void> {
    const file = this.fileOf(id)
    try {
      await fs.promises.unlink(file)
    } catch {
      throw new AppError('not-found', `No image ${id} in the gallery (${this.dir}).`)
    }
  }

  parameters(png: Uint8Array): ImageParameters {
    if (!pngSize(png)) throw new AppError('invalid-input', 'Not a PNG image.')
    return this.readParameters(png)
  }

  private nextCounter(): number {
    let max = -1
    try {
      for (const n of fs.readdirSync(this.dir)) {
        const m = /^(\d{5,})-/.exec(n)
        if (m) max = Math.max(max, Number(m[1]))
      }
    } catch {
      // no folder yet
    }
    return max + 1
  }

  /** Writes a PNG as the next `<counter>-<seed>.png` (never overwriting) and returns its entry. */
  async save(png: Uint8Array, seed: number): Promise<OutputImage> {
    await fs.promises.mkdir(this.dir, { recursive: true })
    for (let n = this.nextCounter(); ; n++) {
      const name = `${String(n).padStart(5, '0')}-${seed}.png`
      try {
        await fs.promises.writeFile(path.join(this.dir, name), png, { flag: 'wx' })
      } catch (err) {
        if ((err as { code?: string }).code === 'EEXIST') continue
        throw err
      }
      const e = await this.entry(name)
      if (!e) throw new Error(`${name}: written but not readable as a PNG`)
      return e
    }
  }
}
