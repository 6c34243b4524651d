import type { WorkerJob } from '../generation/protocol'

/**
 * Image-prompt settings for the PNG infotext (A1111 "extra" key/value pairs, the names the ControlNet
 * extension's IP-Adapter units use where one exists): adapter, encoder, per-image weights and the scale run.
 */
export function imagePromptParameters(
  job: Pick<WorkerJob, 'imagePrompt' | 'request'>,
): Record<string, string> {
  const ip = job.imagePrompt
  const images = job.request.imagePrompts ?? []
  if (!ip || images.length === 0) return {}
  const weights = images.map((p) => p.weight ?? 1)
  const out: Record<string, string> = {
    'IP-Adapter': ip.adapter.sha256
      ? `${ip.adapter.name} [${ip.adapter.sha256.slice(0, 10)}]`
      : ip.adapter.name,
    'IP-Adapter encoder': ip.encoder.name,
    'IP-Adapter weight': String(Math.max(...weights)),
    'Image prompts': String(images.length),
  }
  if (images.length > 1) out['Image prompt weights'] = weights.join(', ')
  return out
}
