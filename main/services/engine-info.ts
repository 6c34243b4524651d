import ort from 'onnxruntime-node'
import type { ExecutionProviderInfo } from '../../preload/contract-types'
import type { EngineState } from './generation/service'

/**
 * The status bar's provider: the one the latest generation's sessions opened on (with the reason a
 * preferred one was skipped), or the preference while nothing has opened yet.
 */
export function executionProviderInfo(preferred = 'auto', engine?: EngineState): ExecutionProviderInfo {
  const available = ort
    .listSupportedBackends()
    .filter((b) => b.bundled || b.name === 'cpu')
    .map((b) => b.name)
  if (engine && engine.preference === preferred)
    return {
      name: engine.provider,
      preference: preferred,
      opened: true,
      available,
      ...(engine.fallbackReason ? { fallbackReason: engine.fallbackReason } : {}),
      ...(engine.compute ? { compute: engine.compute } : {}),
    }
  if (preferred !== 'auto' && preferred !== 'cpu' && !available.includes(preferred))
    return {
      name: 'cpu',
      preference: preferred,
      opened: false,
      available,
      fallbackReason: `${preferred} is not available in this build; using the CPU.`,
    }
  return { name: preferred, preference: preferred, opened: false, available }
}
