import ort from 'onnxruntime-node'
import type { ExecutionProviderInfo } from '../../preload/contract-types'

/** What onnxruntime-node offers here; the engine's runtime picks from these (CPU always last). */
export function executionProviderInfo(preferred = 'auto'): ExecutionProviderInfo {
  const available = ort
    .listSupportedBackends()
    .filter((b) => b.bundled || b.name === 'cpu')
    .map((b) => b.name)
  if (preferred === 'auto' || preferred === 'cpu') return { name: 'cpu', available }
  if (available.includes(preferred)) return { name: preferred, available }
  return {
    name: 'cpu',
    available,
    fallbackReason: `${preferred} is not available in this build; using the CPU.`,
  }
}
