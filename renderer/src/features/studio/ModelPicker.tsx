import { familyLabel } from '../../../../preload/family-label'
import { useStore } from './store'
import { refreshLibrary, selectedCheckpoint, setParams, studio } from './studio-state'

/** Checkpoint picker: library checkpoints with their family badge; unusable ones listed but disabled. */
export function ModelPicker(): React.JSX.Element {
  const checkpoints = useStore(studio, (s) => s.checkpoints)
  const model = useStore(studio, (s) => s.params.model)
  const error = useStore(studio, (s) => s.libraryError)
  const selected = useStore(studio, selectedCheckpoint)

  return (
    <div className="model-picker">
      <label>
        Model
        <div className="row">
          <select
            data-testid="model-select"
            value={selected?.id ?? model}
            onChange={(e) => setParams({ model: e.target.value })}
          >
            {!selected && (
              <option value={model}>{model ? `${model} (not in library)` : 'Choose a checkpoint…'}</option>
            )}
            {checkpoints.map((m) => (
              <option key={m.id} value={m.id} disabled={m.note !== null} title={m.note ?? m.fileName}>
                {m.name} · {familyLabel(m.family)}
                {m.variant === 'inpaint' ? ' · inpaint' : ''}
                {m.note ? ' (cannot run)' : ''}
              </option>
            ))}
          </select>
          <span
            className={`badge family-${selected?.family ?? 'unknown'}`}
            data-testid="model-family"
            title={selected?.baseModel ?? 'base model'}
          >
            {familyLabel(selected?.family ?? null)}
          </span>
          <button
            type="button"
            title="Reload the library"
            aria-label="Reload the library"
            onClick={() => void refreshLibrary()}
          >
            ↻
          </button>
        </div>
      </label>
      {error && <p className="hint error">Library: {error}</p>}
      {!error && checkpoints.length === 0 && (
        <p className="hint">
          No checkpoints yet: install one in Models, or add a library folder in Settings.
        </p>
      )}
    </div>
  )
}
