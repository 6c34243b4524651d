import { useEffect, useRef, useState } from 'react'
import type { ModelCard, ModelFilterOptions, ModelKind, RemoteSourceName } from '../../../../preload/contract'
import { api } from '../../api/client'
import { Tag } from './Badges'
import { useSettings } from './data'
import { formatCount, kindName } from './format'
import { ImageBox } from './ImageBox'
import { browseHref, modelHref, replaceModelsHash } from './route'
import { scrollParent } from './dom'
import { deadlineMessage, SEARCH_DEADLINE_MS, sourceName, withDeadline } from './search-deadline'

interface Filters {
  source: RemoteSourceName
  query: string
  type: ModelKind | ''
  base: string
  sort: string
  period: string
  /** Page size (a `limit` in the address; the UI keeps the default). */
  limit: number
}

interface Results {
  key: string
  items: ModelCard[]
  cursor: string | null
  error?: string
}

const PAGE = 24

function filtersFrom(p: URLSearchParams): Filters {
  return {
    source: p.get('source') === 'huggingface' ? 'huggingface' : 'civitai',
    query: p.get('q') ?? '',
    type: (p.get('type') as ModelKind | null) ?? '',
    base: p.get('base') ?? '',
    sort: p.get('sort') ?? '',
    period: p.get('period') ?? '',
    limit: Math.max(1, Math.min(100, Number(p.get('limit')) || PAGE)),
  }
}

function toParams(f: Filters): Record<string, string> {
  const out: Record<string, string> = {}
  if (f.source !== 'civitai') out.source = f.source
  if (f.query) out.q = f.query
  if (f.type) out.type = f.type
  if (f.base) out.base = f.base
  if (f.sort) out.sort = f.sort
  if (f.period) out.period = f.period
  if (f.limit !== PAGE) out.limit = String(f.limit)
  return out
}

function request(f: Filters, cursor: string | null) {
  return {
    source: f.source,
    ...(f.query ? { query: f.query } : {}),
    ...(f.type ? { types: [f.type] } : {}),
    ...(f.base ? { baseModels: [f.base] } : {}),
    ...(f.sort ? { sort: f.sort } : {}),
    ...(f.period && f.source === 'civitai' ? { period: f.period } : {}),
    cursor,
    limit: f.limit,
  }
}

/** The last results, so coming back from a model page shows the same grid at once. */
let cached: Results = { key: '', items: [], cursor: null }

export function BrowseView({ params }: { params: URLSearchParams }): React.JSX.Element {
  const [filters, setFilters] = useState<Filters>(() => filtersFrom(params))
  const [draft, setDraft] = useState(filters.query)
  const [options, setOptions] = useState<Record<string, ModelFilterOptions>>({})
  const [results, setResults] = useState<Results>(cached)
  const [loadingMore, setLoadingMore] = useState(false)
  const sentinel = useRef<HTMLDivElement>(null)
  const key = JSON.stringify(filters)
  const settings = useSettings()

  const change = (patch: Partial<Filters>): void => {
    const next = { ...filters, ...patch }
    if (patch.source && patch.source !== filters.source)
      Object.assign(next, { type: '', base: '', sort: '', period: '' })
    setFilters(next)
  }

  // Typing searches after a short pause; Enter searches at once.
  useEffect(() => {
    if (draft === filters.query) return
    const t = setTimeout(() => {
      setFilters((f) => ({ ...f, query: draft }))
    }, 450)
    return () => clearTimeout(t)
  }, [draft, filters.query])

  useEffect(() => {
    replaceModelsHash(browseHref(toParams(JSON.parse(key) as Filters)))
  }, [key])

  useEffect(() => {
    if (options[filters.source]) return
    let live = true
    void api.invoke('models:options', { source: filters.source }).then((r) => {
      if (live && r.ok) setOptions((o) => ({ ...o, [filters.source]: r.value }))
    })
    return () => {
      live = false
    }
  }, [filters.source, options])

  useEffect(() => {
    if (results.key === key) return
    let live = true
    const f = JSON.parse(key) as Filters
    // Bounded: an unreachable or silent source becomes an error with Retry instead of an endless wait.
    void withDeadline(
      api.invoke('models:search', request(f, null)),
      SEARCH_DEADLINE_MS,
      deadlineMessage(f.source),
    ).then((r) => {
      if (!live) return
      const next: Results = r.ok
        ? { key, items: r.value.items, cursor: r.value.nextCursor }
        : { key, items: [], cursor: null, error: r.error.message }
      cached = next
      setResults(next)
    })
    return () => {
      live = false
    }
  }, [key, results.key])

  const loading = results.key !== key
  const cursor = loading ? null : results.cursor

  useEffect(() => {
    const el = sentinel.current
    if (!el || !cursor || loadingMore) return
    const io = new IntersectionObserver(
      (entries) => {
        if (!entries.some((e) => e.isIntersecting)) return
        io.disconnect()
        setLoadingMore(true)
        const f = JSON.parse(key) as Filters
        void withDeadline(
          api.invoke('models:search', request(f, cursor)),
          SEARCH_DEADLINE_MS,
          deadlineMessage(f.source),
        ).then((r) => {
          setLoadingMore(false)
          setResults((prev) => {
            if (prev.key !== key) return prev
            const seen = new Set(prev.items.map((i) => i.id))
            const next: Results = r.ok
              ? {
                  key,
                  items: [...prev.items, ...r.value.items.filter((i) => !seen.has(i.id))],
                  cursor: r.value.nextCursor,
                }
              : { ...prev, error: r.error.message, cursor: null }
            cached = next
            return next
          })
        })
      },
      { root: scrollParent(el), rootMargin: '600px' },
    )
    io.observe(el)
    return () => io.disconnect()
  }, [cursor, key, loadingMore])

  const opts = options[filters.source]
  const retry = (): void => {
    cached = { key: '', items: [], cursor: null }
    setResults(cached)
  }
  const blurNsfw = settings?.nsfw !== 'show'
  return (
    <section className="browse" aria-label="Browse models">
      <form
        className="browse-bar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault()
          change({ query: draft })
        }}
      >
        <div className="segmented" role="radiogroup" aria-label="Source">
          {(['civitai', 'huggingface'] as const).map((s) => (
            <button
              key={s}
              type="button"
              role="radio"
              aria-checked={filters.source === s}
              className={filters.source === s ? 'on' : undefined}
              onClick={() => change({ source: s })}
              data-testid={`source-${s}`}
            >
              {s === 'civitai' ? 'Civitai' : 'Hugging Face'}
            </button>
          ))}
        </div>
        <input
          type="search"
          className="grow"
          placeholder={filters.source === 'civitai' ? 'Search Civitai models' : 'Search Hugging Face repos'}
          aria-label="Search"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          data-testid="search-input"
        />
        <select
          aria-label="Type"
          value={filters.type}
          onChange={(e) => change({ type: e.target.value as ModelKind | '' })}
          data-testid="filter-type"
        >
          <option value="">All types</option>
          {opts?.types.map((t) => (
            <option key={t.value} value={t.value}>
              {t.label}
            </option>
          ))}
        </select>
        <select
          aria-label="Base model"
          value={filters.base}
          onChange={(e) => change({ base: e.target.value })}
          data-testid="filter-base"
        >
          <option value="">All bases</option>
          {opts?.baseModels.map((b) => (
            <option key={b} value={b}>
              {b}
            </option>
          ))}
        </select>
        <select
          aria-label="Sort"
          value={filters.sort}
          onChange={(e) => change({ sort: e.target.value })}
          data-testid="filter-sort"
        >
          <option value="">{filters.source === 'civitai' ? 'Highest Rated' : 'Most Downloaded'}</option>
          {opts?.sorts
            .filter((s) => s !== (filters.source === 'civitai' ? 'Highest Rated' : 'Most Downloaded'))
            .map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
        </select>
        {filters.source === 'civitai' && (
          <select
            aria-label="Period"
            value={filters.period}
            onChange={(e) => change({ period: e.target.value })}
            data-testid="filter-period"
          >
            <option value="">All time</option>
            {opts?.periods
              .filter((p) => p !== 'AllTime')
              .map((p) => (
                <option key={p} value={p}>
                  {p === 'Day' ? 'Today' : `This ${p.toLowerCase()}`}
                </option>
              ))}
          </select>
        )}
      </form>
      {settings?.nsfw === 'hide' && filters.source === 'civitai' && (
        <p className="muted small">Mature models and images are hidden (Settings → Mature content).</p>
      )}
      {results.error && !loading && (
        <div className="search-error" role="alert" data-testid="search-error">
          <p className="error">{results.error}</p>
          <button type="button" data-testid="search-retry" onClick={retry}>
            Retry
          </button>
        </div>
      )}
      {loading && (
        <p className="search-loading muted" role="status" data-testid="search-loading">
          <span className="spinner" aria-hidden="true" />
          Searching {sourceName(filters.source)}
          {filters.query ? ` for “${filters.query}”` : ''}…
        </p>
      )}
      {loading ? (
        <div className="grid" aria-busy="true">
          {Array.from({ length: 8 }, (_, i) => (
            <div key={i} className="card skeleton" aria-hidden />
          ))}
        </div>
      ) : results.error && results.items.length === 0 ? null : results.items.length === 0 ? (
        <div className="empty">
          <p>Nothing found{filters.query ? ` for “${filters.query}”` : ''}.</p>
          <p className="muted">Try fewer filters or another source.</p>
        </div>
      ) : (
        <ul className="grid" data-testid="results">
          {results.items.map((c) => (
            <li key={`${c.source}:${c.id}`}>
              <Card card={c} blurNsfw={blurNsfw} />
            </li>
          ))}
        </ul>
      )}
      <div ref={sentinel} className="sentinel" aria-hidden />
      {loadingMore && <p className="muted center">Loading more…</p>}
      {!loading && !cursor && results.items.length > filters.limit && (
        <p className="muted center">That is everything.</p>
      )}
    </section>
  )
}

function Card({ card: c, blurNsfw }: { card: ModelCard; blurNsfw: boolean }): React.JSX.Element {
  return (
    <a className="card" href={modelHref(c.source, c.id)} data-testid="model-card" data-model-id={c.id}>
      <ImageBox
        src={c.image ? { kind: 'remote', url: c.image.url } : null}
        alt=""
        blur={blurNsfw && c.image?.nsfw === true}
        // Hugging Face lists no preview images: a short banner instead of an empty poster frame.
        ratio={c.source === 'huggingface' ? '16 / 7' : '2 / 3'}
        empty={c.source === 'huggingface' ? 'Hugging Face' : 'No preview'}
      />
      <div className="card-badges">
        {c.installed && (
          <Tag tone="good" testId="badge-installed">
            Installed
          </Tag>
        )}
        {c.updateAvailable && (
          <Tag tone="accent" testId="badge-update">
            Update available
          </Tag>
        )}
        {c.earlyAccess && <Tag tone="warn">Early access</Tag>}
        {c.gated && <Tag tone="warn">Gated</Tag>}
      </div>
      <div className="card-body">
        <strong className="card-title" title={c.name}>
          {c.name}
        </strong>
        <span className="muted small">
          {kindName(c.kind)}
          {c.baseModels.length > 0 ? ` · ${c.baseModels.slice(0, 2).join(', ')}` : ''}
        </span>
        <span className="muted small stats">
          {c.downloads !== null && <span title="Downloads">↓ {formatCount(c.downloads)}</span>}
          {c.likes !== null && <span title="Likes">♥ {formatCount(c.likes)}</span>}
          {c.creator && <span className="creator">{c.creator}</span>}
        </span>
      </div>
    </a>
  )
}
