import fs from 'node:fs'
import path from 'node:path'
import { z } from 'zod'

/**
 * The golden-data manifest format (see the shared oracle README): cases with a tensor file, the tensors'
 * roles (`given` inputs, `expected` outputs, optional `trace`), parameters and a tolerance. Unknown fields
 * are kept: each case kind reads what it needs.
 */

const TensorMeta = z.object({ dtype: z.string(), shape: z.array(z.number().int().nonnegative()) })

export const CaseSchema = z
  .object({
    name: z.string().min(1),
    file: z.string().min(1),
    tensors: z.record(z.string(), TensorMeta).default({}),
    given: z.array(z.string()).default([]),
    expected: z.array(z.string()).default([]),
    trace: z.array(z.string()).default([]),
    tolerance: z.record(z.string(), z.unknown()).default({}),
  })
  .passthrough()

export type ReferenceCase = z.infer<typeof CaseSchema>

export const ManifestSchema = z
  .object({
    cases: z.array(CaseSchema),
    files: z.record(z.string(), z.number()).optional(),
    conventions: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough()

export type ReferenceManifest = z.infer<typeof ManifestSchema> & { dir: string; path: string }

/**
 * JSON as Python's json module writes it: bare NaN / Infinity / -Infinity outside strings become
 * 1e999 (parsed as Infinity) and null.
 */
export function parsePythonJson(text: string): unknown {
  let out = ''
  let i = 0
  while (i < text.length) {
    const ch = text[i] as string
    if (ch === '"') {
      let j = i + 1
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      out += text.slice(i, j + 1)
      i = j + 1
    } else if (text.startsWith('Infinity', i)) {
      out += '1e999'
      i += 8
    } else if (text.startsWith('NaN', i)) {
      out += 'null'
      i += 3
    } else {
      out += ch
      i++
    }
  }
  return JSON.parse(out)
}

export function loadManifest(file: string): ReferenceManifest {
  const abs = path.resolve(file)
  let json: unknown
  try {
    json = parsePythonJson(fs.readFileSync(abs, 'utf8'))
  } catch (err) {
    throw new Error(`${abs}: cannot read the manifest (${err instanceof Error ? err.message : String(err)})`)
  }
  const parsed = ManifestSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new Error(`${abs}: not a reference manifest (${issue?.path.join('.')}: ${issue?.message})`)
  }
  return { ...parsed.data, dir: path.dirname(abs), path: abs }
}

/** All free text of a case (descriptions, upstream notes, outputs), for finding named model files. */
export function caseText(c: ReferenceCase): string {
  const parts: string[] = []
  const walk = (v: unknown): void => {
    if (typeof v === 'string') parts.push(v)
    else if (Array.isArray(v)) v.forEach(walk)
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (k !== 'tensors') walk(x)
  }
  walk(c)
  return parts.join('\n')
}
