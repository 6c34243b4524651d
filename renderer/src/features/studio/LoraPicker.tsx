import { useEffect, useState } from 'react'
import type { CompatInfo } from '../../../../preload/contract'
import { familyLabel } from '../../../../preload/family-label'
import { library, loraCompatibility, type CompatState, type LibraryModel } from './generation-adapter'
import { withTriggerWords } from './params'
import { useStore } from './store'
import { selectedCheckpoint, setParams, studio } from './studio-state'

const MARK: Record<CompatState, string> = { compatible: '✓', partial: '~', incompatible: '✗' }

/** The library's own verdicts (library:get), fetched once per LoRA; the local rule fills in meanwhile. */
function useLibraryCompat(loras: LibraryModel[]): Record<string, CompatInfo | null> {
  const [compat, setCompat] = useState<Record<string, CompatInfo | null>>({})
  const ids = loras.map((l) => l.id).join(',')
  useEffect(() => {
    let live = true
    const missing = ids.split(',').filter((id) => id && !(id in compat))
    if (missing.length === 0) return
    void Promise.all(missing.map(async (id) => [id, await library.details(id)] as const)).then((rs) => {
      if (!live) return
      setCompat((prev) => {
        const next = { ...prev }
        for (const [id, r] of rs) next[id] = r.ok ? r.value.compat : null
        return next
      })
    })
    return () => {
      live = false
    }
  }, [ids, compat])
  return compat
}

function compatOf(
  lora: LibraryModel,
  checkpoint: LibraryModel | undefined,
  info: CompatInfo | null | undefined,
): { state: CompatState; reason: string } {
  const against = checkpoint && info?.checkpoints.find((c) => c.id === checkpoint.id)
  if (against) return { state: against.state, reason: against.reason }
  return loraCompatibility(lora, checkpoint)
}

/**
 * LoRAs: chosen ones with a weight slider and a "trigger words" button; the add list shows every LoRA
 * with its compatibility against the current checkpoint (incompatible ones marked, never hidden).
 */
export function LoraPicker(): React.JSX.Element {
  const loras = useStore(studio, (s) => s.loras)
  const chosen = useStore(studio, (s) => s.params.loras)
  const prompt = useStore(studio, (s) => s.params.prompt)
  const checkpoint = useStore(studio, selectedCheckpoint)
  const compat = useLibraryCompat(loras)

  const add = (id: string): void => {
    const m = loras.find((l) => l.id === id)
    if (!m || chosen.some((c) => c.id === id)) return
    setParams({ loras: [...chosen, { id: m.id, name: m.name, weight: m.preferredWeight ?? 1 }] })
  }

  return (
    <fieldset className="lora-picker" data-testid="lora-picker">
      <legend>LoRA</legend>
      {chosen.map((c, i) => {
        const m = loras.find((l) => l.id === c.id || l.name === c.name)
        const v = m ? compatOf(m, checkpoint, compat[m.id]) : undefined
        return (
          <div key={c.id ?? c.name} className={`lora-row compat-${v?.state ?? 'partial'}`}>
            <span className="lora-name" title={v?.reason}>
              {v ? MARK[v.state] : '?'} {c.name}
            </span>
            <input
              type="range"
              min={-1}
              max={2}
              step={0.05}
              value={c.weight}
              aria-label={`${c.name} weight`}
              onChange={(e) =>
                setParams({
                  loras: chosen.map((x, j) => (j === i ? { ...x, weight: Number(e.target.value) } : x)),
                })
              }
            />
            <span className="num">{c.weight.toFixed(2)}</span>
            <button
              type="button"
              disabled={!m || m.trainedWords.length === 0}
              title={m?.trainedWords.length ? `Add: ${m.trainedWords.join(', ')}` : 'No trigger words known'}
              onClick={() => m && setParams({ prompt: withTriggerWords(prompt, m.trainedWords) })}
            >
              + triggers
            </button>
            <button
              type="button"
              aria-label={`Remove ${c.name}`}
              onClick={() => setParams({ loras: chosen.filter((_, j) => j !== i) })}
            >
              ×
            </button>
          </div>
        )
      })}
      <select aria-label="Add a LoRA" data-testid="lora-add" value="" onChange={(e) => add(e.target.value)}>
        <option value="">{loras.length === 0 ? 'No LoRAs in the library' : 'Add a LoRA…'}</option>
        {loras.map((m) => {
          const v = compatOf(m, checkpoint, compat[m.id])
          return (
            <option key={m.id} value={m.id} className={`compat-${v.state}`} title={v.reason}>
              {MARK[v.state]} {m.name} · {familyLabel(m.family)}
              {v.state === 'incompatible'
                ? ' (incompatible)'
                : v.state === 'partial'
                  ? ' (may not match)'
                  : ''}
            </option>
          )
        })}
      </select>
    </fieldset>
  )
}
