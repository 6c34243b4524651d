import { useEffect, useMemo, useRef, useState } from 'react'
import type { LibraryModel, LibraryModelDetails } from '../../../../preload/contract'
import { familyLabel } from '../../../../preload/family-label'
import { api } from '../../api/client'
import { CompatDetails, Tag, VerifiedTag } from './Badges'
import { formatBytes, formatDate, kindName } from './format'
import { sendToStudio } from './handoff'
import { ImageBox } from './ImageBox'
import { sanitizeHtml } from './sanitize'

export function LibraryDetails({
  model: m,
  version,
  onClose,
}: {
  model: LibraryModel
  version: number
  onClose: () => void
}): React.JSX.Element {
  const [details, setDetails] = useState<LibraryModelDetails>()
  const [mode, setMode] = useState<'view' | 'rename' | 'delete'>('view')
  const [name, setName] = useState(m.name)
  const [message, setMessage] = useState<{ text: string; error: boolean }>()
  const heading = useRef<HTMLHeadingElement>(null)
  const id = m.id

  useEffect(() => {
    let live = true
    void api.invoke('library:get', { id }).then((r) => {
      if (live && r.ok) setDetails(r.value)
    })
    return () => {
      live = false
    }
  }, [id, version])

  useEffect(() => {
    heading.current?.focus()
  }, [])

  const desc = useMemo(() => (m.description ? sanitizeHtml(m.description) : ''), [m.description])

  const rename = async (): Promise<void> => {
    const r = await api.invoke('library:rename', { id: m.id, name })
    if (r.ok) {
      setMode('view')
      setMessage({ text: `Renamed to ${r.value.name} (sidecars too).`, error: false })
    } else setMessage({ text: r.error.message, error: true })
  }
  const remove = async (): Promise<void> => {
    const r = await api.invoke('library:delete', { id: m.id })
    if (r.ok) onClose()
    else {
      setMode('view')
      setMessage({ text: r.error.message, error: true })
    }
  }
  const use = (): void => {
    setMessage({ text: sendToStudio(m), error: false })
    location.hash = '#/img2img'
  }

  return (
    <aside className="lib-details" aria-label={`${m.name} details`} data-testid="library-details">
      <div className="row">
        <h2 ref={heading} tabIndex={-1} className="grow">
          {m.name}
        </h2>
        <button type="button" className="small-button" onClick={onClose} aria-label="Close details">
          ✕
        </button>
      </div>
      <ImageBox
        src={m.hasPreview ? { kind: 'library', id: m.id, version } : null}
        alt={`${m.name} preview`}
        empty="No preview image"
      />
      <div className="row wrap">
        <Tag tone="accent">{kindName(m.type)}</Tag>
        <Tag>{familyLabel(m.family)}</Tag>
        {m.baseModel && <Tag>{m.baseModel}</Tag>}
        {m.variant && m.variant !== 'normal' && <Tag>{m.variant}</Tag>}
        <VerifiedTag m={m} />
      </div>
      {m.problem && (
        <p className="callout bad" role="note">
          {m.problem}
        </p>
      )}
      {m.note && !m.problem && (
        <p className="callout warn" role="note">
          {m.note}
        </p>
      )}
      {details?.compat && m.type !== 'checkpoint' && <CompatDetails compat={details.compat} />}
      {m.trainedWords.length > 0 && (
        <p>
          <span className="muted">Trigger words: </span>
          {m.trainedWords.map((w) => (
            <code key={w} className="trigger-word">
              {w}
            </code>
          ))}
        </p>
      )}

      <div className="row wrap detail-actions">
        {(m.type === 'checkpoint' || m.type === 'lora' || m.type === 'embedding') && (
          <button
            type="button"
            className="primary"
            onClick={use}
            disabled={m.problem !== null}
            data-testid="use-in-img2img"
          >
            Use in Img2img
          </button>
        )}
        <button
          type="button"
          onClick={() => setMode(mode === 'rename' ? 'view' : 'rename')}
          aria-expanded={mode === 'rename'}
        >
          Rename
        </button>
        <button type="button" className="danger" onClick={() => setMode('delete')} data-testid="delete-model">
          Delete…
        </button>
      </div>
      {mode === 'rename' && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault()
            void rename()
          }}
        >
          <input
            className="grow"
            aria-label="New name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            autoFocus
          />
          <button type="submit" disabled={!name.trim() || name === m.name}>
            Save name
          </button>
        </form>
      )}
      {mode === 'delete' && (
        <div
          className="callout bad"
          role="alertdialog"
          aria-label="Confirm delete"
          data-testid="confirm-delete"
        >
          <p>
            Delete <strong>{m.fileName}</strong> and its sidecar files from disk? This cannot be undone.
          </p>
          <div className="row">
            <button
              type="button"
              className="danger"
              onClick={() => void remove()}
              autoFocus
              data-testid="confirm-delete-button"
            >
              Delete
            </button>
            <button type="button" onClick={() => setMode('view')}>
              Keep it
            </button>
          </div>
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

      <dl className="facts">
        <dt>File</dt>
        <dd className="file-name">{m.fileName}</dd>
        <dt>Size</dt>
        <dd>
          {formatBytes(m.size)} · {m.format}
          {m.folder ? ' folder' : ''}
        </dd>
        {m.architecture && (
          <>
            <dt>Architecture</dt>
            <dd>{m.architecture}</dd>
          </>
        )}
        <dt>Source</dt>
        <dd>
          {m.source === 'civitai' && m.civitai
            ? `Civitai · ${m.civitai.modelName ?? `model ${m.civitai.modelId}`} ${m.civitai.versionName ?? ''}`
            : m.source === 'huggingface' && m.huggingface
              ? `Hugging Face · ${m.huggingface.repo}${m.huggingface.path ? `/${m.huggingface.path}` : ''}`
              : 'Local file'}
          {details?.sourceUrl && (
            <>
              {' '}
              <a href={details.sourceUrl} target="_blank" rel="noopener noreferrer">
                Open ↗
              </a>
            </>
          )}
        </dd>
        {details && (
          <>
            <dt>Folder</dt>
            <dd className="file-name">{details.location}</dd>
          </>
        )}
        <dt>Added</dt>
        <dd>{formatDate(m.addedAt)}</dd>
        {m.sha256 && (
          <>
            <dt>SHA-256</dt>
            <dd className="hash" data-testid="sha256">
              {m.sha256}
            </dd>
          </>
        )}
        {m.autoV2 && (
          <>
            <dt>AutoV2</dt>
            <dd className="hash">{m.autoV2}</dd>
          </>
        )}
        {m.autoV3 && (
          <>
            <dt>AutoV3</dt>
            <dd className="hash">{m.autoV3}</dd>
          </>
        )}
        {m.verified === 'mismatch' && m.expectedSha256 && (
          <>
            <dt>Published</dt>
            <dd className="hash">{m.expectedSha256}</dd>
          </>
        )}
        {m.preferredWeight !== null && (
          <>
            <dt>Weight</dt>
            <dd>{m.preferredWeight}</dd>
          </>
        )}
      </dl>
      {m.notes && <p className="muted small">{m.notes}</p>}
      {desc && <div className="rich small" dangerouslySetInnerHTML={{ __html: desc }} />}
    </aside>
  )
}
