/** Small float32 tensor helpers for the pipelines (flat NCHW arrays, one torch float32 rounding per op). */

const f32 = Math.fround

/** [x, x, ...] n times (torch.cat([x] * n)). */
export function repeat(x: Float32Array, n: number): Float32Array {
  const out = new Float32Array(x.length * n)
  for (let i = 0; i < n; i++) out.set(x, i * x.length)
  return out
}

/**
 * Concatenates NCHW tensors along the channel axis (torch.cat(dim=1)); each part is [batch, c_i, h, w]
 * given by its channel count.
 */
export function concatChannels(
  parts: { data: Float32Array; channels: number }[],
  batch: number,
  hw: number,
): Float32Array {
  const total = parts.reduce((a, p) => a + p.channels, 0)
  const out = new Float32Array(batch * total * hw)
  for (let b = 0; b < batch; b++) {
    let c0 = 0
    for (const p of parts) {
      const n = p.channels * hw
      if (p.data.length !== batch * n)
        throw new Error(`concatChannels: part has ${p.data.length} values, expected ${batch * n}`)
      out.set(p.data.subarray(b * n, (b + 1) * n), (b * total + c0) * hw)
      c0 += p.channels
    }
  }
  return out
}

/** uncond + g * (cond - uncond) for eps laid out as [uncond batch, cond batch] (diffusers' order). */
export function guidance(eps: Float32Array, g: number): Float32Array {
  const half = eps.length / 2
  const out = new Float32Array(half)
  for (let i = 0; i < half; i++) {
    const u = eps[i]!
    out[i] = u + f32(g * f32(eps[half + i]! - u))
  }
  return out
}

/** A1111 combine_denoised: eps = [uncond, cond_1..cond_k]; uncond + sum_i w_i * g * (cond_i - uncond). */
export function combine(eps: Float32Array, weights: number[], g: number): Float32Array {
  const n = eps.length / (weights.length + 1)
  const out = eps.slice(0, n)
  weights.forEach((w, k) => {
    const s = f32(w * g)
    const off = (k + 1) * n
    for (let i = 0; i < n; i++) out[i] = out[i]! + f32(s * f32(eps[off + i]! - eps[i]!))
  })
  return out
}

/** a * keep + b * (1 - keep), elementwise (keep has a's size; see expandPlanes). */
export function blend(a: Float32Array, b: Float32Array, keep: Float32Array): Float32Array {
  if (a.length !== b.length || a.length !== keep.length)
    throw new Error(`blend: sizes differ (${a.length}, ${b.length}, ${keep.length})`)
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) {
    const k = keep[i]!
    out[i] = f32(a[i]! * k) + f32(b[i]! * f32(1 - k))
  }
  return out
}

/** One [h, w] plane per batch item (or one shared plane) repeated over channels -> [batch, channels, h, w]. */
export function expandPlanes(
  planes: Float32Array,
  batch: number,
  channels: number,
  hw: number,
): Float32Array {
  const shared = planes.length === hw
  if (!shared && planes.length !== batch * hw)
    throw new Error(`expandPlanes: ${planes.length} values for ${batch} planes of ${hw}`)
  const out = new Float32Array(batch * channels * hw)
  for (let b = 0; b < batch; b++) {
    const src = shared ? planes : planes.subarray(b * hw, (b + 1) * hw)
    for (let c = 0; c < channels; c++) out.set(src, (b * channels + c) * hw)
  }
  return out
}

export function scale(x: Float32Array, s: number): Float32Array {
  const out = new Float32Array(x.length)
  for (let i = 0; i < x.length; i++) out[i] = f32(x[i]! * s)
  return out
}

/** mean + std * noise (DiagonalGaussianDistribution.sample), then * scalingFactor. */
export function sampleLatents(
  mean: Float32Array,
  std: Float32Array,
  noise: Float32Array,
  scalingFactor: number,
): Float32Array {
  const out = new Float32Array(mean.length)
  for (let i = 0; i < out.length; i++) out[i] = f32(f32(mean[i]! + f32(std[i]! * noise[i]!)) * scalingFactor)
  return out
}
