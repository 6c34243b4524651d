/**
 * Zoom (wheel, around the pointer) and pan (space + drag, or the middle mouse button) for a Konva stage
 * that shows content of a given size. The view is React state: it changes per wheel tick or pan move,
 * which re-renders a handful of Konva nodes, never the mask pixels.
 */
import { useCallback, useEffect, useRef, useState } from 'react'
import { fitView, zoomAt, type View } from './geometry'

export interface Viewport {
  size: { width: number; height: number }
  view: View
  fit(): void
  zoomBy(factor: number): void
  /** True while space is held or a pan drag runs (painting tools stand down). */
  isPanning(): boolean
  /** Pointer handlers to spread on the stage container. Return true when the event was a pan. */
  panPointerDown(e: PointerEvent): boolean
  panPointerMove(e: PointerEvent): boolean
  panPointerUp(e: PointerEvent): boolean
  spaceHeld: boolean
}

/** `containerRef`: the element holding the stage (sized by CSS). `fitKey`: the view refits when it changes (default: the content size); hold it steady to keep the view. */
export function useViewport(
  containerRef: React.RefObject<HTMLDivElement | null>,
  contentW: number,
  contentH: number,
  fitKey = `${contentW}x${contentH}`,
): Viewport {
  const [size, setSize] = useState({ width: 640, height: 480 })
  const [view, setView] = useState<View>({ scale: 1, x: 0, y: 0 })
  const [spaceHeld, setSpaceHeld] = useState(false)
  const pan = useRef<{ x: number; y: number; id: number } | null>(null)
  const space = useRef(false)
  const fitted = useRef('')

  useEffect(() => {
    const el = containerRef.current
    if (!el) return
    const ro = new ResizeObserver(() => {
      const r = el.getBoundingClientRect()
      setSize({ width: Math.max(64, Math.floor(r.width)), height: Math.max(64, Math.floor(r.height)) })
    })
    ro.observe(el)
    return () => ro.disconnect()
  }, [containerRef])

  // Fit when the content or the box changes size (a new image, a resized window).
  useEffect(() => {
    const key = `${fitKey}@${size.width}x${size.height}`
    if (fitted.current === key) return
    fitted.current = key
    const v = fitView(contentW, contentH, size.width, size.height)
    const id = requestAnimationFrame(() => setView(v))
    return () => cancelAnimationFrame(id)
  }, [fitKey, contentW, contentH, size.width, size.height])

  useEffect(() => {
    const el = containerRef.current
    if (!el) return
    const onWheel = (e: WheelEvent): void => {
      e.preventDefault()
      const r = el.getBoundingClientRect()
      const factor = Math.pow(1.0015, -e.deltaY)
      setView((v) => zoomAt(v, e.clientX - r.left, e.clientY - r.top, factor))
    }
    el.addEventListener('wheel', onWheel, { passive: false })
    return () => el.removeEventListener('wheel', onWheel)
  }, [containerRef])

  useEffect(() => {
    const down = (e: KeyboardEvent): void => {
      if (e.code !== 'Space' || isTypingTarget(e.target)) return
      e.preventDefault()
      if (!space.current) {
        space.current = true
        setSpaceHeld(true)
      }
    }
    const up = (e: KeyboardEvent): void => {
      if (e.code !== 'Space') return
      space.current = false
      setSpaceHeld(false)
    }
    window.addEventListener('keydown', down)
    window.addEventListener('keyup', up)
    return () => {
      window.removeEventListener('keydown', down)
      window.removeEventListener('keyup', up)
    }
  }, [])

  const fit = useCallback(() => {
    setView(fitView(contentW, contentH, size.width, size.height))
  }, [contentW, contentH, size.width, size.height])

  const zoomBy = useCallback(
    (factor: number) => setView((v) => zoomAt(v, size.width / 2, size.height / 2, factor)),
    [size.width, size.height],
  )

  const panPointerDown = useCallback(
    (e: PointerEvent): boolean => {
      if (e.button === 1 || (e.button === 0 && space.current)) {
        e.preventDefault()
        pan.current = { x: e.clientX, y: e.clientY, id: e.pointerId }
        // Capture on the stage's box (the native event's currentTarget is React's root by now).
        containerRef.current?.setPointerCapture?.(e.pointerId)
        return true
      }
      return false
    },
    [containerRef],
  )

  const panPointerMove = useCallback((e: PointerEvent): boolean => {
    const p = pan.current
    if (!p || p.id !== e.pointerId) return false
    const dx = e.clientX - p.x
    const dy = e.clientY - p.y
    pan.current = { x: e.clientX, y: e.clientY, id: p.id }
    setView((v) => ({ ...v, x: v.x + dx, y: v.y + dy }))
    return true
  }, [])

  const panPointerUp = useCallback((e: PointerEvent): boolean => {
    if (!pan.current || pan.current.id !== e.pointerId) return false
    pan.current = null
    return true
  }, [])

  const isPanning = useCallback(() => space.current || pan.current !== null, [])

  return {
    size,
    view,
    fit,
    zoomBy,
    isPanning,
    panPointerDown,
    panPointerMove,
    panPointerUp,
    spaceHeld,
  }
}

const NON_TEXT_INPUTS = new Set(['range', 'checkbox', 'radio', 'button', 'submit', 'reset', 'file', 'color'])

/** True when keys typed now go into a text field (shortcuts stand down); sliders and buttons do not count. */
export function isTypingTarget(t: EventTarget | null): boolean {
  if (!(t instanceof HTMLElement)) return false
  if (t.isContentEditable || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT') return true
  return t instanceof HTMLInputElement && !NON_TEXT_INPUTS.has(t.type)
}
