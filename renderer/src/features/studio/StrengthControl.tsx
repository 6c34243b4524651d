import { stepsRun } from '../../canvas-kit/geometry'
import type { ResizeMode } from '../../../../preload/contract-types'
import { useStore } from './store'
import { setParams, studio } from './studio-state'

const RESIZE_MODES: { value: ResizeMode; label: string }[] = [
  { value: 'just-resize', label: 'Just resize' },
  { value: 'crop-and-resize', label: 'Crop and resize' },
  { value: 'resize-and-fill', label: 'Resize and fill' },
]

/**
 * Denoising strength with the steps it will actually run beside it (A1111: int(strength × steps) + 1;
 * "exact steps": all of them, from a longer schedule), and the resize mode for inputs of another size.
 */
export function StrengthControl(): React.JSX.Element {
  const strength = useStore(studio, (s) => s.params.strength)
  const steps = useStore(studio, (s) => s.params.steps)
  const exact = useStore(studio, (s) => s.params.exactSteps)
  const resizeMode = useStore(studio, (s) => s.params.resizeMode)
  const run = stepsRun(steps, strength, exact)

  return (
    <fieldset className="strength">
      <legend>Image</legend>
      <label>
        <span className="row spread">
          <span>Denoising strength</span>
          <span className="num" data-testid="strength-value">
            {strength.toFixed(2)}
          </span>
        </span>
        <input
          type="range"
          data-testid="strength"
          min={0}
          max={1}
          step={0.01}
          value={strength}
          onChange={(e) => setParams({ strength: Number(e.target.value) })}
        />
      </label>
      <p className={`hint ${run === 0 ? 'error' : ''}`} data-testid="steps-run">
        {run === 0
          ? `Runs no step: ${steps} × ${strength.toFixed(2)} < 1. Raise the strength or the steps.`
          : exact
            ? `Runs ${run} steps (all ${steps}, from a ${Math.floor(steps / Math.min(strength, 0.999))}-step schedule)`
            : `Runs ${run} of ${steps} steps (A1111: int(strength × steps) + 1)`}
      </p>
      <label className="check">
        <input
          type="checkbox"
          checked={exact}
          onChange={(e) => setParams({ exactSteps: e.target.checked })}
        />
        Exact steps (run all steps, as A1111's option and ComfyUI do)
      </label>
      <label>
        Resize mode
        <select
          data-testid="resize-mode"
          value={resizeMode}
          onChange={(e) => setParams({ resizeMode: e.target.value as ResizeMode })}
        >
          {RESIZE_MODES.map((m) => (
            <option key={m.value} value={m.value}>
              {m.label}
            </option>
          ))}
        </select>
      </label>
    </fieldset>
  )
}
