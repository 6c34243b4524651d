import fs from 'node:fs'
import path from 'node:path'
import { SafetensorsFile, writeSafetensors } from '../../model-formats/safetensors'
import type { SessionConfig } from '../runtime/session'
import { runnerFor } from './cases'
import type { CaseContext, RefTensor } from './cases/types'
import type { ReferenceCase, ReferenceManifest } from './manifest'
import { loadManifest } from './manifest'
import { ReferenceModels } from './models'
import type { Comparison, Tolerance } from './tolerance'
import {
  compareTensors,
  fp16QuantizedTolerance,
  fp16Tolerance,
  quantizedFrom,
  toleranceFor,
} from './tolerance'
import { fp16RunCount } from '../runtime/session'

/**
 * Runs the cases of a reference manifest from their inputs alone (given tensors, parameters, model files)
 * and writes `<out>/<case>.safetensors`. Where the case file still holds the expected tensors, each one
 * is compared under the case's tolerance.
 */

export type CaseStatus = 'pass' | 'fail' | 'written' | 'skipped' | 'error'

export interface TensorCheck {
  name: string
  tolerance: Tolerance
  /** 'fp16': the tensor passed through fp16 compute graphs and is held to the fp16 rule (fp16Tolerance). */
  rule?: 'fp16'
  comparison?: Comparison
  /** The expected tensor is not in the case file (a stripped copy): nothing to compare. */
  absent?: boolean
  missing?: boolean
}

export interface CaseResult {
  name: string
  status: CaseStatus
  message?: string
  output?: string
  checks: TensorCheck[]
  ms: number
}

export interface RunReferenceOptions {
  out: string
  cases?: string[]
  cacheRoot: string
  session?: SessionConfig
  log?: (message: string) => void
  signal?: AbortSignal
}

async function openCaseFile(m: ReferenceManifest, c: ReferenceCase): Promise<SafetensorsFile | undefined> {
  const file = path.join(m.dir, c.file)
  return fs.existsSync(file) ? SafetensorsFile.open(file) : undefined
}

async function readTensor(st: SafetensorsFile, name: string): Promise<RefTensor> {
  const info = st.info(name)
  if (info.dtype === 'I64')
    return { dtype: 'I64', shape: info.shape, data: (await st.readTyped(name)) as BigInt64Array }
  if (info.dtype === 'U8')
    return { dtype: 'U8', shape: info.shape, data: (await st.readTyped(name)) as Uint8Array }
  return { dtype: 'F32', shape: info.shape, data: await st.readFloat32(name) }
}

async function runCase(
  m: ReferenceManifest,
  c: ReferenceCase,
  models: ReferenceModels,
  opts: RunReferenceOptions,
): Promise<CaseResult> {
  const t0 = performance.now()
  const runner = runnerFor(c.name, c, m)
  if (!runner)
    return { name: c.name, status: 'skipped', message: 'no runner for this case kind yet', checks: [], ms: 0 }
  const st = await openCaseFile(m, c)
  try {
    const wanted = new Set([...c.expected, ...c.trace])
    const ctx: CaseContext = {
      manifest: m,
      def: c,
      models,
      signal: opts.signal,
      log: (s) => opts.log?.(`${c.name}: ${s}`),
      hasGiven: (n) => c.given.includes(n),
      wants: (n) => wanted.has(n),
      given: async (n) => {
        if (!c.given.includes(n)) throw new Error(`case ${c.name}: "${n}" is not a given tensor of this case`)
        if (!st) throw new Error(`case ${c.name}: its file ${c.file} is missing`)
        if (!st.has(n)) throw new Error(`case ${c.name}: given tensor "${n}" is not in ${c.file}`)
        return readTensor(st, n)
      },
    }
    const fp16Before = fp16RunCount()
    const outputs = await runner(ctx)
    const ranFp16 = fp16RunCount() > fp16Before
    fs.mkdirSync(opts.out, { recursive: true })
    const output = path.join(opts.out, `${c.name}.safetensors`)
    await writeSafetensors(output, outputs, { case: c.name, producer: 'atelier reference' })

    const checks: TensorCheck[] = []
    for (const name of c.expected) {
      const mine = outputs[name]
      const tol = toleranceFor(c, name, c.tensors[name]?.dtype.toUpperCase())
      if (!mine) {
        checks.push({ name, tolerance: tol, missing: true })
        continue
      }
      if (!st?.has(name)) {
        checks.push({ name, tolerance: tol, absent: true })
        continue
      }
      const ref = await readTensor(st, name)
      let half = tol
      if (ranFp16 && ref.dtype === 'F32') half = fp16Tolerance(c, name, tol, ref.data as Float32Array)
      const source = ranFp16 && ref.dtype === 'U8' ? quantizedFrom(c, name) : undefined
      if (source && st.has(source)) {
        const image = await readTensor(st, source)
        const image16 = fp16Tolerance(c, source, toleranceFor(c, source), image.data as Float32Array)
        half = fp16QuantizedTolerance(tol, image16)
      }
      checks.push({
        name,
        tolerance: half,
        ...(half !== tol ? { rule: 'fp16' as const } : {}),
        comparison: compareTensors(mine.data, ref.data, half, { actual: mine.shape, expected: ref.shape }),
      })
    }
    const failed = checks.some((k) => k.missing || (k.comparison && !k.comparison.pass))
    const compared = checks.some((k) => k.comparison)
    const missing = checks.filter((k) => k.missing).map((k) => k.name)
    return {
      name: c.name,
      status: failed ? 'fail' : compared ? 'pass' : 'written',
      message: missing.length ? `not produced: ${missing.join(', ')}` : undefined,
      output,
      checks,
      ms: performance.now() - t0,
    }
  } catch (err) {
    return {
      name: c.name,
      status: 'error',
      message: err instanceof Error ? err.message : String(err),
      checks: [],
      ms: performance.now() - t0,
    }
  } finally {
    await st?.close()
  }
}

export async function runReference(manifestPath: string, opts: RunReferenceOptions): Promise<CaseResult[]> {
  const m = loadManifest(manifestPath)
  const names = m.cases.map((c) => c.name)
  const unknown = (opts.cases ?? []).filter((n) => !names.includes(n))
  if (unknown.length)
    throw new Error(`${m.path}: no case named ${unknown.join(', ')} (cases: ${names.join(', ')})`)
  const selected = opts.cases?.length ? m.cases.filter((c) => opts.cases?.includes(c.name)) : m.cases
  const models = new ReferenceModels(m, { cacheRoot: opts.cacheRoot, session: opts.session })
  const results: CaseResult[] = []
  try {
    for (const c of selected) {
      if (opts.signal?.aborted) break
      if (opts.cases?.length && !runnerFor(c.name, c, m)) {
        results.push({
          name: c.name,
          status: 'error',
          message: 'no runner for this case kind yet',
          checks: [],
          ms: 0,
        })
        continue
      }
      if (runnerFor(c.name, c, m)) opts.log?.(`running ${c.name}`)
      results.push(await runCase(m, c, models, opts))
    }
  } finally {
    await models.release()
  }
  return results
}

function fmt(x: number): string {
  return x === Infinity ? 'inf' : x === 0 ? '0' : x.toExponential(2)
}

/** A plain-text table of results (one row per expected tensor). */
export function formatResults(results: CaseResult[]): string {
  const rows: string[][] = [['case', 'tensor', 'max |diff|', 'bad', 'tolerance', 'result']]
  for (const r of results) {
    if (r.checks.length === 0) {
      rows.push([r.name, '', '', '', '', `${r.status.toUpperCase()}${r.message ? ` (${r.message})` : ''}`])
      continue
    }
    for (const k of r.checks) {
      const tol = k.tolerance.exact
        ? 'exact'
        : k.rule === 'fp16'
          ? `fp16 rule: atol ${fmt(k.tolerance.atol)} rtol ${k.tolerance.rtol}`
          : `atol ${k.tolerance.atol} rtol ${k.tolerance.rtol}`
      const res = k.missing
        ? 'FAIL (not produced)'
        : k.absent
          ? 'written'
          : k.comparison?.pass
            ? 'PASS'
            : 'FAIL'
      rows.push([
        r.name,
        k.name,
        k.comparison ? fmt(k.comparison.maxAbs) : '',
        k.comparison ? `${k.comparison.bad}/${k.comparison.count}` : '',
        tol,
        `${res}${k.comparison?.note ? ` (${k.comparison.note})` : ''}`,
      ])
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}
