/**
 * Images in the renderer are bytes (what crosses the contract) plus a decoded element and an object URL
 * for display. Nothing here names a file path.
 */

export interface LoadedImage {
  bytes: Uint8Array
  /** Object URL for <img> (revoked by whoever drops the image). */
  url: string
  element: HTMLImageElement
  width: number
  height: number
  /** Where it came from, for labels ("photo.png", "result 00012-42"). */
  name: string
  mime: string
}

const ACCEPTED = ['image/png', 'image/jpeg', 'image/webp']

export function mimeOf(bytes: Uint8Array): string {
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return 'image/png'
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg'
  if (bytes[8] === 0x57 && bytes[9] === 0x45 && bytes[10] === 0x42 && bytes[11] === 0x50) return 'image/webp'
  return 'application/octet-stream'
}

export function bytesUrl(bytes: Uint8Array, mime = mimeOf(bytes)): string {
  return URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mime }))
}

export async function loadImage(bytes: Uint8Array, name: string): Promise<LoadedImage> {
  const mime = mimeOf(bytes)
  if (!ACCEPTED.includes(mime)) throw new Error(`${name}: not a PNG, JPEG or WebP image.`)
  const url = bytesUrl(bytes, mime)
  const element = new Image()
  element.decoding = 'async'
  element.src = url
  try {
    await element.decode()
  } catch {
    URL.revokeObjectURL(url)
    throw new Error(`${name}: the image could not be decoded (damaged or unsupported).`)
  }
  return { bytes, url, element, width: element.naturalWidth, height: element.naturalHeight, name, mime }
}

export async function loadImageFile(file: File): Promise<LoadedImage> {
  return loadImage(new Uint8Array(await file.arrayBuffer()), file.name || 'pasted image')
}

/** The first image file of a drop or paste, if any. */
export function imageFileOf(data: DataTransfer | null): File | undefined {
  if (!data) return undefined
  for (const f of Array.from(data.files)) if (f.type.startsWith('image/')) return f
  for (const item of Array.from(data.items)) {
    if (item.kind === 'file' && item.type.startsWith('image/')) {
      const f = item.getAsFile()
      if (f) return f
    }
  }
  return undefined
}

export function releaseImage(img: LoadedImage | undefined): void {
  if (img) URL.revokeObjectURL(img.url)
}

/** Offer bytes as a download (save as) through a temporary object URL. */
export function downloadBytes(bytes: Uint8Array, fileName: string): void {
  const url = bytesUrl(bytes)
  const a = document.createElement('a')
  a.href = url
  a.download = fileName
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

/** Put a PNG on the clipboard as an image; false where the browser refuses (insecure context, permission). */
export async function copyPng(bytes: Uint8Array): Promise<boolean> {
  try {
    if (typeof ClipboardItem === 'undefined' || !navigator.clipboard?.write) return false
    const blob = new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'image/png' })
    await navigator.clipboard.write([new ClipboardItem({ 'image/png': blob })])
    return true
  } catch {
    return false
  }
}

/** The image redrawn at `width` x `height` (high-quality smoothing) as a new PNG, named "<name> (W×H)". */
export async function resizeImage(img: LoadedImage, width: number, height: number): Promise<LoadedImage> {
  const canvas = document.createElement('canvas')
  canvas.width = width
  canvas.height = height
  const ctx = canvas.getContext('2d')
  if (!ctx) throw new Error('This browser cannot create a 2D canvas to resize the image.')
  ctx.imageSmoothingEnabled = true
  ctx.imageSmoothingQuality = 'high'
  ctx.drawImage(img.element, 0, 0, width, height)
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'))
  canvas.width = canvas.height = 0
  if (!blob) throw new Error(`The image could not be resized to ${width}×${height}.`)
  const stem = img.name.replace(/\.(png|jpe?g|webp)$/i, '')
  return loadImage(new Uint8Array(await blob.arrayBuffer()), `${stem} (${width}×${height}).png`)
}
