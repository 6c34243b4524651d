import fs from 'node:fs'
import path from 'node:path'

/**
 * Path containment: every path that comes from outside (a remote file tree, a sidecar, a prompt, a request)
 * is resolved and checked to stay inside the root it belongs to before it is read or written.
 */

export class PathEscapeError extends Error {
  constructor(
    readonly target: string,
    readonly root: string,
  ) {
    super(`"${target}" leaves ${root}; refused`)
    this.name = 'PathEscapeError'
  }
}

/** Whether `p` is `root` itself or lies under it (lexically, after resolving both). */
export function isInside(root: string, p: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(p))
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
}

/**
 * `root/rel` for a relative path from an untrusted source (a Hugging Face tree entry, a sidecar field):
 * refuses absolute paths, drive letters, backslashes, empty and `.`/`..` segments, and anything that
 * resolves outside `root`.
 */
export function resolveInside(root: string, rel: string): string {
  const segments = rel.split('/')
  if (
    rel === '' ||
    rel.includes('\\') ||
    rel.includes('\0') ||
    path.isAbsolute(rel) ||
    /^[a-zA-Z]:/.test(rel) ||
    segments.some((s) => s === '' || s === '.' || s === '..')
  )
    throw new PathEscapeError(rel, root)
  const full = path.resolve(root, ...segments)
  if (!isInside(root, full) || full === path.resolve(root)) throw new PathEscapeError(rel, root)
  return full
}

function real(p: string): string | undefined {
  try {
    return fs.realpathSync(p)
  } catch {
    return undefined
  }
}

/** Whether `p`, with every symlink followed, lies inside one of `roots` (also with symlinks followed). */
export function isReallyInside(roots: readonly string[], p: string): boolean {
  const target = real(p)
  if (!target) return false
  return roots.some((r) => {
    const root = real(r)
    return root !== undefined && isInside(root, target)
  })
}
