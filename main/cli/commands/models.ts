/**
 * `atelier models search|show|install|tokenizer`: Civitai and Hugging Face from the terminal, through the same
 * ModelsService as the app (settings, keys and the download queue of the data folder; ATELIER_CIVITAI_URL,
 * ATELIER_HF_URL, ATELIER_CIVITAI_KEY and ATELIER_HF_TOKEN override them).
 */
import type { Command } from 'commander'
import type { DownloadInfo, ModelCard, ModelDetails, ModelKind } from '../../../preload/contract'
import { parseModelRef, type ModelRef } from '../../services/models/refs'
import { searchFilled } from '../../services/models/search-fill'
import type { ModelsService } from '../../services/models/service'
import { CliError } from '../errors'
import { progressBar } from '../progress'
import { withServices } from '../services'

const KINDS: readonly ModelKind[] = ['checkpoint', 'lora', 'embedding', 'vae', 'controlnet', 'upscaler']

async function withModels<T>(
  fn: (m: ModelsService, hosts: { civitai: string; hf: string }) => Promise<T>,
): Promise<T> {
  return withServices({ downloads: true }, (s) => {
    const { civitaiBaseUrl, hfBaseUrl } = s.settings.get()
    return fn(s.models, { civitai: new URL(civitaiBaseUrl).host, hf: new URL(hfBaseUrl).host })
  })
}

function num(n: number | null): string {
  if (n === null) return '-'
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`
  return String(n)
}

function size(bytes: number | null): string {
  if (bytes === null) return '?'
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`
  return `${(bytes / 1024).toFixed(1)} KiB`
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '))
    .join('\n')
}

function badges(c: ModelCard): string {
  return [
    c.installed ? 'installed' : '',
    c.updateAvailable ? 'update' : '',
    c.earlyAccess ? 'early-access' : '',
    c.gated ? 'gated' : '',
  ]
    .filter(Boolean)
    .join(',')
}

function source(v: string | undefined): 'civitai' | 'huggingface' {
  if (v === undefined || v === 'civitai') return 'civitai'
  if (v === 'hf' || v === 'huggingface') return 'huggingface'
  throw new CliError(`unknown source "${v}"; use civitai or hf`)
}

function printDetails(d: ModelDetails): void {
  const out: string[] = []
  out.push(`${d.name}  (${d.source} ${d.id}, ${d.rawType ?? d.kind}${d.creator ? `, by ${d.creator}` : ''})`)
  out.push(`${d.pageUrl}`)
  out.push(`downloads ${num(d.downloads)}, likes ${num(d.likes)}${d.license ? `, licence ${d.license}` : ''}`)
  if (d.commercialUse.length) out.push(`commercial use: ${d.commercialUse.join(', ')}`)
  if (d.access) out.push(`! ${d.access.message}`)
  if (d.diffusers)
    out.push(`diffusers pipeline: \`atelier models install hf:${d.id}\` installs the whole folder`)
  for (const v of d.versions) {
    out.push('')
    out.push(
      `version ${v.name} (${d.source === 'civitai' ? `civitai:${v.id}` : v.id.slice(0, 12)})` +
        `${v.baseModel ? `  base ${v.baseModel}` : ''}${v.installed ? '  [installed]' : ''}${v.earlyAccess ? '  [early access]' : ''}`,
    )
    out.push(`  compatibility: ${v.compat.state} — ${v.compat.reason}`)
    if (v.trainedWords.length) out.push(`  trigger words: ${v.trainedWords.join(', ')}`)
    const files = v.files.filter((f) => f.installable || d.source === 'civitai')
    for (const f of files.slice(0, 20)) {
      const facts = [f.fileType, f.format, f.precision, f.sizeVariant].filter(Boolean).join(', ')
      out.push(
        `  ${f.primary ? '*' : ' '} ${f.path}  ${size(f.sizeBytes)}  ${facts}${f.installed ? '  [installed]' : ''}${f.installable ? '' : '  (not installable)'}`,
      )
    }
    if (files.length > 20) out.push(`    … ${files.length - 20} more files`)
  }
  process.stdout.write(`${out.join('\n')}\n`)
}

/** One bar over all downloads of an install (a diffusers folder has many files). */
function installBar(ids: string[]): { update(d: DownloadInfo): void; stop(): void } {
  const seen = new Map<string, DownloadInfo>()
  let bar: ReturnType<typeof progressBar> | null = null
  let unit = 1024
  return {
    update(d) {
      if (!ids.includes(d.id)) return
      seen.set(d.id, d)
      const infos = [...seen.values()]
      const total = infos.reduce((s, x) => s + (x.total ?? x.bytes), 0)
      const done = infos.reduce((s, x) => s + (x.state === 'done' ? (x.total ?? x.bytes) : x.bytes), 0)
      if (!bar && total > 0) {
        unit = total >= 10 * 2 ** 20 ? 2 ** 20 : 1024
        bar = progressBar(
          ids.length > 1 ? `downloading ${ids.length} files` : 'downloading',
          Math.max(1, Math.ceil(total / unit)),
          unit === 1024 ? ' KiB' : ' MiB',
        )
      }
      const states = new Set(infos.map((x) => x.state))
      const speed = infos.reduce((s, x) => s + x.speedBps, 0)
      const extra = states.has('verifying') ? 'verifying' : speed > 0 ? `${size(speed)}/s` : ''
      bar?.update(Math.floor(done / unit), extra)
    },
    stop: () => bar?.stop(),
  }
}

async function resolveInstallRef(models: ModelsService, ref: ModelRef): Promise<ModelRef> {
  if (ref.source === 'civitai' && !ref.versionId && ref.modelId) {
    const d = await models.details({ source: 'civitai', id: ref.modelId })
    const latest = d.versions[0]
    if (!latest) throw new CliError(`Civitai model ${ref.modelId} has no versions.`)
    process.stderr.write(`Installing the newest version, ${d.name} ${latest.name} (civitai:${latest.id})\n`)
    return { source: 'civitai', versionId: latest.id }
  }
  return ref
}

export function registerModels(program: Command): void {
  const cmd = program
    .command('models')
    .description('browse Civitai and Hugging Face, install models into the library')

  cmd
    .command('search')
    .description('search Civitai (default) or Hugging Face')
    .argument('[query]', 'words to look for')
    .option('--source <source>', 'civitai or hf', 'civitai')
    .option('--type <type>', `model type (${KINDS.join(', ')})`)
    .option('--base <base>', 'base model as Civitai names it ("SD 1.5", "SDXL 1.0", "Pony", ...)')
    .option(
      '--sort <sort>',
      'Civitai: "Highest Rated", "Most Downloaded", "Newest"...; HF: "Most Downloaded", "Trending"...',
    )
    .option('--limit <n>', 'results (1-100)', '20')
    .option('--json', 'print the result cards as JSON')
    .action(
      async (
        query: string | undefined,
        o: { source?: string; type?: string; base?: string; sort?: string; limit: string; json?: boolean },
      ) => {
        const kind = o.type?.toLowerCase().replace(/s$/, '')
        if (kind !== undefined && !KINDS.includes(kind as ModelKind))
          throw new CliError(`unknown type "${o.type}"; use one of ${KINDS.join(', ')}`)
        const limit = Number(o.limit)
        if (!Number.isInteger(limit) || limit < 1 || limit > 100)
          throw new CliError(`--limit must be 1..100, got ${o.limit}`)
        await withModels(async (models) => {
          // Pages may hold fewer results than asked: follow the cursor up to --limit.
          const page = await searchFilled(
            (req) => models.search(req),
            {
              source: source(o.source),
              query,
              types: kind ? [kind as ModelKind] : undefined,
              baseModels: o.base ? [o.base] : undefined,
              sort: o.sort,
            },
            limit,
          )
          if (o.json) {
            process.stdout.write(`${JSON.stringify(page, null, 2)}\n`)
            return
          }
          if (page.items.length === 0) {
            process.stdout.write(
              page.stopped === 'error' ? `Nothing found (${page.error}).\n` : 'Nothing found.\n',
            )
            return
          }
          const rows = [['REF', 'NAME', 'TYPE', 'BASE', 'DOWNLOADS', 'LIKES', 'BADGES']]
          for (const c of page.items) {
            rows.push([
              c.source === 'civitai' ? `civitai:${c.id}` : `hf:${c.id}`,
              c.name.length > 40 ? `${c.name.slice(0, 39)}…` : c.name,
              c.source === 'civitai' ? (c.rawType ?? c.kind) : c.kind,
              c.baseModels.slice(0, 2).join(', ') || '-',
              num(c.downloads),
              num(c.likes),
              badges(c),
            ])
          }
          process.stdout.write(`${table(rows)}\n`)
          if (page.stopped === 'end' && page.items.length < limit)
            process.stdout.write(`(${page.items.length} of ${limit}: no more results)\n`)
          else if (page.stopped === 'error')
            process.stdout.write(`(stopped early after ${page.items.length} of ${limit}: ${page.error})\n`)
          else if (page.nextCursor)
            process.stdout.write('(more results: narrow the query or raise --limit)\n')
        })
      },
    )

  cmd
    .command('show')
    .description('versions, files, trigger words and compatibility of one model')
    .argument('<ref>', 'civitai:<modelId>, hf:<owner/repo>, or a Civitai / Hugging Face URL')
    .option('--json', 'print the details as JSON')
    .action(async (refText: string, o: { json?: boolean }) => {
      await withModels(async (models, hosts) => {
        const ref = parseModelRef(refText, {
          civitaiId: 'model',
          civitaiHosts: [hosts.civitai],
          hfHosts: [hosts.hf],
        })
        let d: ModelDetails
        if (ref.source === 'civitai') {
          const id = ref.modelId ?? (ref.versionId ? await models.modelIdOfVersion(ref.versionId) : undefined)
          if (!id) throw new CliError(`${refText} names no Civitai model.`)
          d = await models.details({
            source: 'civitai',
            id,
            ...(ref.versionId ? { versionId: ref.versionId } : {}),
          })
        } else {
          d = await models.details({ source: 'huggingface', id: ref.repo })
        }
        if (o.json) process.stdout.write(`${JSON.stringify(d, null, 2)}\n`)
        else printDetails(d)
      })
    })

  cmd
    .command('install')
    .description('download a model (verified against its published SHA-256) into the library')
    .argument('<ref>', 'civitai:<versionId>, hf:<owner/repo>[/<file>], or a Civitai / Hugging Face URL')
    .option('--file <id>', 'Civitai: the file id to take instead of the primary file')
    .option('--json', 'print the installed downloads as JSON')
    .action(async (refText: string, o: { file?: string; json?: boolean }) => {
      await withModels(async (models, hosts) => {
        const ref = await resolveInstallRef(
          models,
          parseModelRef(refText, {
            civitaiId: 'version',
            civitaiHosts: [hosts.civitai],
            hfHosts: [hosts.hf],
          }),
        )
        if (o.file && ref.source !== 'civitai')
          throw new CliError('--file is for Civitai; put the path in the reference: hf:<owner/repo>/<file>')
        if (o.file && !/^\d+$/.test(o.file))
          throw new CliError(`--file takes a Civitai file id (a number), got "${o.file}"`)
        const result =
          ref.source === 'civitai'
            ? await models.install({
                source: 'civitai',
                versionId: ref.versionId ?? '',
                ...(o.file ? { fileId: o.file } : {}),
              })
            : await models.install({
                source: 'huggingface',
                repo: ref.repo,
                ...(ref.path ? { path: ref.path } : {}),
                ...(ref.revision ? { revision: ref.revision } : {}),
              })
        if (result.alreadyInstalled) {
          process.stdout.write(`Already in the library (id ${result.alreadyInstalled}).\n`)
          return
        }
        const bar = installBar(result.downloadIds)
        const off = models.onDownload((d) => bar.update(d))
        const stop = new Promise<never>((_, reject) => {
          process.once('SIGINT', () =>
            reject(
              new CliError('Interrupted: the download is saved; run the same command again to resume.', 130),
            ),
          )
        })
        let infos: DownloadInfo[]
        try {
          infos = await Promise.race([models.whenInstalled(result.downloadIds), stop])
        } finally {
          off()
          bar.stop()
        }
        if (o.json) process.stdout.write(`${JSON.stringify(infos, null, 2)}\n`)
        const failed = infos.find((d) => d.state !== 'done' || d.install.state !== 'installed')
        if (failed)
          throw new CliError(
            failed.error?.message ?? failed.install.message ?? `${failed.label}: ${failed.state}`,
          )
        const ids = [...new Set(infos.map((d) => d.install.libraryId).filter((x): x is string => x !== null))]
        const lib = await models.library()
        if (!o.json) {
          for (const id of ids) {
            const r = lib.get(id)
            if (r)
              process.stdout.write(
                `Installed ${r.name} (${r.type}, ${r.family ?? 'unknown base'}, ${r.verified}) as ${r.id}\n  ${r.path}\n`,
              )
          }
        }
      })
    })

  cmd
    .command('tokenizer')
    .description('fetch the CLIP tokenizer files (openai/clip-vit-large-patch14) into the data folder once')
    .action(async () => {
      await withModels(async (models) => {
        process.stdout.write(`${await models.ensureClipTokenizer()}\n`)
      })
    })
}
