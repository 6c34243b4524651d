/**
 * Numerics shared by the schedulers. diffusers 0.21.4 mixes torch float32 tensors with numpy float64
 * arrays; every helper here says which one it reproduces. `f32` is Math.fround: one float32 rounding,
 * applied after each torch float32 operation so that results agree with torch to the last bit where
 * the operation is correctly rounded (add, sub, mul, div, sqrt).
 */

export const f32 = Math.fround

const f32Buf = new Float32Array(1)
const u32Buf = new Uint32Array(f32Buf.buffer)

/** The next float32 after x towards +inf (x must be a finite float32). */
function nextUpF32(x: number): number {
  if (x === 0) return 1.401298464324817e-45
  f32Buf[0] = x
  u32Buf[0] = x > 0 ? u32Buf[0]! + 1 : u32Buf[0]! - 1
  return f32Buf[0]
}

/** The next float32 before x towards -inf (x must be a finite float32). */
function nextDownF32(x: number): number {
  if (x === 0) return -1.401298464324817e-45
  f32Buf[0] = x
  u32Buf[0] = x > 0 ? u32Buf[0]! - 1 : u32Buf[0]! + 1
  return f32Buf[0]
}

/**
 * fmaf(a, b, c) for float32 inputs: a*b+c with one rounding to float32, as the C compiler emits
 * for `c + a * b` when it contracts to an FMA instruction (torch's AVX2 kernels do).
 */
export function fmaf(a: number, b: number, c: number): number {
  const p = a * b // exact: two 24-bit significands fit in 53 bits
  const s = p + c
  // two-sum: s + err == p + c exactly
  const bb = s - p
  const err = p - (s - bb) + (c - bb)
  const r = f32(s)
  if (err === 0 || r === s) return r
  // s is within half a float32 ulp of r; only an exact tie in double can round the wrong way.
  const other = r < s ? nextUpF32(r) : nextDownF32(r)
  const mid = (r + other) / 2
  if (s !== mid) return r
  // s sits exactly on the midpoint: the true value lies on err's side of it
  return err > 0 === other > r ? other : r
}

/**
 * torch.linspace(start, end, steps, dtype=float32) on CPU as PyTorch 1.13 computes it with AVX2:
 * step = (end - start) / (steps - 1) in float; the first half counts up from start, the second half
 * counts down from end; blocks of 2x8 lanes take a base value from one fused multiply-add and add
 * k * step per lane; the tail is scalar. Bit-exact against diffusers' betas (1000 steps).
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps)
  if (steps === 0) return out
  const s = f32(start)
  const e = f32(end)
  if (steps === 1) {
    out[0] = s
    return out
  }
  const step = f32(f32(e - s) / f32(steps - 1))
  const halfway = Math.floor(steps / 2)
  const base = (idx: number): number => (idx < halfway ? fmaf(step, idx, s) : fmaf(-step, steps - idx - 1, e))
  const scalar = (idx: number): number =>
    idx < halfway ? f32(s + f32(step * idx)) : f32(e - f32(step * (steps - idx - 1)))
  const V = 8
  let i = 0
  for (; i + 2 * V <= steps; i += V) {
    const b = base(i)
    for (let k = 0; k < V; k++) out[i + k] = f32(b + f32(k * step))
  }
  for (; i < steps; i++) out[i] = scalar(i)
  return out
}

/** numpy.linspace(start, stop, num) in float64 (endpoint=True): i * step + start, last = stop. */
export function npLinspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num)
  if (num === 0) return out
  const div = num - 1
  const delta = stop - start
  const step = div > 0 ? delta / div : NaN
  for (let i = 0; i < num; i++) {
    out[i] = step === 0 ? (i / div) * delta + start : div > 0 ? i * step + start : start
  }
  if (num > 1) out[num - 1] = stop
  return out
}

/** numpy.arange(start, stop, step) in float64: ceil((stop - start) / step) values start + i * step. */
export function npArange(start: number, stop: number, step: number): Float64Array {
  const n = Math.max(0, Math.ceil((stop - start) / step))
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) out[i] = start + i * step
  return out
}

/** numpy's round(): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x)
  if (Math.abs(x % 1) === 0.5 && r % 2 !== 0) return r - 1
  return r
}

/**
 * numpy.interp(x, xp, fp) in float64 (xp increasing). Outside the range it returns the end values;
 * on an exact knot it returns that knot's value (numpy avoids the slope there).
 */
export function npInterp(x: number, xp: ArrayLike<number>, fp: ArrayLike<number>): number {
  const n = xp.length
  if (Number.isNaN(x)) return x
  if (x < xp[0]!) return fp[0]!
  if (x >= xp[n - 1]!) return fp[n - 1]!
  // largest j with xp[j] <= x
  let lo = 0
  let hi = n - 1
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1
    if (xp[mid]! <= x) lo = mid
    else hi = mid
  }
  const j = lo
  if (xp[j] === x) return fp[j]!
  const slope = (fp[j + 1]! - fp[j]!) / (xp[j + 1]! - xp[j]!)
  return slope * (x - xp[j]!) + fp[j]!
}

/** diffusers' betas_for_alpha_bar (Glide cosine, python float64, then torch float32). */
export function betasForAlphaBar(n: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    const t1 = i / n
    const t2 = (i + 1) / n
    out[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta)
  }
  return out
}

/** torch.cumprod(1 - betas) on CPU: float32 inputs, accumulated in double, each output rounded. */
export function alphasCumprodFromBetas(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length)
  let acc = 1
  for (let i = 0; i < betas.length; i++) {
    acc *= f32(1 - betas[i]!)
    out[i] = acc
  }
  return out
}

/**
 * The training noise levels sigma_i = ((1 - a_i) / a_i) ** 0.5, computed on the float32 tensor as
 * diffusers does (torch pow(0.5) is sqrt), in ascending order (index = training timestep).
 */
export function trainSigmas(alphasCumprod: Float32Array): Float32Array {
  const out = new Float32Array(alphasCumprod.length)
  for (let i = 0; i < out.length; i++) {
    const a = alphasCumprod[i]!
    out[i] = Math.sqrt(f32(f32(1 - a) / a))
  }
  return out
}

/**
 * diffusers `_convert_to_karras` (rho 7), float64. sigmaMin / sigmaMax are taken from the ends of
 * the input as diffusers does (in_sigmas[-1], in_sigmas[0]), whichever order that input is in.
 */
export function karrasSigmas(first: number, last: number, n: number, rho = 7): Float64Array {
  const sigmaMin = last
  const sigmaMax = first
  const ramp = npLinspace(0, 1, n)
  const minInvRho = sigmaMin ** (1 / rho)
  const maxInvRho = sigmaMax ** (1 / rho)
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) out[i] = (maxInvRho + ramp[i]! * (minInvRho - maxInvRho)) ** rho
  return out
}

/**
 * diffusers `_sigma_to_t(sigma, log_sigmas)` with numpy 1.24 dtype rules: log_sigmas is float32
 * (np.log of the float32 sigma table), so the distance, the interpolation weight and 1 - w are
 * float32; the final blend of the two integer indices is float64.
 */
export function sigmaToT(sigma: number, logSigmas: Float32Array): number {
  const logSigma = f32(Math.log(sigma))
  const n = logSigmas.length
  // low_idx = argmax(cumsum(dists >= 0)) = last index with log_sigmas[i] <= log_sigma (0 if none)
  let lowIdx = 0
  for (let i = 0; i < n; i++) if (logSigma - logSigmas[i]! >= 0) lowIdx = i
  lowIdx = Math.min(lowIdx, n - 2)
  const highIdx = lowIdx + 1
  const low = logSigmas[lowIdx]!
  const high = logSigmas[highIdx]!
  let w = f32(f32(low - logSigma) / f32(low - high))
  w = Math.min(Math.max(w, 0), 1)
  return f32(1 - w) * lowIdx + w * highIdx
}

/** np.log applied to a float32 array (result float32). */
export function logF32(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length)
  for (let i = 0; i < x.length; i++) out[i] = Math.log(x[i]!)
  return out
}

/** Same-length check for step inputs, with a message that names the tensors. */
export function assertSameLength(what: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) {
    throw new Error(`${what}: tensor sizes differ (${a.length} vs ${b.length} elements)`)
  }
}
