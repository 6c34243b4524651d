import os from 'node:os'
import type { GenerateRequest } from '../../../preload/contract-types'
import { calibrate, CalibrationStore } from '../../engine/estimate/calibrate'
import type { Calibration, Estimate, Family } from '../../engine/estimate/estimate'
import { defaultCalibration, estimateRequest } from '../../engine/estimate/estimate'
import { ModelSet } from '../../engine/runtime/model-set'
import { defaultLowMemory, firstUsableProvider, weightPrecisionFor } from '../../engine/runtime/session'
import { convertCheckpoint } from '../../engine/convert/convert'
import { probeModel } from '../../model-formats/probe'

/**
 * Pre-flight estimate of a generation request (time and peak memory) for the doors: the CLI's
 * `--estimate` and the generation panel. The model is probed (family), never loaded, unless no calibration
 * exists for this machine, provider and family and `calibrateIfMissing` asks for one (a short run of the
 * model's own graphs, then cached).
 */
export interface EstimateOptions {
  /** The model file (resolved by the caller). */
  modelPath: string
  calibrationFile: string
  cacheRoot: string
  calibrateIfMissing?: boolean
  /** Sessions already loaded (no load time counted). */
  loaded?: boolean
  onStatus?: (message: string) => void
}

export interface GenerationEstimate extends Estimate {
  family: Family
  provider: string
  lowMemory: boolean
  width: number
  height: number
}

export async function estimateGeneration(
  req: GenerateRequest,
  o: EstimateOptions,
): Promise<GenerationEstimate> {
  const probe = await probeModel(o.modelPath)
  const family: Family = probe.base === 'sdxl' ? 'sdxl' : 'sd-1'
  const lowMemory = req.lowMemory ?? defaultLowMemory(probe.base)
  let provider: string = await firstUsableProvider()
  const store = new CalibrationStore(o.calibrationFile)
  let cal: Calibration | undefined = store.get(provider, family)
  if (!cal && o.calibrateIfMissing) {
    o.onStatus?.(`calibrating ${family} on ${provider} (a short run of the model's graphs, once per machine)`)
    const converted = await convertCheckpoint(o.modelPath, {
      cacheRoot: o.cacheRoot,
      precision: await weightPrecisionFor({ lowMemory, optimizedCache: true }),
    })
    const set = new ModelSet('calibration', converted.paths, {
      lowMemory,
      optimizedCache: converted.manifest.source.kind !== 'onnx',
    })
    try {
      cal = await calibrate(set, family)
      provider = set.graph('unet').provider ?? provider
    } finally {
      await set.release()
    }
    store.put(provider, family, cal)
  }
  const size = family === 'sdxl' ? 1024 : 512
  const width = req.width ?? size
  const height = req.height ?? size
  const e = estimateRequest(
    {
      family,
      mode: req.mode,
      width,
      height,
      steps: req.steps ?? 20,
      ...(req.strength !== undefined ? { strength: req.strength } : {}),
      ...(req.exactSteps ? { exactSteps: true } : {}),
      cfgScale: req.cfgScale ?? 7,
      sampler: req.sampler ?? 'Euler a',
      batchSize: req.batchSize ?? 1,
      batchCount: req.batchCount ?? 1,
      ...(req.mode === 'txt2img' && req.hires
        ? {
            hires: {
              scale: req.hires.width ? req.hires.width / width : (req.hires.scale ?? 2),
              ...(req.hires.steps ? { steps: req.hires.steps } : {}),
              ...(req.hires.strength !== undefined ? { strength: req.hires.strength } : {}),
            },
          }
        : {}),
      lowMemory,
      ...(req.draftDecode ? { draftDecode: true } : {}),
      loaded: o.loaded ?? false,
    },
    cal ?? defaultCalibration(family),
    { totalBytes: os.totalmem() },
  )
  return { ...e, family, provider, lowMemory, width, height }
}

function duration(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`
  const m = Math.floor(s / 60)
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`
}

const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GiB`

/** One readable paragraph (CLI; the panel shows the same facts). */
export function describeEstimate(e: GenerationEstimate): string {
  const b = e.breakdown
  const lines = [
    `Estimate: ${duration(e.seconds)} for ${e.width}x${e.height} ${e.family} on ${e.provider}` +
      `${e.calibrated ? '' : ' (uncalibrated: a rough default; run once with --calibrate)'}`,
    `  load ${duration(b.load)}, text ${duration(b.text)}, ${e.stepsRun} steps x ${duration(e.stepSeconds)}` +
      `, decode ${duration(b.decode)}${b.encode ? `, encode ${duration(b.encode)}` : ''}`,
    `  peak memory ${gib(e.peakBytes)} of ${gib(e.availableBytes)} available${e.lowMemory ? ' (low-memory mode)' : ''}`,
  ]
  if (!e.fits) {
    const s = e.suggestion
    lines.push(
      `  Warning: this will not fit in memory.${
        s?.width
          ? ` Try ${s.width}x${s.height}${s.lowMemory ? ' in low-memory mode' : ''}.`
          : s?.lowMemory && s.draftDecode
            ? ' Low-memory mode with draft decode (--low-memory --draft-decode) would fit.'
            : s?.lowMemory
              ? ' Low-memory mode would fit.'
              : s?.draftDecode
                ? ' Draft decode (TAESD, --draft-decode) would fit.'
                : ''
      }`,
    )
  }
  return lines.join('\n')
}
