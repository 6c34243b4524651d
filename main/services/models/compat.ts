/**
 * Compatibility of a remote version (or a library model) with the user's checkpoints, in the library's three
 * states plus 'unknown' (nothing to compare with). Never used to hide anything: shown as a badge with a reason.
 */
import type { CompatAgainst, CompatInfo, ModelKind } from '../../../preload/contract-models'
import { familyLabel } from '../../../preload/family-label'
import { compatibility, parseBaseModel, type CompatSubject } from '../../library/compat'
import type { ModelFamily, ModelRecord, ModelType } from '../../library/types'
import { RUNNABLE_BASES } from '../../model-formats/probe/types'

const ADDON_TYPES: Partial<Record<ModelKind, ModelType>> = {
  lora: 'lora',
  embedding: 'embedding',
  vae: 'vae',
}

function runnable(family: ModelFamily): boolean {
  return (RUNNABLE_BASES as readonly string[]).includes(family)
}

/** "SD 1.x and SDXL": what the engine runs today. */
function runnableLabel(): string {
  return RUNNABLE_BASES.map((b) => familyLabel(b)).join(' and ')
}

/** A checkpoint: can Atelier run its family? */
function checkpointCompat(family: ModelFamily | null, label: string | null): CompatInfo {
  if (!family) {
    return {
      state: 'partial',
      reason: 'The base model is not stated; Atelier checks the weights when the file is installed.',
      checkpoints: [],
    }
  }
  if (runnable(family))
    return {
      state: 'compatible',
      reason: `${label ?? familyLabel(family)} checkpoint: Atelier runs it.`,
      checkpoints: [],
    }
  return {
    state: 'incompatible',
    reason: `${label ?? familyLabel(family)} checkpoints are not runnable in Atelier yet (it runs ${runnableLabel()}).`,
    checkpoints: [],
  }
}

/** Summarise per-checkpoint results: the best state wins, with the reason of the checkpoint that gave it. */
export function summarise(addon: CompatSubject, against: CompatAgainst[]): CompatInfo {
  const order: CompatAgainst['state'][] = ['compatible', 'partial', 'incompatible']
  for (const state of order) {
    const hit = against.find((a) => a.state === state)
    if (hit) {
      const others =
        against.length > 1
          ? ` (${against.filter((a) => a.state === state).length} of ${against.length} checkpoints)`
          : ''
      return { state, reason: `${hit.name}: ${hit.reason}${others}`, checkpoints: against }
    }
  }
  if (addon.family && !runnable(addon.family)) {
    return {
      state: 'incompatible',
      reason: `Made for ${familyLabel(addon.family)}; Atelier runs ${runnableLabel()} checkpoints.`,
      checkpoints: [],
    }
  }
  return { state: 'unknown', reason: 'Install a checkpoint to see whether this fits it.', checkpoints: [] }
}

function against(addon: CompatSubject, checkpoints: ModelRecord[]): CompatAgainst[] {
  return checkpoints.map((c) => {
    const r = compatibility(addon, c)
    return { id: c.id, name: c.name, state: r.state, reason: r.reason }
  })
}

/** A remote version of a model of `kind`, labelled with Civitai's `baseModel` string. */
export function remoteCompat(
  kind: ModelKind,
  baseModel: string | null,
  checkpoints: ModelRecord[],
): CompatInfo {
  const base = parseBaseModel(baseModel)
  if (kind === 'checkpoint') return checkpointCompat(base?.family ?? null, base?.label ?? null)
  const type = ADDON_TYPES[kind]
  if (!type) {
    return { state: 'unknown', reason: `Atelier does not use ${kind} models yet.`, checkpoints: [] }
  }
  const addon: CompatSubject = { type, family: base?.family ?? null, subBase: base?.subBase ?? null }
  return summarise(addon, against(addon, checkpoints))
}

/** A library model against the other checkpoints in the library. */
export function libraryCompat(model: ModelRecord, checkpoints: ModelRecord[]): CompatInfo {
  if (model.type === 'checkpoint') return checkpointCompat(model.family, model.baseModel)
  return summarise(
    model,
    against(
      model,
      checkpoints.filter((c) => c.id !== model.id),
    ),
  )
}
