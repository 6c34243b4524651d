/**
 * Scalar emulation of PyTorch's aten/src/ATen/native/cpu/avx_mathfun.h (Pommier's cephes-based
 * log256_ps / sincos256_ps) in float32, as GCC compiles it for the AVX2+FMA kernels: each
 * multiply whose only use is an add is fused into one FMA (the pairing below is the one that
 * reproduces PyTorch 1.13's torch.randn bit for bit). Used by TorchCpuGenerator.
 */
import { fmaf } from '../schedulers/math'

const f = Math.fround
const buf = new Float32Array(1)
const bits = new Int32Array(buf.buffer)

const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f)
const LOG_Q1 = f(-2.1219444e-4)
const LOG_Q2 = f(0.693359375)
const SQRTHF = f(0.7071067811865476)
const MIN_NORM = 1.1754943508222875e-38

/** log256_ps for one lane (x > 0). */
export function logAvx(x0: number): number {
  buf[0] = Math.max(x0, MIN_NORM)
  const exponent = bits[0]! >>> 23
  bits[0] = (bits[0]! & ~0x7f800000) | 0x3f000000 // mantissa with exponent of 0.5
  let x = buf[0]!
  let e = f(exponent - 0x7f + 1)
  const below = x < SQRTHF
  const tmp = below ? x : 0
  x = f(x - 1)
  if (below) e = f(e - 1)
  x = f(x + tmp)
  const z = f(x * x)
  let y = LOG_P[0]!
  for (let k = 1; k < LOG_P.length; k++) y = fmaf(y, x, LOG_P[k]!)
  y = f(y * x)
  y = fmaf(y, z, f(e * LOG_Q1))
  y = fmaf(-z, 0.5, y)
  x = f(x + y)
  return fmaf(e, LOG_Q2, x)
}

const DP1 = f(-0.78515625)
const DP2 = f(-2.4187564849853515625e-4)
const DP3 = f(-3.774894977445941e-8)
const SIN_P0 = f(-1.9515295891e-4)
const SIN_P1 = f(8.3321608736e-3)
const SIN_P2 = f(-1.6666654611e-1)
const COS_P0 = f(2.443315711809948e-5)
const COS_P1 = f(-1.388731625493765e-3)
const COS_P2 = f(4.166664568298827e-2)
const FOPI = f(1.27323954473516)

/** sincos256_ps for one lane: [sin(x), cos(x)]. */
export function sincosAvx(x0: number): [number, number] {
  let x = Math.abs(x0)
  let j = Math.trunc(f(x * FOPI))
  j = (j + 1) & ~1
  const y0 = j
  const swapSin = (j & 4) !== 0
  const polyMask = (j & 2) === 0
  const signCos = (~(j - 2) & 4) !== 0
  // extended-precision modular reduction x = ((x - y*DP1) - y*DP2) - y*DP3
  x = fmaf(y0, DP1, x)
  x = fmaf(y0, DP2, x)
  x = fmaf(y0, DP3, x)
  const z = f(x * x)
  let y = fmaf(COS_P0, z, COS_P1)
  y = fmaf(y, z, COS_P2)
  y = f(y * z)
  y = fmaf(y, z, -f(z * 0.5))
  y = f(y + 1)
  let y2 = fmaf(SIN_P0, z, SIN_P1)
  y2 = fmaf(y2, z, SIN_P2)
  y2 = f(y2 * z)
  y2 = fmaf(y2, x, x)
  let s = polyMask ? y2 : y
  let c = polyMask ? y : y2
  if (x0 < 0 !== swapSin) s = -s
  if (signCos) c = -c
  return [s, c]
}
