import { useEffect, useMemo, useState } from 'react'
import type {
  DownloadInfo,
  InstallResult,
  ModelDetails,
  ModelFile,
  ModelImage,
  ModelVersion,
  PreviewResource,
  Req,
  Result,
} from '../../../../preload/contract'
import { api } from '../../api/client'
import { CompatDetails, Tag } from './Badges'
import { isActive, useDownloads, useLibraryVersion, useSettings } from './data'
import { formatBytes, formatCount, formatDate, kindName } from './format'
import { applyImageSettings } from './handoff'
import { resourceLabel } from './image-resources'
import { ImageBox } from './ImageBox'
import { modelHref } from './route'
import { sanitizeHtml } from './sanitize'

interface Loaded {
  key: string
  details?: ModelDetails
  error?: string
}

export function ModelPage({
  source,
  id,
  version,
}: {
  source: 'civitai' | 'huggingface'
  id: string
  version: string | null
}): React.JSX.Element {
  const libraryVersion = useLibraryVersion()
  const key = JSON.stringify([source, id, version, libraryVersion])
  const [loaded, setLoaded] = useState<Loaded>({ key: '' })

  useEffect(() => {
    let live = true
    const [s, i, v] = JSON.parse(key) as [typeof source, string, string | null]
    void api.invoke('models:details', { source: s, id: i, ...(v ? { versionId: v } : {}) }).then((r) => {
      if (live) setLoaded(r.ok ? { key, details: r.value } : { key, error: r.error.message })
    })
    return () => {
      live = false
    }
  }, [key])

  // Keep showing the page while it refreshes after an install.
  const d = loaded.details && loaded.details.id === id ? loaded.details : undefined
  return (
    <section className="model-page" aria-busy={loaded.key !== key}>
      <p>
        <a
          href="#/models/browse"
          className="back"
          onClick={(e) => {
            if (history.length > 1) {
              e.preventDefault()
              history.back()
            }
          }}
        >
          ← Back to results
        </a>
      </p>
      {loaded.error && loaded.key === key && (
        <p className="error" role="alert">
          {loaded.error}
        </p>
      )}
      {!d && !loaded.error && <p className="muted">Loading…</p>}
      {d && <Details d={d} />}
    </section>
  )
}

function Details({ d }: { d: ModelDetails }): React.JSX.Element {
  const selected = d.versions.find((v) => v.id === d.selectedVersionId) ?? d.versions[0]
  return (
    <>
      <header className="model-head">
        <div>
          <h1 data-testid="model-title">{d.name}</h1>
          <p className="muted">
            {kindName(d.kind)}
            {d.rawType && d.source === 'civitai' && d.rawType.toLowerCase() !== kindName(d.kind).toLowerCase()
              ? ` (${d.rawType})`
              : ''}
            {d.creator ? ` · by ${d.creator}` : ''}
            {d.downloads !== null ? ` · ↓ ${formatCount(d.downloads)}` : ''}
            {d.likes !== null ? ` · ♥ ${formatCount(d.likes)}` : ''}
          </p>
          <div className="row wrap">
            {d.installed && <Tag tone="good">Installed</Tag>}
            {d.updateAvailable && <Tag tone="accent">Update available</Tag>}
            {d.nsfw && <Tag tone="warn">Mature</Tag>}
            {d.tags.slice(0, 6).map((t) => (
              <Tag key={t}>{t}</Tag>
            ))}
          </div>
        </div>
        <a className="button" href={d.pageUrl} target="_blank" rel="noopener noreferrer">
          Open on {d.source === 'civitai' ? 'Civitai' : 'Hugging Face'} ↗
        </a>
      </header>

      {d.access && (
        <div className="callout warn" role="note" data-testid="access-note">
          <p>{d.access.message}</p>
          <p className="row">
            {d.access.kind !== 'archived' && <a href="#/settings">Open Settings</a>}
            {d.access.url && (
              <a href={d.access.url} target="_blank" rel="noopener noreferrer">
                {d.access.kind === 'gated' ? 'Request access' : 'Model page'} ↗
              </a>
            )}
          </p>
        </div>
      )}

      {d.versions.length > 1 && (
        <nav className="versions" aria-label="Versions">
          {d.versions.map((v) => (
            <a
              key={v.id}
              href={modelHref(d.source, d.id, v.id)}
              className={v.id === selected?.id ? 'on' : undefined}
              aria-current={v.id === selected?.id ? 'true' : undefined}
              onClick={(e) => {
                e.preventDefault()
                location.replace(modelHref(d.source, d.id, v.id))
              }}
            >
              {v.name}
              {v.baseModel ? <span className="muted"> · {v.baseModel}</span> : null}
              {v.installed ? <span className="dot compat-compatible" title="Installed" /> : null}
            </a>
          ))}
        </nav>
      )}

      {selected ? (
        <VersionView d={d} v={selected} />
      ) : (
        <p className="muted">This model has no versions to install.</p>
      )}

      <Description d={d} v={selected} />
      <Licence d={d} />
    </>
  )
}

function VersionView({ d, v }: { d: ModelDetails; v: ModelVersion }): React.JSX.Element {
  return (
    <div className="version" data-testid="version">
      <div className="version-facts">
        <div>
          <h2>
            {v.name}
            {v.baseModel && <span className="muted"> · {v.baseModel}</span>}
          </h2>
          <p className="muted small">
            {v.publishedAt ? `Published ${formatDate(v.publishedAt)}` : ''}
            {v.earlyAccess
              ? ` · Early access${v.earlyAccessEndsAt ? ` until ${formatDate(v.earlyAccessEndsAt)}` : ''}`
              : ''}
          </p>
        </div>
        <CompatDetails compat={v.compat} />
      </div>
      {v.trainedWords.length > 0 && <TriggerWords words={v.trainedWords} />}
      <Files d={d} v={v} />
      <Gallery images={v.images} />
    </div>
  )
}

function CopyButton({ text, label }: { text: string; label: string }): React.JSX.Element {
  const [done, setDone] = useState(false)
  return (
    <button
      type="button"
      className="small-button"
      onClick={() => {
        void navigator.clipboard.writeText(text).then(
          () => {
            setDone(true)
            setTimeout(() => setDone(false), 1500)
          },
          () => setDone(false),
        )
      }}
      aria-label={`${label}: ${text}`}
    >
      {done ? 'Copied' : 'Copy'}
    </button>
  )
}

function TriggerWords({ words }: { words: string[] }): React.JSX.Element {
  return (
    <div className="triggers" data-testid="trigger-words">
      <span className="muted">Trigger words</span>
      {words.map((w) => (
        <span key={w} className="trigger">
          <code>{w}</code>
          <CopyButton text={w} label="Copy trigger word" />
        </span>
      ))}
      {words.length > 1 && <CopyButton text={words.join(', ')} label="Copy all trigger words" />}
    </div>
  )
}

function scanLabel(f: ModelFile): { text: string; tone: 'good' | 'warn' | 'bad' | 'plain' } | null {
  const worst = [f.pickleScan, f.virusScan]
  if (worst.includes('danger')) return { text: 'Scan: danger', tone: 'bad' }
  if (worst.includes('pending')) return { text: 'Scan pending', tone: 'warn' }
  if (worst.includes('error')) return { text: 'Scan error', tone: 'warn' }
  if (f.pickleScan === 'success' && f.virusScan === 'success') return { text: 'Scanned', tone: 'good' }
  return null
}

function Files({ d, v }: { d: ModelDetails; v: ModelVersion }): React.JSX.Element {
  const downloads = useDownloads()
  const [started, setStarted] = useState<Record<string, string[]>>({})
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [showAll, setShowAll] = useState(false)
  const files = d.source === 'huggingface' && !showAll ? v.files.filter((f) => f.installable) : v.files
  const hidden = v.files.length - files.length

  const install = async (key: string, req: Req<'models:install'>): Promise<void> => {
    setErrors((e) => ({ ...e, [key]: '' }))
    const r: Result<InstallResult> = await api.invoke('models:install', req)
    if (!r.ok) setErrors((e) => ({ ...e, [key]: r.error.message }))
    else if (r.value.alreadyInstalled) setErrors((e) => ({ ...e, [key]: 'Already in your library.' }))
    else setStarted((s) => ({ ...s, [key]: r.value.downloadIds }))
  }

  const jobsFor = (key: string, name?: string): DownloadInfo[] => {
    const ids = started[key] ?? []
    const mine = downloads.filter((x) => ids.includes(x.id))
    if (mine.length > 0 || !name) return mine
    return downloads.filter((x) => x.fileName === name && isActive(x)).slice(0, 1)
  }

  return (
    <div className="files">
      <h3>Files</h3>
      {d.diffusers && (
        <div className="pipeline-install">
          <p className="muted">
            This repository is a diffusers pipeline: install it as one folder (configs, tokenizer and
            weights).
          </p>
          <InstallCell
            label="Install the whole pipeline"
            jobs={jobsFor('pipeline')}
            error={errors.pipeline}
            installed={d.installed && !d.updateAvailable}
            onInstall={() => void install('pipeline', { source: 'huggingface', repo: d.id })}
          />
        </div>
      )}
      <table className="file-table" data-testid="files">
        <thead>
          <tr>
            <th>File</th>
            <th>Format</th>
            <th>Precision</th>
            <th>Size</th>
            <th>Checks</th>
            <th aria-label="Install" />
          </tr>
        </thead>
        <tbody>
          {files.map((f) => {
            const scan = scanLabel(f)
            const req: Req<'models:install'> =
              d.source === 'civitai'
                ? { source: 'civitai', versionId: v.id, fileId: f.id }
                : { source: 'huggingface', repo: d.id, path: f.path, revision: v.id }
            return (
              <tr key={f.id} data-testid="file-row" data-file={f.name}>
                <td>
                  <span className="file-name" title={f.path}>
                    {d.source === 'huggingface' ? f.path : f.name}
                  </span>
                  {f.primary && d.source === 'civitai' && <Tag tone="accent">Primary</Tag>}
                  {f.fileType && d.source === 'civitai' && f.fileType !== 'Model' && <Tag>{f.fileType}</Tag>}
                </td>
                <td>{f.format ?? '–'}</td>
                <td>{f.precision ?? '–'}</td>
                <td title={f.sizeExact ? undefined : 'approximate'}>
                  {formatBytes(f.sizeBytes)}
                  {f.sizeVariant ? ` (${f.sizeVariant})` : ''}
                </td>
                <td>{scan && <Tag tone={scan.tone}>{scan.text}</Tag>}</td>
                <td className="install-cell">
                  {f.installable ? (
                    <InstallCell
                      label="Install"
                      jobs={jobsFor(f.id, f.name)}
                      error={errors[f.id]}
                      installed={f.installed}
                      onInstall={() => void install(f.id, req)}
                    />
                  ) : (
                    <span className="muted small" title="Atelier installs .safetensors weights only">
                      Not installable
                    </span>
                  )}
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
      {d.source === 'huggingface' && (hidden > 0 || showAll) && (
        <button type="button" className="link-button" onClick={() => setShowAll((x) => !x)}>
          {showAll ? 'Show weights only' : `Show all files (${hidden} more)`}
        </button>
      )}
    </div>
  )
}

function InstallCell({
  label,
  jobs,
  error,
  installed,
  onInstall,
}: {
  label: string
  jobs: DownloadInfo[]
  error?: string
  installed: boolean
  onInstall: () => void
}): React.JSX.Element {
  const active = jobs.filter(isActive)
  const failed = jobs.find((j) => j.state === 'failed' || j.install.state === 'failed')
  const total = jobs.reduce((s, j) => s + (j.total ?? 0), 0)
  const bytes = jobs.reduce((s, j) => s + (j.state === 'done' ? (j.total ?? j.bytes) : j.bytes), 0)
  const paused = jobs.some((j) => j.state === 'paused')
  let body: React.JSX.Element
  if (installed && active.length === 0) body = <Tag tone="good">Installed</Tag>
  else if (active.length > 0 || paused) {
    const verifying = jobs.some((j) => j.state === 'verifying')
    const installing = jobs.some(
      (j) => j.install.state === 'installing' || (j.state === 'done' && j.install.state === 'pending'),
    )
    const pct = total > 0 ? Math.min(100, Math.round((bytes / total) * 100)) : 0
    body = (
      <span className="inline-progress" data-testid="install-progress">
        <progress max={100} value={pct} aria-label={`${label}: ${pct}%`} />
        <span className="small muted">
          {paused ? 'Paused' : verifying ? 'Verifying…' : installing ? 'Installing…' : `${pct}%`}{' '}
          <a href="#/models/downloads">Downloads</a>
        </span>
      </span>
    )
  } else {
    body = (
      <button type="button" className="primary" onClick={onInstall} data-testid="install-button">
        {failed ? 'Try again' : label}
      </button>
    )
  }
  const message =
    error || (failed ? (failed.error?.message ?? failed.install.message ?? 'The install failed.') : '')
  return (
    <div className="install">
      {body}
      {message && (
        <p className={error === 'Already in your library.' ? 'muted small' : 'error small'} role="alert">
          {message}
          {/Settings/.test(message) && (
            <>
              {' '}
              <a href="#/settings">Open Settings</a>
            </>
          )}
        </p>
      )}
    </div>
  )
}

function ParamLine({ img }: { img: ModelImage }): React.JSX.Element | null {
  const p = img.params
  if (!p) return <p className="muted small">No generation parameters.</p>
  const facts = [
    p.sampler,
    p.steps !== null ? `${p.steps} steps` : null,
    p.cfgScale !== null ? `CFG ${p.cfgScale}` : null,
    p.seed !== null ? `seed ${p.seed}` : null,
    p.width && p.height ? `${p.width}×${p.height}` : null,
  ].filter(Boolean)
  return (
    <div className="params">
      {p.prompt && (
        <p className="prompt" title={p.prompt}>
          {p.prompt}
        </p>
      )}
      {p.negativePrompt && (
        <p className="prompt negative" title={p.negativePrompt}>
          <span className="muted">Negative: </span>
          {p.negativePrompt}
        </p>
      )}
      <p className="muted small">{facts.join(' · ')}</p>
    </div>
  )
}

/** Resources a preview image needs that are not installed: one click resolves (by version id or hash) and installs. */
function MissingResources({ resources }: { resources: PreviewResource[] }): React.JSX.Element {
  const [state, setState] = useState<Record<number, string>>({})
  const install = async (i: number, r: PreviewResource): Promise<void> => {
    setState((s) => ({ ...s, [i]: 'Looking up…' }))
    let versionId = r.modelVersionId !== null ? String(r.modelVersionId) : null
    if (versionId === null && r.hash) {
      const found = await api.invoke('models:by-hash', { hash: r.hash })
      if (!found.ok) return setState((s) => ({ ...s, [i]: found.error.message }))
      versionId = found.value?.versionId ?? null
    }
    if (versionId === null) return setState((s) => ({ ...s, [i]: 'Not found on Civitai.' }))
    const res = await api.invoke('models:install', { source: 'civitai', versionId })
    setState((s) => ({
      ...s,
      [i]: !res.ok
        ? res.error.message
        : res.value.alreadyInstalled
          ? 'Already in your library.'
          : 'Installing (see Downloads); use the settings again when done.',
    }))
  }
  return (
    <ul className="missing-resources" data-testid="missing-resources">
      {resources.map((r, i) => (
        <li key={i}>
          <span>
            {r.kind} <strong>{resourceLabel(r)}</strong>
            {r.weight !== null ? ` (${r.weight})` : ''}
          </span>{' '}
          {state[i] ? (
            <span className="muted small" role="status">
              {state[i]}
            </span>
          ) : (
            <button
              type="button"
              disabled={r.modelVersionId === null && r.hash === null}
              title={
                r.modelVersionId === null && r.hash === null
                  ? 'No version id or hash to look it up by'
                  : undefined
              }
              onClick={() => void install(i, r)}
            >
              Install
            </button>
          )}
        </li>
      ))}
    </ul>
  )
}

function Gallery({ images }: { images: ModelImage[] }): React.JSX.Element | null {
  const settings = useSettings()
  const [notice, setNotice] = useState<string>()
  const [missing, setMissing] = useState<PreviewResource[]>([])
  if (images.length === 0) return null
  return (
    <div className="previews">
      <h3>Preview images</h3>
      {notice && (
        <p className="callout info" role="status">
          {notice} <a href="#/img2img">Open Img2img →</a>
        </p>
      )}
      {missing.length > 0 && <MissingResources resources={missing} />}
      <ul className="image-grid">
        {images.slice(0, 12).map((img) => (
          <li key={img.url} className="image-item" data-testid="preview-image">
            {img.type === 'image' ? (
              <ImageBox
                src={{ kind: 'remote', url: img.url }}
                alt={img.params?.prompt ?? 'Preview image'}
                ratio={img.width && img.height ? `${img.width} / ${img.height}` : '2 / 3'}
                blur={settings?.nsfw !== 'show' && img.nsfw}
              />
            ) : (
              <div className="imgbox" style={{ aspectRatio: '2 / 3' }}>
                <span className="imgbox-empty">Video preview (not shown)</span>
              </div>
            )}
            <ParamLine img={img} />
            {img.params && (
              <button
                type="button"
                onClick={() => {
                  if (!img.params) return
                  const r = applyImageSettings(img.params)
                  setNotice(r.message)
                  setMissing(r.missing)
                }}
                data-testid="use-settings"
              >
                Use these settings
              </button>
            )}
          </li>
        ))}
      </ul>
    </div>
  )
}

function Description({ d, v }: { d: ModelDetails; v: ModelVersion | undefined }): React.JSX.Element | null {
  const html = useMemo(() => (d.descriptionHtml ? sanitizeHtml(d.descriptionHtml) : ''), [d.descriptionHtml])
  const versionHtml = v?.descriptionHtml ?? null
  const vhtml = useMemo(() => (versionHtml ? sanitizeHtml(versionHtml) : ''), [versionHtml])
  if (!html && !vhtml && !d.readme) return null
  return (
    <div className="description">
      <h3>About</h3>
      {html && <div className="rich" dangerouslySetInnerHTML={{ __html: html }} data-testid="description" />}
      {vhtml && (
        <>
          <h4>About {v?.name}</h4>
          <div className="rich" dangerouslySetInnerHTML={{ __html: vhtml }} />
        </>
      )}
      {d.readme && <pre className="readme">{d.readme}</pre>}
    </div>
  )
}

const COMMERCIAL: Record<string, string> = {
  Image: 'sell images',
  RentCivit: 'run on Civitai',
  Rent: 'run on services',
  Sell: 'sell the model',
}

function Licence({ d }: { d: ModelDetails }): React.JSX.Element | null {
  if (!d.license && d.source !== 'civitai') return null
  return (
    <div className="licence" data-testid="licence">
      <h3>Licence</h3>
      {d.license && <p>Licence: {d.license}</p>}
      {d.source === 'civitai' && (
        <p>
          {d.commercialUse.length > 0
            ? `Commercial use allowed: ${d.commercialUse.map((c) => COMMERCIAL[c] ?? c).join(', ')}.`
            : 'No commercial use.'}{' '}
          <span className="muted">Check the model page for the full terms.</span>
        </p>
      )}
    </div>
  )
}
