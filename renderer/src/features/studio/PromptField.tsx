import { useRef } from 'react'
import { highlightPrompt } from './prompt-highlight'

/**
 * A prompt textarea with A1111 syntax highlighted behind it: the textarea's text is transparent and a
 * mirror div with the same metrics shows coloured segments (weights, `<lora:…>` tags, BREAK/AND, known
 * embeddings).
 */
export function PromptField({
  label,
  value,
  onChange,
  testId,
  rows = 3,
  placeholder,
  embeddings = [],
}: {
  label: string
  value: string
  onChange: (v: string) => void
  testId: string
  rows?: number
  placeholder?: string
  /** Names of the installed textual-inversion embeddings (file names without extension). */
  embeddings?: readonly string[]
}): React.JSX.Element {
  const mirror = useRef<HTMLDivElement>(null)
  const segments = highlightPrompt(value, embeddings)
  return (
    <label className="prompt-field">
      {label}
      <div className="prompt-box">
        <div className="prompt-mirror" ref={mirror} aria-hidden="true">
          {segments.map((s, i) =>
            s.kind === 'text' ? (
              s.text
            ) : (
              <span
                key={i}
                className={`tok-${s.kind}`}
                {...(s.kind === 'embedding' ? { 'data-embedding': '' } : {})}
              >
                {s.text}
              </span>
            ),
          )}
          {'\n'}
        </div>
        <textarea
          data-testid={testId}
          rows={rows}
          value={value}
          spellCheck={false}
          placeholder={placeholder}
          onChange={(e) => onChange(e.target.value)}
          onScroll={(e) => {
            if (mirror.current) mirror.current.scrollTop = e.currentTarget.scrollTop
          }}
        />
      </div>
    </label>
  )
}
