/** Numbers as people read them. */

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '?'
  if (n < 1024) return `${n} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–'
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`
  return String(n)
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–'
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${s % 60} s`
  return `${Math.floor(m / 60)} h ${m % 60} min`
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return ''
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleDateString()
}

const KIND: Record<string, string> = {
  checkpoint: 'Checkpoint',
  lora: 'LoRA',
  embedding: 'Embedding',
  vae: 'VAE',
  controlnet: 'ControlNet',
  upscaler: 'Upscaler',
  hypernetwork: 'Hypernetwork',
  other: 'Other',
}

export function kindName(k: string): string {
  return KIND[k] ?? k
}
