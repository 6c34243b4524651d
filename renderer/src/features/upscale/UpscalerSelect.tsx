import { useEffect, useState } from 'react'
import { api } from '../../api/client'
import { LATENT_UPSCALERS } from './upscale-options'

/** Upscaler choice: Lanczos, the library's usable upscalers (by name), and optionally the latent modes. */
export function UpscalerSelect({
  value,
  onChange,
  latent = false,
  testId,
  label = 'Upscaler',
}: {
  value: string
  onChange: (name: string) => void
  latent?: boolean
  testId?: string
  /** Accessible name (the select is also usable outside a <label>). */
  label?: string
}): React.JSX.Element {
  const [models, setModels] = useState<string[]>([])
  useEffect(() => {
    let live = true
    void api.invoke('library:list', { type: 'upscaler' }).then((r) => {
      if (live && r.ok)
        setModels(r.value.filter((m) => m.note === null && m.problem === null).map((m) => m.name))
    })
    return () => {
      live = false
    }
  }, [])
  const names = [...(latent ? LATENT_UPSCALERS : []), 'Lanczos', 'Nearest', ...models]
  return (
    <select aria-label={label} data-testid={testId} value={value} onChange={(e) => onChange(e.target.value)}>
      {[...new Set([...names, value])].map((n) => (
        <option key={n}>{n}</option>
      ))}
    </select>
  )
}
