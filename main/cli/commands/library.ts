import type { Command } from 'commander'
import type { ModelRecord, ModelType, ScanProgress } from '../../services/models'
import { MODEL_FAMILIES, MODEL_SOURCES, MODEL_TYPES } from '../../services/models'
import { CliError } from '../errors'
import { progressBar } from '../progress'
import { withServices, type Services } from '../services'

const FAMILIES = MODEL_FAMILIES
const SOURCES = MODEL_SOURCES

function pick<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  what: string,
): T | undefined {
  if (value === undefined) return undefined
  const v = value.toLowerCase()
  const hit = allowed.find((a) => a === v)
  if (!hit) throw new CliError(`unknown ${what} "${value}"; use one of: ${allowed.join(', ')}`)
  return hit
}

type Library = Awaited<ReturnType<Services['models']['library']>>

/** The library of the data folder, in the folder its settings name (as the app opens it). */
async function withLibrary<T>(fn: (lib: Library, services: Services) => Promise<T>): Promise<T> {
  return withServices({}, async (s) => {
    const lib = await s.models.library()
    try {
      return await fn(lib, s)
    } finally {
      for (const w of lib.warnings) process.stderr.write(`warning: ${w}\n`)
    }
  })
}

function sizeLabel(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`
  return `${(bytes / 1024).toFixed(1)} KiB`
}

function jsonRecord(r: ModelRecord): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    type: r.type,
    family: r.family,
    subBase: r.subBase,
    variant: r.variant,
    baseModel: r.baseModel,
    sha256: r.sha256,
    autoV2: r.autoV2,
    autoV3: r.autoV3,
    path: r.path,
    size: r.size,
    source: r.source,
    civitai: r.civitai,
    huggingface: r.huggingface,
    verified: r.verified,
    trainedWords: r.trainedWords,
    problem: r.problem,
    note: r.note,
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '))
    .join('\n')
}

/** One bar per long phase (probing many files, hashing many bytes). */
function scanBar(): { onProgress: (p: ScanProgress) => void; stop: () => void } {
  let bar: ReturnType<typeof progressBar> | null = null
  let phase = ''
  let full = 0
  const stop = (): void => {
    // Finished phases show 100 % (the last byte report may precede the end of a file).
    bar?.update(full)
    bar?.stop()
    bar = null
  }
  return {
    stop,
    onProgress: (p) => {
      if (p.phase !== phase) {
        stop()
        phase = p.phase
        if (p.phase === 'probe' && p.total >= 20) {
          full = p.total
          bar = progressBar('probing', full, ' files')
        }
        if (p.phase === 'hash' && p.bytesTotal > 0) {
          full = Math.max(1, Math.ceil(p.bytesTotal / 2 ** 20))
          bar = progressBar('hashing', full, ' MiB')
        }
      }
      if (p.phase === 'probe') bar?.update(p.done)
      if (p.phase === 'hash') bar?.update(Math.floor(p.bytesDone / 2 ** 20), `${p.done}/${p.total} files`)
    },
  }
}

export function registerLibrary(program: Command): void {
  const lib = program
    .command('library')
    .description(
      "the local model library (checkpoints, LoRAs, VAEs, embeddings) in the settings' library folder and the folders added to it",
    )

  lib
    .command('list')
    .description('list the models in the library')
    .option('--json', 'print JSON (name, type, family, sha256, path, ...)')
    .option('--type <type>', `only this type (${MODEL_TYPES.join(', ')})`)
    .option('--family <family>', `only this family (${FAMILIES.join(', ')})`)
    .option('--source <source>', `only this source (${SOURCES.join(', ')})`)
    .option('--search <text>', 'only names / trained words containing this text')
    .action(
      async (opts: { json?: boolean; type?: string; family?: string; source?: string; search?: string }) => {
        const query = {
          type: pick<ModelType>(opts.type?.replace(/s$/, ''), MODEL_TYPES, 'type'),
          family: pick(opts.family, FAMILIES, 'family'),
          source: pick(opts.source, SOURCES, 'source'),
          text: opts.search,
        }
        await withLibrary(async (l) => {
          const models = l.list(query)
          if (opts.json) {
            process.stdout.write(`${JSON.stringify(models.map(jsonRecord), null, 2)}\n`)
            return
          }
          if (models.length === 0) {
            process.stdout.write('No models. Add some with `atelier library scan [folder]`.\n')
            return
          }
          const rows = [['TYPE', 'NAME', 'BASE', 'SIZE', 'SOURCE', 'HASH', 'ID']]
          for (const r of models) {
            const base = [r.family ?? '?', r.subBase && r.subBase !== r.family ? `/${r.subBase}` : ''].join(
              '',
            )
            const state = r.problem ? 'DAMAGED' : r.verified
            rows.push([r.type, r.name, base, sizeLabel(r.size), r.source, state, r.id])
          }
          process.stdout.write(`${table(rows)}\n`)
        })
      },
    )

  lib
    .command('scan')
    .description(
      'scan the library (and every added folder); with a folder, add it first (files stay where they are)',
    )
    .argument('[folder]', 'an A1111 / ComfyUI install or any folder of models to use in place')
    .option('--json', 'print the summary as JSON')
    .action(async (folder: string | undefined, opts: { json?: boolean }) => {
      await withLibrary(async (l) => {
        if (folder) {
          const root = await l.addRoot(folder)
          if (!opts.json) process.stderr.write(`Using ${root.path} in place (${root.layout} layout)\n`)
        }
        const bar = scanBar()
        const ctl = new AbortController()
        const onSigint = (): void => ctl.abort()
        process.once('SIGINT', onSigint)
        try {
          const s = await l.scan({ signal: ctl.signal, onProgress: bar.onProgress })
          bar.stop()
          if (opts.json) {
            process.stdout.write(`${JSON.stringify({ ...s, roots: l.getRoots() }, null, 2)}\n`)
          } else {
            process.stdout.write(
              `${s.models} models (${s.added} new, ${s.removed} gone); hashed ${s.hashed}, unchanged ${s.reused}` +
                `${s.problems ? `, ${s.problems} damaged (see \`atelier library doctor\`)` : ''}; ${s.durationMs} ms\n`,
            )
          }
        } finally {
          bar.stop()
          process.off('SIGINT', onSigint)
        }
      })
    })

  lib
    .command('match')
    .description(
      'identify local models on Civitai by SHA-256 (100 per request) and save their metadata beside them',
    )
    .option('--all', 'also refresh models that already have Civitai metadata')
    .option(
      '--civitai-url <url>',
      'another Civitai origin (a mirror; gets no key); default: the settings (ATELIER_CIVITAI_URL) with the stored key',
    )
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { all?: boolean; civitaiUrl?: string; json?: boolean }) => {
      await withLibrary(async (l, services) => {
        const s = await services.models.libraryMatch({
          all: opts.all,
          ...(opts.civitaiUrl ? { baseUrl: opts.civitaiUrl } : {}),
        })
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(s, null, 2)}\n`)
          return
        }
        process.stdout.write(`Looked up ${s.looked} models on Civitai; ${s.matched} identified.\n`)
        for (const id of s.ids) {
          const r = l.get(id)
          if (r)
            process.stdout.write(
              `  ${r.name}: ${r.civitai?.modelName ?? '?'} ${r.civitai?.versionName ?? ''} (${r.baseModel ?? '?'})\n`,
            )
        }
      })
    })

  lib
    .command('doctor')
    .description('find missing, damaged, mismatched and duplicate model files (exit code 1 when any)')
    .option('--json', 'print the report as JSON')
    .option('--rehash', 're-hash every file to catch silent damage (reads every byte)')
    .action(async (opts: { json?: boolean; rehash?: boolean }) => {
      await withLibrary(async (l) => {
        let bar: ReturnType<typeof progressBar> | null = null
        const report = await l.doctor({
          rehash: opts.rehash,
          onProgress: (done, total) => {
            if (!bar && opts.rehash && total > 0) bar = progressBar('checking', total, ' files')
            bar?.update(done)
          },
        })
        ;(bar as ReturnType<typeof progressBar> | null)?.stop()
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
        } else if (report.ok) {
          process.stdout.write(`All ${report.checked} models look fine.\n`)
        } else {
          for (const i of report.issues)
            process.stdout.write(`${i.kind.padEnd(13)} ${i.name}: ${i.message}\n`)
        }
        if (!report.ok) throw new CliError(`${report.issues.length} problem(s) in ${report.checked} models`)
      })
    })

  lib
    .command('rm')
    .description('delete a model and its sidecars (or move them to the trash folder)')
    .argument('<model>', 'name or id')
    .option('--trash', 'move to the trash folder of the data folder instead of deleting')
    .action(async (model: string, opts: { trash?: boolean }) => {
      await withLibrary(async (l) => {
        const { record, trashedTo } = await l.delete(model, { trash: opts.trash })
        process.stdout.write(
          trashedTo
            ? `Moved ${record.fileName} to ${trashedTo}\n`
            : `Deleted ${record.fileName} (${record.path})\n`,
        )
      })
    })

  lib
    .command('rename')
    .description('rename a model file together with its sidecars and preview')
    .argument('<model>', 'name or id')
    .argument('<new-name>', 'the new name (without extension; unsafe characters become _)')
    .action(async (model: string, newName: string) => {
      await withLibrary(async (l) => {
        const before = l.resolve(model)
        const r = await l.rename(model, newName)
        process.stdout.write(`Renamed ${before.fileName} to ${r.fileName}\n`)
      })
    })
}
