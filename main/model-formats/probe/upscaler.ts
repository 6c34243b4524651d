import path from 'node:path'
import { detectPickle, TorchFile } from '../pickle'
import { readHeader } from '../safetensors'

/**
 * Community upscaler architectures recognised from their weights alone (key names and shapes):
 *
 * - RRDBNet (ESRGAN / Real-ESRGAN) in three namings: BasicSR (`conv_first`, `body.N.rdbM.convK`, `conv_body`,
 *   `conv_upK`, `conv_hr`, `conv_last`; scale 2 / 1 by pixel-unshuffling the input, told by conv_first's input
 *   channels), ESRGAN 2019 (`RRDB_trunk.N.RDBm.convK`, `trunk_conv`, `upconvK`, `HRconv`) and ESRGAN 2018
 *   (`model.0`, `model.1.sub.N.RDBm.convK.0`, `model.1.sub.{nb}`, then one conv per upsampling stage, HR conv,
 *   last conv, at flattened nn.Sequential indices).
 * - SRVGGNetCompact (Real-ESRGAN compact): `body.(2k)` convs with PReLU slopes at `body.(2k+1)`.
 *
 * Every namings maps to one canonical naming (BasicSR-like; upsampling convs are `up.I`), which the graph
 * builders use.
 */

export interface UpStage {
  /** Upscale factor of the stage (2, or 3 for a single x3 stage). */
  factor: number
  /** nearest: Upsample then conv (ESRGAN upconv); pixelshuffle: conv to C*f*f then PixelShuffle. */
  mode: 'nearest' | 'pixelshuffle'
}

export interface RrdbArch {
  kind: 'rrdbnet'
  naming: 'basicsr' | 'esrgan-2019' | 'esrgan-2018'
  inChannels: number
  outChannels: number
  numFeat: number
  numBlock: number
  numGrow: number
  /** Pixel-unshuffle factor of the input (BasicSR x2: 2, x1: 4; otherwise 1). */
  unshuffle: number
  ups: UpStage[]
  /** Overall upscale factor. */
  scale: number
}

export interface SrvggArch {
  kind: 'srvgg'
  inChannels: number
  outChannels: number
  numFeat: number
  numConv: number
  /** prelu is stored in the weights; relu / leakyrelu (0.1) leave no trace, leakyrelu is assumed. */
  act: 'prelu' | 'leakyrelu' | 'relu'
  scale: number
}

export type UpscalerArch = RrdbArch | SrvggArch

export class UpscalerFormatError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
    this.name = 'UpscalerFormatError'
  }
}

export interface ShapeOnly {
  shape: readonly number[]
}

/** One line describing the architecture ("RRDBNet x4 (64 features, 23 blocks, growth 32)"). */
export function describeArch(a: UpscalerArch): string {
  if (a.kind === 'rrdbnet')
    return `RRDBNet x${a.scale} (${a.numFeat} features, ${a.numBlock} blocks, growth ${a.numGrow}${a.unshuffle > 1 ? `, pixel-unshuffle ${a.unshuffle}` : ''}; ${a.naming} names)`
  return `SRVGGNetCompact x${a.scale} (${a.numFeat} features, ${a.numConv} convs, ${a.act})`
}

function maxIndex(keys: Iterable<string>, re: RegExp): number {
  let m = -1
  for (const k of keys) {
    const hit = re.exec(k)
    if (hit) m = Math.max(m, Number(hit[1]))
  }
  return m
}

/** Strips wrappers: DataParallel `module.` and similar whole-dict prefixes. */
export function stripPrefix<T>(tensors: Map<string, T>): Map<string, T> {
  for (const prefix of ['module.', 'model.module.', 'net_g.', 'generator.']) {
    const keys = [...tensors.keys()]
    if (keys.length && keys.every((k) => k.startsWith(prefix)))
      return new Map([...tensors].map(([k, v]) => [k.slice(prefix.length), v]))
  }
  return tensors
}

/** Whether a state dict looks like an upscaler (cheap key test, before detectArch). */
export function looksLikeUpscaler(keys: Iterable<string>): boolean {
  const set = new Set(keys)
  return (
    (set.has('conv_first.weight') &&
      (set.has('body.0.rdb1.conv1.weight') || set.has('RRDB_trunk.0.RDB1.conv1.weight'))) ||
    (set.has('model.0.weight') && set.has('model.1.sub.0.RDB1.conv1.0.weight')) ||
    (set.has('body.0.weight') && set.has('body.2.weight') && !set.has('conv_first.weight'))
  )
}

/**
 * Architecture and canonical-name mapping from a state dict's keys and shapes. `file` names errors and
 * supplies the one hint weights cannot give: an ESRGAN-2018 model with one nearest stage is x2, or x3
 * when the file name says so.
 */
export function detectArch(
  tensors: Map<string, ShapeOnly>,
  file = 'model',
): { arch: UpscalerArch; canonical: Map<string, string> } {
  const name = path.basename(file)
  const fail = (problem: string): never => {
    throw new UpscalerFormatError(`${name}: ${problem} (${file})`, 'unknown-upscaler')
  }
  const shape = (k: string): readonly number[] => tensors.get(k)?.shape ?? fail(`missing tensor "${k}"`)
  const keys = [...tensors.keys()]
  const has = (k: string): boolean => tensors.has(k)

  if (has('conv_first.weight') && has('body.0.rdb1.conv1.weight')) return basicsr()
  if (has('conv_first.weight') && has('RRDB_trunk.0.RDB1.conv1.weight')) return esrgan2019()
  if (has('model.0.weight') && has('model.1.sub.0.RDB1.conv1.0.weight')) return esrgan2018()
  if (has('body.0.weight') && has('body.2.weight')) return srvgg()
  return fail(
    'not a supported upscaler: expected RRDBNet (ESRGAN / Real-ESRGAN) or SRVGGNetCompact weights ' +
      `(found ${keys.slice(0, 4).join(', ')}${keys.length > 4 ? ', …' : ''})`,
  )

  function conv(k: string): readonly number[] {
    const s = shape(`${k}.weight`)
    if (s.length !== 4) fail(`"${k}.weight" has shape [${s}], not a 2-D convolution`)
    return s
  }

  function rrdbCommon(
    naming: RrdbArch['naming'],
    blockKey: (n: number, m: number, k: number) => string,
    numBlock: number,
    canonical: Map<string, string>,
    ends: { first: string; body: string; hr: string; last: string; ups: string[] },
    hint: { singleNearestFactor: number },
  ): { arch: UpscalerArch; canonical: Map<string, string> } {
    const first = conv(ends.first)
    const numFeat = first[0] as number
    const inChannels = first[1] as number
    const numGrow = conv(blockKey(0, 1, 1))[0] as number
    const outChannels = conv(ends.last)[0] as number
    const link = (from: string, to: string): void => {
      for (const s of ['weight', 'bias']) if (has(`${from}.${s}`)) canonical.set(`${from}.${s}`, `${to}.${s}`)
    }
    link(ends.first, 'conv_first')
    for (let n = 0; n < numBlock; n++)
      for (let m = 1; m <= 3; m++)
        for (let k = 1; k <= 5; k++) {
          const from = blockKey(n, m, k)
          const want = k < 5 ? numGrow : numFeat
          const s = conv(from)
          if (s[0] !== want || s[1] !== numFeat + (k - 1) * numGrow)
            fail(
              `"${from}.weight" has shape [${s}]; an RDB conv${k} of this model needs [${want}, ${numFeat + (k - 1) * numGrow}, 3, 3]`,
            )
          link(from, `body.${n}.rdb${m}.conv${k}`)
        }
    link(ends.body, 'conv_body')
    const ups: UpStage[] = ends.ups.map((u, i) => {
      const s = conv(u)
      link(u, `up.${i}`)
      if (s[1] !== numFeat) fail(`upsampling conv "${u}" takes ${s[1]} channels, not ${numFeat}`)
      if (s[0] === numFeat)
        return { factor: ends.ups.length === 1 ? hint.singleNearestFactor : 2, mode: 'nearest' as const }
      if (s[0] === numFeat * 4) return { factor: 2, mode: 'pixelshuffle' as const }
      if (s[0] === numFeat * 9) return { factor: 3, mode: 'pixelshuffle' as const }
      return fail(
        `upsampling conv "${u}" has ${s[0]} outputs; expected ${numFeat}, ${4 * numFeat} or ${9 * numFeat}`,
      )
    })
    link(ends.hr, 'conv_hr')
    link(ends.last, 'conv_last')
    const ratio = inChannels / outChannels
    const unshuffle = ratio === 1 ? 1 : ratio === 4 ? 2 : ratio === 16 ? 4 : 0
    if (!unshuffle)
      fail(
        `conv_first takes ${inChannels} channels for ${outChannels} output channels (expected x1, x4 or x16)`,
      )
    if (unshuffle > 1 && naming !== 'basicsr') fail('pixel-unshuffle input only exists in BasicSR naming')
    const total = ups.reduce((a, u) => a * u.factor, 1)
    const scale = total / unshuffle
    const arch: RrdbArch = {
      kind: 'rrdbnet',
      naming,
      inChannels: inChannels / (unshuffle * unshuffle),
      outChannels,
      numFeat,
      numBlock,
      numGrow,
      unshuffle,
      ups,
      scale,
    }
    return { arch, canonical }
  }

  function basicsr(): { arch: UpscalerArch; canonical: Map<string, string> } {
    const numBlock = maxIndex(keys, /^body\.(\d+)\.rdb1\.conv1\.weight$/) + 1
    const nUp = maxIndex(keys, /^conv_up(\d+)\.weight$/)
    if (nUp < 1) fail('an RRDBNet without conv_up1')
    const ups = Array.from({ length: nUp }, (_, i) => `conv_up${i + 1}`)
    return rrdbCommon(
      'basicsr',
      (n, m, k) => `body.${n}.rdb${m}.conv${k}`,
      numBlock,
      new Map(),
      { first: 'conv_first', body: 'conv_body', hr: 'conv_hr', last: 'conv_last', ups },
      { singleNearestFactor: 2 },
    )
  }

  function esrgan2019(): { arch: UpscalerArch; canonical: Map<string, string> } {
    const numBlock = maxIndex(keys, /^RRDB_trunk\.(\d+)\.RDB1\.conv1\.weight$/) + 1
    const nUp = maxIndex(keys, /^upconv(\d+)\.weight$/)
    if (nUp < 1) fail('an ESRGAN model without upconv1')
    const ups = Array.from({ length: nUp }, (_, i) => `upconv${i + 1}`)
    return rrdbCommon(
      'esrgan-2019',
      (n, m, k) => `RRDB_trunk.${n}.RDB${m}.conv${k}`,
      numBlock,
      new Map(),
      { first: 'conv_first', body: 'trunk_conv', hr: 'HRconv', last: 'conv_last', ups },
      { singleNearestFactor: 2 },
    )
  }

  function esrgan2018(): { arch: UpscalerArch; canonical: Map<string, string> } {
    const numBlock = maxIndex(keys, /^model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight$/) + 1
    if (!has(`model.1.sub.${numBlock}.weight`))
      fail(`no trunk conv model.1.sub.${numBlock} after ${numBlock} RRDB blocks`)
    const tail = [
      ...new Set(keys.map((k) => /^model\.(\d+)\.weight$/.exec(k)?.[1]).filter((x): x is string => !!x)),
    ]
      .map(Number)
      .filter((i) => i >= 2)
      .sort((a, b) => a - b)
    if (tail.length < 2) fail('the 2018 layout needs an HR conv and a last conv after the trunk')
    const names = tail.map((i) => `model.${i}`)
    const x3 = /(^|[^0-9])3x|x3([^0-9]|$)/i.test(name)
    return rrdbCommon(
      'esrgan-2018',
      (n, m, k) => `model.1.sub.${n}.RDB${m}.conv${k}.0`,
      numBlock,
      new Map(),
      {
        first: 'model.0',
        body: `model.1.sub.${numBlock}`,
        hr: names[names.length - 2] as string,
        last: names[names.length - 1] as string,
        ups: names.slice(0, -2),
      },
      { singleNearestFactor: x3 ? 3 : 2 },
    )
  }

  function srvgg(): { arch: UpscalerArch; canonical: Map<string, string> } {
    const last = maxIndex(keys, /^body\.(\d+)\.weight$/)
    const convIdx: number[] = []
    for (let i = 0; i <= last; i += 2) {
      if (!has(`body.${i}.weight`)) fail(`SRVGGNetCompact conv body.${i} is missing`)
      conv(`body.${i}`)
      convIdx.push(i)
    }
    const first = conv('body.0')
    const numFeat = first[0] as number
    const inChannels = first[1] as number
    const lastOut = conv(`body.${last}`)[0] as number
    const r = Math.round(Math.sqrt(lastOut / inChannels))
    if (r < 1 || r * r * inChannels !== lastOut)
      fail(`the last conv has ${lastOut} outputs, not ${inChannels} x scale² for ${inChannels} channels`)
    const prelu = has('body.1.weight')
    const canonical = new Map<string, string>()
    for (const k of keys) if (/^body\.\d+\.(weight|bias)$/.test(k)) canonical.set(k, k)
    if (prelu)
      for (let i = 1; i < last; i += 2) {
        const s = shape(`body.${i}.weight`)
        if (s.length !== 1 || s[0] !== numFeat)
          fail(`PReLU body.${i}.weight has shape [${s}], not [${numFeat}]`)
      }
    const arch: SrvggArch = {
      kind: 'srvgg',
      inChannels,
      outChannels: inChannels,
      numFeat,
      numConv: convIdx.length - 2,
      act: prelu ? 'prelu' : 'leakyrelu',
      scale: r,
    }
    return { arch, canonical }
  }
}

/** The architecture of an upscaler file from its header / pickle alone (no tensor data read); null if not one. */
export async function probeUpscaler(file: string): Promise<UpscalerArch | null> {
  const shapes = new Map<string, ShapeOnly>()
  if (await detectPickle(file)) {
    const t = await TorchFile.open(file)
    try {
      for (const [k, x] of t.stateDict()) shapes.set(k, { shape: [...x.shape] })
    } finally {
      await t.close()
    }
  } else {
    for (const [k, x] of (await readHeader(file)).tensors) shapes.set(k, { shape: x.shape })
  }
  const s = stripPrefix(shapes)
  if (!looksLikeUpscaler(s.keys())) return null
  return detectArch(s, file).arch
}
