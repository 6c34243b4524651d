import type { Viewport } from './use-viewport'

/** Zoom readout and buttons over a canvas (pointer events stop here, so they never paint). */
export function ViewControls({ vp }: { vp: Viewport }): React.JSX.Element {
  return (
    <div
      className="view-controls"
      onPointerDown={(e) => e.stopPropagation()}
      onPointerUp={(e) => e.stopPropagation()}
    >
      <button type="button" title="Zoom out" onClick={() => vp.zoomBy(1 / 1.25)}>
        −
      </button>
      <span className="num" data-testid="zoom-level">
        {Math.round(vp.view.scale * 100)}%
      </span>
      <button type="button" title="Zoom in" onClick={() => vp.zoomBy(1.25)}>
        +
      </button>
      <button type="button" title="Fit the image in view" data-testid="zoom-fit" onClick={vp.fit}>
        Fit
      </button>
    </div>
  )
}
