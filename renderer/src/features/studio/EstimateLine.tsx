import { useEffect, useState } from 'react'
import type {
  GenerateMode,
  GenerateRequest,
  GenerationEstimateInfo,
} from '../../../../preload/contract-types'
import { api } from '../../api/client'
import { buildRequest } from './params'
import { useStore } from './store'
import { setParams, studio } from './studio-state'

function duration(s: number): string {
  if (s < 60) return `${Math.max(1, Math.round(s))} s`
  const m = Math.floor(s / 60)
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`
}

const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GiB`

/**
 * Pre-flight estimate beside Generate: "≈ 1 min 20 s · 5.1 GiB", from this machine's calibration (the
 * first generation of a model family calibrates; until then the figure is marked rough). When the request
 * will not fit in memory it says so and offers what would: draft decode, low-memory mode, or a smaller size.
 */
export function EstimateLine({ mode }: { mode: GenerateMode }): React.JSX.Element | null {
  const params = useStore(studio, (s) => s.params)
  const [e, setE] = useState<GenerationEstimateInfo | undefined>()
  useEffect(() => {
    let req: Omit<GenerateRequest, 'image' | 'mask' | 'imagePrompts'> | undefined
    try {
      // The estimate needs sizes and steps, not pixels: a placeholder stands in for the input image.
      const {
        image: _i,
        mask: _m,
        imagePrompts: _p,
        ...rest
      } = buildRequest(mode, params, {
        image: new Uint8Array(1),
      })
      req = rest
    } catch {
      req = undefined
    }
    let live = true
    const t = setTimeout(() => {
      if (!req) return setE(undefined)
      void api.invoke('generate:estimate', req).then((r) => {
        if (live) setE(r.ok ? r.value : undefined)
      })
    }, 400)
    return () => {
      live = false
      clearTimeout(t)
    }
  }, [mode, params])
  if (!e) return null
  const b = e.breakdown
  const title =
    `${e.width}x${e.height} ${e.family} on ${e.provider}: load ${duration(b.load)}, ` +
    `${e.stepsRun} steps x ${e.stepSeconds.toFixed(1)} s, decode ${duration(b.decode)}; ` +
    `peak ${gib(e.peakBytes)} of ${gib(e.availableBytes)}` +
    (e.calibrated ? '' : ' (rough: calibrated by the first generation on this machine)')
  const s = e.suggestion
  return (
    <span className={`estimate${e.fits ? '' : ' error'}`} data-testid="estimate" title={title}>
      ≈ {duration(e.seconds)}
      {e.calibrated ? '' : ' (rough)'} · {gib(e.peakBytes)}
      {!e.fits && (
        <>
          {' '}
          — will not fit in memory
          {s?.width && s.height ? (
            <button
              type="button"
              data-testid="estimate-fit"
              onClick={() =>
                setParams({
                  width: s.width,
                  height: s.height,
                  sizeFromImage: false,
                  ...(s.lowMemory ? { memoryMode: 'low' as const } : {}),
                })
              }
            >
              Use {s.width}x{s.height}
              {s.lowMemory ? ' in low-memory mode' : ''}
            </button>
          ) : null}
          {!s?.width && s?.draftDecode ? (
            <button
              type="button"
              data-testid="estimate-draft-decode"
              onClick={() =>
                setParams({ draftDecode: true, ...(s.lowMemory ? { memoryMode: 'low' as const } : {}) })
              }
            >
              {s.lowMemory ? 'Use low-memory mode and draft decode' : 'Use draft decode (TAESD)'}
            </button>
          ) : !s?.width && s?.lowMemory ? (
            <button
              type="button"
              data-testid="estimate-low-memory"
              onClick={() => setParams({ memoryMode: 'low' })}
            >
              Use low-memory mode
            </button>
          ) : null}
        </>
      )}
    </span>
  )
}
