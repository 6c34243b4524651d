import { useEffect, useRef, useState } from 'react'
import type { MidjourneyParse } from '../../../../preload/contract-types'
import { api } from '../../api/client'
import { AdapterCheck } from '../studio/AdapterCheck'
import { useStore } from '../studio/store'
import { setParams, studio } from '../studio/studio-state'

/**
 * Create's prompt bar: Midjourney's syntax as typed in Discord. Main's one parser (`prompt:midjourney`)
 * highlights the flags, says what they become (size, negative prompt, seed, image prompts), names every
 * flag it will not use, and the syntax popover lists the mapping.
 */
export function MidjourneyBar({ onSubmit }: { onSubmit: () => void }): React.JSX.Element {
  const value = useStore(studio, (s) => s.params.prompt)
  const negative = useStore(studio, (s) => s.params.negativePrompt)
  const model = useStore(studio, (s) => s.params.model)
  const [parse, setParse] = useState<MidjourneyParse>()
  const [showSyntax, setShowSyntax] = useState(false)
  const mirror = useRef<HTMLDivElement>(null)

  useEffect(() => {
    let live = true
    const t = setTimeout(() => {
      void api
        .invoke('prompt:midjourney', { text: value, negativePrompt: negative, ...(model ? { model } : {}) })
        .then((r) => {
          if (live && r.ok) setParse(r.value)
        })
    }, 120)
    return () => {
      live = false
      clearTimeout(t)
    }
  }, [value, negative, model])

  // Highlight only what matches the text on screen (a parse of older text would misalign).
  const spans = parse && parse.text === value ? parse.spans : [{ kind: 'text' as const, text: value }]
  const effects: string[] = []
  if (parse?.midjourney && parse.text === value && !parse.error) {
    if (parse.width && parse.height) effects.push(`${parse.width}×${parse.height}`)
    if (parse.negativePrompt) effects.push(`negative: ${parse.negativePrompt}`)
    if (parse.seed !== undefined) effects.push(`seed ${parse.seed}`)
    if (parse.images.length)
      effects.push(
        `${parse.blend ? '/blend of ' : ''}${parse.images.length} image prompt${parse.images.length > 1 ? 's' : ''}` +
          (parse.iw !== undefined ? ` at --iw ${parse.iw}` : ''),
      )
  }
  return (
    <div className="mj-bar" data-testid="mj-bar">
      <label className="prompt-field mj-field">
        <span className="mj-label">
          Prompt{' '}
          <span className="hint">— Midjourney syntax works: /imagine, --ar 2:3, --no, a::2, --seed</span>
        </span>
        <div className="prompt-box">
          <div className="prompt-mirror" ref={mirror} aria-hidden="true">
            {spans.map((s, i) =>
              s.kind === 'text' ? (
                s.text
              ) : (
                <span key={i} className={`mj-${s.kind}`} title={s.title}>
                  {s.text}
                </span>
              ),
            )}
            {'\n'}
          </div>
          <textarea
            data-testid="prompt"
            aria-describedby="mj-effects mj-warnings"
            rows={3}
            value={value}
            spellCheck={false}
            placeholder="/imagine prompt: a lighthouse at dusk, watercolor --ar 3:2 --no people"
            onChange={(e) => setParams({ prompt: e.target.value })}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey && !e.altKey) {
                // Enter sends, as in Discord; Shift+Enter is a new line.
                e.preventDefault()
                onSubmit()
              }
            }}
            onScroll={(e) => {
              if (mirror.current) mirror.current.scrollTop = e.currentTarget.scrollTop
            }}
          />
        </div>
      </label>
      <div className="mj-status">
        <span id="mj-effects" className="mj-effects" data-testid="mj-effects">
          {effects.length ? `→ ${effects.join(' · ')}` : ''}
        </span>
        <button
          type="button"
          className="link"
          aria-expanded={showSyntax}
          aria-controls="mj-syntax"
          data-testid="mj-syntax-toggle"
          onClick={() => setShowSyntax((v) => !v)}
        >
          Syntax
        </button>
        {showSyntax && parse && (
          <div
            id="mj-syntax"
            className="mj-syntax"
            role="dialog"
            aria-label="Midjourney syntax"
            data-testid="mj-syntax"
          >
            <table>
              <thead>
                <tr>
                  <th scope="col">Midjourney</th>
                  <th scope="col">In Atelier</th>
                </tr>
              </thead>
              <tbody>
                {parse.syntax.map((r) => (
                  <tr key={r.syntax} className={r.supported ? undefined : 'unsupported'}>
                    <td>
                      <code>{r.syntax}</code>
                    </td>
                    <td>{r.mapsTo}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <button type="button" onClick={() => setShowSyntax(false)}>
              Close
            </button>
          </div>
        )}
      </div>
      <div id="mj-warnings" aria-live="polite">
        {parse && parse.text === value && parse.error && (
          <p className="message error" role="alert" data-testid="mj-error">
            {parse.error}
          </p>
        )}
        {parse && parse.text === value && parse.warnings.length > 0 && (
          <ul className="mj-warnings" data-testid="mj-warnings">
            {parse.warnings.map((w) => (
              <li key={w}>{w}</li>
            ))}
          </ul>
        )}
        {/* Image prompts typed in the bar: said at once when no IP-Adapter / image encoder can run them. */}
        {parse &&
          parse.text === value &&
          (parse.blend || parse.images.length > 0 || parse.iw !== undefined) && (
            <AdapterCheck purpose={parse.blend ? '/blend' : 'An image prompt'} />
          )}
      </div>
    </div>
  )
}
