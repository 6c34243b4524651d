import { useStore } from '../studio/store'
import { setHires, setSdUpscale, upscaleSettings } from './upscale-options'
import { UpscalerSelect } from './UpscalerSelect'

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v))

/** txt2img "Hires. fix": upscale factor, upscaler (latent or pixel), denoising strength, steps. */
export function HiresOptions(): React.JSX.Element {
  const h = useStore(upscaleSettings, (s) => s.hires)
  return (
    <fieldset className="hires" data-testid="hires-options">
      <legend>
        <label className="check">
          <input
            type="checkbox"
            data-testid="hires-enabled"
            checked={h.enabled}
            onChange={(e) => setHires({ enabled: e.target.checked })}
          />
          Hires. fix
        </label>
      </legend>
      {h.enabled && (
        <div className="grid2">
          <label>
            Upscaler
            <UpscalerSelect
              latent
              testId="hires-upscaler"
              value={h.upscaler}
              onChange={(upscaler) => setHires({ upscaler })}
            />
          </label>
          <label>
            Upscale by
            <input
              type="number"
              data-testid="hires-scale"
              min={1}
              max={4}
              step={0.05}
              value={h.scale}
              onChange={(e) => setHires({ scale: clamp(Number(e.target.value) || 1, 1, 4) })}
            />
          </label>
          <label>
            Denoising strength
            <input
              type="number"
              data-testid="hires-strength"
              min={0.01}
              max={1}
              step={0.01}
              value={h.strength}
              onChange={(e) => setHires({ strength: clamp(Number(e.target.value) || 0.01, 0.01, 1) })}
            />
          </label>
          <label>
            Hires steps (0 = same)
            <input
              type="number"
              data-testid="hires-steps"
              min={0}
              max={150}
              value={h.steps}
              onChange={(e) => setHires({ steps: clamp(Math.round(Number(e.target.value) || 0), 0, 150) })}
            />
          </label>
        </div>
      )}
    </fieldset>
  )
}

/** img2img "SD upscale": upscale, then img2img tile by tile at the panel's size, tiles blended over the overlap. */
export function SdUpscaleOptions(): React.JSX.Element {
  const u = useStore(upscaleSettings, (s) => s.sdUpscale)
  return (
    <fieldset className="sd-upscale" data-testid="sd-upscale-options">
      <legend>
        <label className="check">
          <input
            type="checkbox"
            data-testid="sd-upscale-enabled"
            checked={u.enabled}
            onChange={(e) => setSdUpscale({ enabled: e.target.checked })}
          />
          SD upscale
        </label>
      </legend>
      {u.enabled && (
        <div className="grid2">
          <label>
            Upscaler
            <UpscalerSelect
              testId="sd-upscaler"
              value={u.upscaler}
              onChange={(upscaler) => setSdUpscale({ upscaler })}
            />
          </label>
          <label>
            Scale factor
            <input
              type="number"
              data-testid="sd-upscale-scale"
              min={1}
              max={4}
              step={0.05}
              value={u.scale}
              onChange={(e) => setSdUpscale({ scale: clamp(Number(e.target.value) || 1, 1, 4) })}
            />
          </label>
          <label>
            Tile overlap
            <input
              type="number"
              data-testid="sd-upscale-overlap"
              min={0}
              max={256}
              step={8}
              value={u.tileOverlap}
              onChange={(e) =>
                setSdUpscale({ tileOverlap: clamp(Math.round(Number(e.target.value) || 0), 0, 256) })
              }
            />
          </label>
          <p className="hint span2">
            Tiles are the panel’s width × height; each tile is an img2img at the strength above.
          </p>
        </div>
      )}
    </fieldset>
  )
}
