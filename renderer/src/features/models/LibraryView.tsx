import { useEffect, useState } from 'react'
import type {
  DoctorResult,
  JobInfo,
  LibraryFamily,
  LibraryModel,
  LibraryModelType,
  LibrarySource,
} from '../../../../preload/contract'
import { familyLabel } from '../../../../preload/family-label'
import { api } from '../../api/client'
import { Tag, VerifiedTag } from './Badges'
import { useLibraryVersion } from './data'
import { formatBytes, kindName } from './format'
import { healthOf } from './health'
import { ImageBox } from './ImageBox'
import { LibraryDetails } from './LibraryDetails'
import { browseHref } from './route'

const TYPES: LibraryModelType[] = [
  'checkpoint',
  'lora',
  'embedding',
  'vae',
  'upscaler',
  'ip-adapter',
  'image-encoder',
  'taesd',
]
const FAMILIES: LibraryFamily[] = ['sd-1', 'sd-2', 'sdxl', 'sd-3', 'flux-1', 'flux-2', 'other']
const SOURCES: { value: LibrarySource; label: string }[] = [
  { value: 'civitai', label: 'Civitai' },
  { value: 'huggingface', label: 'Hugging Face' },
  { value: 'local', label: 'Local files' },
]

export const STARTERS = [
  {
    title: 'A Stable Diffusion 1.5 checkpoint',
    text: 'Start here: the most downloaded SD 1.5 checkpoints on Civitai, small and quick to run.',
    href: browseHref({ type: 'checkpoint', base: 'SD 1.5', sort: 'Most Downloaded' }),
  },
  {
    title: 'Style LoRAs for SD 1.5',
    text: 'Small add-ons that change the look; they need an SD 1.5 checkpoint.',
    href: browseHref({ type: 'lora', base: 'SD 1.5', sort: 'Highest Rated' }),
  },
  {
    title: 'Checkpoints on Hugging Face',
    text: 'Official and community Stable Diffusion repositories, as single files or diffusers folders.',
    href: browseHref({ source: 'huggingface', type: 'checkpoint', base: 'SD 1.5' }),
  },
]

interface Query {
  text: string
  type: LibraryModelType | ''
  family: LibraryFamily | ''
  source: LibrarySource | ''
}

export function LibraryView({ params }: { params: URLSearchParams }): React.JSX.Element {
  const version = useLibraryVersion()
  const [query, setQuery] = useState<Query>({ text: '', type: '', family: '', source: '' })
  const [layout, setLayout] = useState<'grid' | 'list'>(() =>
    localStorage.getItem('atelier.library.layout') === 'list' ? 'list' : 'grid',
  )
  const [models, setModels] = useState<{ key: string; list: LibraryModel[]; error?: string }>({
    key: '',
    list: [],
  })
  const [selected, setSelected] = useState<string | null>(params.get('id'))
  const key = JSON.stringify([query, version])

  useEffect(() => {
    let live = true
    const [q] = JSON.parse(key) as [Query, number]
    void api
      .invoke('library:list', {
        ...(q.text.trim() ? { text: q.text.trim() } : {}),
        ...(q.type ? { type: q.type } : {}),
        ...(q.family ? { family: q.family } : {}),
        ...(q.source ? { source: q.source } : {}),
      })
      .then((r) => {
        if (live) setModels(r.ok ? { key, list: r.value } : { key, list: [], error: r.error.message })
      })
    return () => {
      live = false
    }
  }, [key])

  const set = (patch: Partial<Query>): void => setQuery((q) => ({ ...q, ...patch }))
  const filtered = query.text || query.type || query.family || query.source
  const loaded = models.key !== ''
  const list = models.list
  const sel = selected ? list.find((m) => m.id === selected) : undefined

  return (
    <section className="library" aria-label="Library">
      <div className="m-toolbar wrap">
        <input
          type="search"
          className="grow"
          placeholder="Search by name or trigger word"
          aria-label="Search the library"
          value={query.text}
          onChange={(e) => set({ text: e.target.value })}
          data-testid="library-search"
        />
        <select
          aria-label="Type"
          value={query.type}
          onChange={(e) => set({ type: e.target.value as Query['type'] })}
          data-testid="library-type"
        >
          <option value="">All types</option>
          {TYPES.map((t) => (
            <option key={t} value={t}>
              {kindName(t)}
            </option>
          ))}
        </select>
        <select
          aria-label="Base"
          value={query.family}
          onChange={(e) => set({ family: e.target.value as Query['family'] })}
        >
          <option value="">All bases</option>
          {FAMILIES.map((f) => (
            <option key={f} value={f}>
              {familyLabel(f)}
            </option>
          ))}
        </select>
        <select
          aria-label="Source"
          value={query.source}
          onChange={(e) => set({ source: e.target.value as Query['source'] })}
        >
          <option value="">All sources</option>
          {SOURCES.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </select>
        <div className="segmented" role="radiogroup" aria-label="Layout">
          {(['grid', 'list'] as const).map((l) => (
            <button
              key={l}
              type="button"
              role="radio"
              aria-checked={layout === l}
              className={layout === l ? 'on' : undefined}
              onClick={() => {
                setLayout(l)
                localStorage.setItem('atelier.library.layout', l)
              }}
            >
              {l === 'grid' ? 'Grid' : 'List'}
            </button>
          ))}
        </div>
      </div>
      <Maintenance />
      {models.error && (
        <p className="error" role="alert">
          {models.error}
        </p>
      )}
      <div className={sel ? 'library-body with-details' : 'library-body'}>
        <div className="library-main">
          {!loaded ? (
            <p className="muted">Loading…</p>
          ) : list.length === 0 ? (
            filtered ? (
              <div className="empty">
                <p>No model matches these filters.</p>
              </div>
            ) : (
              <Starters />
            )
          ) : layout === 'grid' ? (
            <ul className="grid library-grid" data-testid="library-grid">
              {list.map((m) => (
                <li key={m.id}>
                  <LibraryCard
                    m={m}
                    version={version}
                    selected={m.id === selected}
                    onOpen={() => setSelected(m.id)}
                  />
                </li>
              ))}
            </ul>
          ) : (
            <table className="library-table" data-testid="library-list">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Type</th>
                  <th>Base</th>
                  <th>Size</th>
                  <th>Source</th>
                  <th>Hash</th>
                </tr>
              </thead>
              <tbody>
                {list.map((m) => (
                  <tr key={m.id} className={m.id === selected ? 'on' : undefined}>
                    <td>
                      <button type="button" className="link-button" onClick={() => setSelected(m.id)}>
                        {m.name}
                      </button>
                    </td>
                    <td>{kindName(m.type)}</td>
                    <td>{familyLabel(m.family)}</td>
                    <td>{formatBytes(m.size)}</td>
                    <td>
                      {m.source === 'huggingface'
                        ? 'Hugging Face'
                        : m.source === 'civitai'
                          ? 'Civitai'
                          : 'Local'}
                    </td>
                    <td>
                      {healthOf(m) === 'damaged' ? <Tag tone="bad">Damaged</Tag> : <VerifiedTag m={m} />}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        {sel && (
          <LibraryDetails key={sel.id} model={sel} version={version} onClose={() => setSelected(null)} />
        )}
      </div>
    </section>
  )
}

function LibraryCard({
  m,
  version,
  selected,
  onOpen,
}: {
  m: LibraryModel
  version: number
  selected: boolean
  onOpen: () => void
}): React.JSX.Element {
  return (
    <button
      type="button"
      className={selected ? 'card lib-card on' : 'card lib-card'}
      onClick={onOpen}
      data-testid="library-card"
      data-name={m.name}
      aria-pressed={selected}
    >
      <ImageBox
        src={m.hasPreview ? { kind: 'library', id: m.id, version } : null}
        alt=""
        empty={kindName(m.type)}
      />
      <div className="card-badges">
        {healthOf(m) === 'damaged' ? (
          <Tag tone="bad">Damaged</Tag>
        ) : healthOf(m) === 'verified' ? (
          <Tag tone="good">Verified</Tag>
        ) : null}
        {m.note && !m.problem && <Tag tone="warn">Can’t run yet</Tag>}
      </div>
      <div className="card-body">
        <strong className="card-title" title={m.fileName}>
          {m.name}
        </strong>
        <span className="muted small">
          {kindName(m.type)} · {familyLabel(m.family)}
        </span>
        <span className="muted small">{formatBytes(m.size)}</span>
      </div>
    </button>
  )
}

function Starters(): React.JSX.Element {
  return (
    <div className="empty starters" data-testid="library-empty">
      <p>No models yet — here are three good starters:</p>
      <ul>
        {STARTERS.map((s) => (
          <li key={s.title}>
            <a href={s.href}>
              <strong>{s.title}</strong>
              <span className="muted small">{s.text}</span>
            </a>
          </li>
        ))}
      </ul>
      <p className="muted small">
        Already have models in an A1111 or ComfyUI folder? Add that folder under “Maintenance” above.
      </p>
    </div>
  )
}

/** Scan, add a folder, doctor. */
function Maintenance(): React.JSX.Element {
  const [open, setOpen] = useState(false)
  const [folder, setFolder] = useState('')
  const [job, setJob] = useState<JobInfo>()
  const [message, setMessage] = useState<{ text: string; error: boolean }>()
  const [doctor, setDoctor] = useState<DoctorResult>()
  const [checking, setChecking] = useState(false)
  const jobId = job?.id

  useEffect(() => {
    if (!jobId) return
    return api.on('jobs:progress', (j) => {
      if (j.id === jobId) setJob(j)
    })
  }, [jobId])

  const scanning = job?.state === 'running' || job?.state === 'queued'
  const startScan = async (): Promise<void> => {
    setMessage(undefined)
    const r = await api.invoke('library:scan', {})
    if (r.ok)
      setJob({
        id: r.value.jobId,
        kind: 'library-scan',
        label: 'Scanning',
        state: 'running',
        progress: 0,
        startedAt: Date.now(),
      })
    else setMessage({ text: r.error.message, error: true })
  }
  const addFolder = async (): Promise<void> => {
    setMessage(undefined)
    const r = await api.invoke('library:add-root', { path: folder })
    if (r.ok) {
      setJob({
        id: r.value.jobId,
        kind: 'library-scan',
        label: 'Scanning',
        state: 'running',
        progress: 0,
        startedAt: Date.now(),
      })
      setMessage({
        text: `Added ${r.value.path} (${r.value.layout} layout); its files stay where they are.`,
        error: false,
      })
      setFolder('')
    } else setMessage({ text: r.error.message, error: true })
  }
  const runDoctor = async (): Promise<void> => {
    setChecking(true)
    const r = await api.invoke('library:doctor', {})
    setChecking(false)
    if (r.ok) setDoctor(r.value)
    else setMessage({ text: r.error.message, error: true })
  }

  return (
    <details
      className="maintenance"
      open={open}
      onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}
    >
      <summary>Maintenance: scan, add a folder, check files</summary>
      <div className="row wrap">
        <button type="button" onClick={() => void startScan()} disabled={scanning}>
          Scan library
        </button>
        <form
          className="row grow"
          onSubmit={(e) => {
            e.preventDefault()
            void addFolder()
          }}
        >
          <input
            className="grow"
            placeholder="/path/to/stable-diffusion-webui or a models folder"
            aria-label="Folder to add"
            value={folder}
            onChange={(e) => setFolder(e.target.value)}
            data-testid="add-root-input"
          />
          <button type="submit" disabled={!folder.trim() || scanning}>
            Add folder
          </button>
        </form>
        <button type="button" onClick={() => void runDoctor()} disabled={checking}>
          {checking ? 'Checking…' : 'Check files'}
        </button>
      </div>
      {job && (
        <div className="scan-status" role="status">
          <progress max={1} value={job.state === 'done' ? 1 : job.progress} aria-label="Scan progress" />
          <span className="small muted">
            {job.state === 'running'
              ? `Scanning… ${job.message ?? ''}`
              : job.state === 'done'
                ? `Scan finished: ${job.message ?? ''}`
                : `Scan ${job.state}: ${job.message ?? ''}`}
          </span>
        </div>
      )}
      {message && (
        <p
          className={message.error ? 'error small' : 'muted small'}
          role={message.error ? 'alert' : 'status'}
        >
          {message.text}
        </p>
      )}
      {doctor && (
        <div className="doctor" data-testid="doctor">
          {doctor.ok ? (
            <p className="muted small">All {doctor.checked} models look fine.</p>
          ) : (
            <>
              <p className="small">
                {doctor.issues.length} problem{doctor.issues.length === 1 ? '' : 's'} in {doctor.checked}{' '}
                models:
              </p>
              <ul className="small">
                {doctor.issues.map((i) => (
                  <li key={`${i.kind}:${i.id}`}>
                    <Tag tone={i.kind === 'duplicate' || i.kind === 'changed' ? 'warn' : 'bad'}>{i.kind}</Tag>{' '}
                    {i.message}
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
    </details>
  )
}
