import { pickSampler, presetForRequest, presetSummary } from '../../../../preload/few-step'
import { SAMPLERS } from './params'
import { useStore } from './store'
import { selectedCheckpoint, setParams, studio } from './studio-state'

/**
 * "Use recommended settings: LCM · 4 steps · CFG 1" when the checkpoint or a picked LoRA is a few-step
 * model (LCM, Lightning, Hyper-SD, Turbo, TCD). One click applies the authors' steps, CFG and sampler;
 * every field stays editable afterwards. Hidden when the settings already match.
 */
export function FewStepChip(): React.JSX.Element | null {
  const checkpoint = useStore(studio, selectedCheckpoint)
  const loras = useStore(studio, (s) => s.loras)
  const p = useStore(studio, (s) => s.params)
  const picked = p.loras.map((c) => loras.find((l) => (c.id ? l.id === c.id : l.name === c.name))?.fewStep)
  const preset = presetForRequest(checkpoint?.fewStep, picked)
  if (!preset) return null
  const sampler = pickSampler(preset, SAMPLERS) ?? p.sampler
  const scheduleType = preset.scheduleType ?? 'Automatic'
  if (
    p.steps === preset.steps &&
    p.cfgScale === preset.cfgScale &&
    p.sampler === sampler &&
    p.scheduleType === scheduleType
  )
    return null
  const [s0, s1] = preset.stepsRange
  const [c0, c1] = preset.cfgRange
  const title =
    `${preset.label}: recognised from ${preset.reason}; settings from ${preset.settingsFrom}` +
    ` (steps ${s0 === s1 ? s0 : `${s0}–${s1}`}, CFG ${c0 === c1 ? c0 : `${c0}–${c1}`}` +
    `${sampler !== preset.sampler ? `; ${preset.sampler} is not available here, using ${sampler}` : ''})`
  return (
    <button
      type="button"
      className="chip few-step-chip"
      data-testid="few-step-chip"
      title={title}
      onClick={() => setParams({ steps: preset.steps, cfgScale: preset.cfgScale, sampler, scheduleType })}
    >
      Use recommended settings: {presetSummary(preset, sampler)}
    </button>
  )
}
