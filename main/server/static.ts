import fs from 'node:fs'
import path from 'node:path'
import type http from 'node:http'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
}

/** Serves a file from the built renderer; paths are contained in `root`, unknown paths get index.html. */
export async function serveStatic(root: string, pathname: string, res: http.ServerResponse): Promise<void> {
  const base = path.resolve(root)
  let rel: string
  try {
    rel = decodeURIComponent(pathname)
  } catch {
    res.writeHead(400).end('Bad path')
    return
  }
  let file = path.resolve(base, '.' + path.posix.normalize('/' + rel))
  if (file !== base && !file.startsWith(base + path.sep)) {
    res.writeHead(403).end('Forbidden')
    return
  }
  let stat = await fs.promises.stat(file).catch(() => undefined)
  if (!stat?.isFile()) {
    file = path.join(base, 'index.html')
    stat = await fs.promises.stat(file).catch(() => undefined)
    if (!stat?.isFile()) {
      res
        .writeHead(503, { 'Content-Type': 'text/plain' })
        .end('The renderer is not built: run `npm run build`.')
      return
    }
  }
  res.writeHead(200, {
    'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    'Content-Length': stat.size,
  })
  fs.createReadStream(file).pipe(res)
}
