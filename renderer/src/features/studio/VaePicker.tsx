import { familyLabel } from '../../../../preload/family-label'
import { useStore } from './store'
import { selectedCheckpoint, setParams, studio } from './studio-state'

const RUNS = new Set(['sd-1', 'sdxl'])

/**
 * A1111's "SD VAE": Automatic (the checkpoint's own VAE), then the library's separate VAEs. A VAE known to be
 * of another family than the checkpoint (an SDXL VAE for an SD 1.5 checkpoint) is listed but disabled.
 */
export function VaePicker(): React.JSX.Element {
  const vaes = useStore(studio, (s) => s.vaes)
  const vae = useStore(studio, (s) => s.params.vae)
  const checkpoint = useStore(studio, selectedCheckpoint)
  const family = checkpoint?.family ?? null
  const selected = vaes.find((m) => m.id === vae || m.name === vae)
  const other = (f: string | null): boolean =>
    f !== null && family !== null && RUNS.has(f) && RUNS.has(family) && f !== family
  return (
    <label className="vae-picker">
      VAE
      <select
        data-testid="vae-select"
        value={selected?.id ?? vae}
        title="Decodes (and, for img2img, encodes) the image; Automatic uses the checkpoint's own"
        onChange={(e) => setParams({ vae: e.target.value })}
      >
        <option value="">Automatic (the checkpoint&apos;s own)</option>
        {vae && !selected && <option value={vae}>{vae} (not in library)</option>}
        {vaes.map((m) => (
          <option
            key={m.id}
            value={m.id}
            disabled={other(m.family)}
            title={other(m.family) ? `for ${familyLabel(m.family)} checkpoints` : m.fileName}
          >
            {m.name}
            {m.family && RUNS.has(m.family) ? ` · ${familyLabel(m.family)}` : ''}
            {other(m.family) ? ' (other family)' : ''}
          </option>
        ))}
      </select>
    </label>
  )
}
