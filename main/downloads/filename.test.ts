import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  chooseFileName,
  containedPath,
  MAX_NAME_BYTES,
  nameFromUrl,
  parseContentDisposition,
  sanitizeFileName,
} from './filename'

describe('parseContentDisposition', () => {
  it('reads quoted, token and RFC 5987 names; filename* wins', () => {
    expect(parseContentDisposition('attachment; filename="BodHor-V1.safetensors"')).toBe(
      'BodHor-V1.safetensors',
    )
    expect(parseContentDisposition('attachment; filename=model.ckpt')).toBe('model.ckpt')
    expect(parseContentDisposition(`inline; filename*=UTF-8''model.onnx; filename="model.onnx";`)).toBe(
      'model.onnx',
    )
    expect(
      parseContentDisposition(
        `attachment; filename="fallback.bin"; filename*=UTF-8''%E7%9C%9F%E5%AE%9E.safetensors`,
      ),
    ).toBe('真实.safetensors')
    expect(parseContentDisposition(`attachment; filename*=iso-8859-1'en'caf%E9.pt`)).toBe('café.pt')
    expect(parseContentDisposition('attachment; filename="a \\"quoted\\"; name.pt"')).toBe(
      'a "quoted"; name.pt',
    )
    expect(parseContentDisposition('attachment')).toBeUndefined()
    expect(parseContentDisposition(undefined)).toBeUndefined()
  })
})

describe('nameFromUrl', () => {
  it('prefers signed-URL disposition params, then the path', () => {
    const r2 =
      'https://x.r2.cloudflarestorage.com/1/model/a.eq23.safetensors?X-Amz-Expires=86400&response-content-disposition=attachment%3B%20filename%3D%22BodHor-V1.safetensors%22'
    expect(nameFromUrl(r2)).toBe('BodHor-V1.safetensors')
    const b2 = `https://f.backblazeb2.com/file/x/y?Authorization=t&b2ContentDisposition=${encodeURIComponent('attachment; filename="真实模型名.safetensors"')}`
    expect(nameFromUrl(b2)).toBe('真实模型名.safetensors')
    expect(nameFromUrl('https://huggingface.co/o/n/resolve/main/unet/diffusion%20model.safetensors')).toBe(
      'diffusion model.safetensors',
    )
  })
})

describe('sanitizeFileName', () => {
  it('removes separators, traversal, control and Windows-invalid characters', () => {
    expect(sanitizeFileName('../../etc/passwd')).toBe('_._etc_passwd')
    expect(sanitizeFileName('..\\..\\win.ini')).toBe('_._win.ini')
    expect(sanitizeFileName('a\u0000b\nc\u007f.safetensors')).toBe('abc.safetensors')
    expect(sanitizeFileName('what?<>:"|*.pt')).toBe('what_______.pt')
    expect(sanitizeFileName('...hidden.safetensors. . ')).toBe('hidden.safetensors')
    expect(sanitizeFileName('a..b.pt')).toBe('a.b.pt')
    for (const bad of ['', '..', '.', '/', '   ', '\u0000']) expect(sanitizeFileName(bad)).toBeUndefined()
  })

  it('defuses reserved Windows device names', () => {
    expect(sanitizeFileName('CON')).toBe('_CON')
    expect(sanitizeFileName('nul.safetensors')).toBe('_nul.safetensors')
    expect(sanitizeFileName('com1.txt')).toBe('_com1.txt')
    expect(sanitizeFileName('console.pt')).toBe('console.pt')
  })

  it('caps the length in UTF-8 bytes and keeps the extension', () => {
    const long = `${'模'.repeat(200)}.safetensors`
    const s = sanitizeFileName(long) ?? ''
    expect(Buffer.byteLength(s, 'utf8')).toBeLessThanOrEqual(MAX_NAME_BYTES)
    expect(s.endsWith('.safetensors')).toBe(true)
  })
})

describe('containedPath / chooseFileName', () => {
  it('keeps names directly inside the folder', () => {
    const dir = path.resolve('/tmp/lib')
    expect(containedPath(dir, 'a.pt')).toBe(path.join(dir, 'a.pt'))
    expect(() => containedPath(dir, '../a.pt')).toThrow(/outside/)
    expect(() => containedPath(dir, 'sub/a.pt')).toThrow(/outside/)
  })

  it('takes the first usable candidate', () => {
    expect(chooseFileName([undefined, '..', 'model.safetensors'])).toBe('model.safetensors')
    expect(chooseFileName([undefined, ''])).toBe('download.bin')
  })
})
