import { useEffect, useRef, useState } from 'react'
import { useImage, type ImageSource } from './data'
import { scrollParent } from './dom'

/**
 * A fixed-size image frame: the box has its size before the bytes arrive (no layout jumps); the image loads
 * when the box comes near the viewport. Mature images are blurred when asked (hover or focus reveals them).
 */
export function ImageBox({
  src,
  alt,
  ratio = '2 / 3',
  blur = false,
  empty = 'No preview',
}: {
  src: ImageSource | null
  alt: string
  ratio?: string
  blur?: boolean
  empty?: string
}): React.JSX.Element {
  const ref = useRef<HTMLDivElement>(null)
  const [near, setNear] = useState(false)
  useEffect(() => {
    const el = ref.current
    if (!el || near) return
    const io = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) setNear(true)
      },
      { root: scrollParent(el), rootMargin: '400px' },
    )
    io.observe(el)
    return () => io.disconnect()
  }, [near])
  const { url, failed } = useImage(near ? src : null)
  return (
    <div ref={ref} className="imgbox" style={{ aspectRatio: ratio }}>
      {url ? (
        <img src={url} alt={alt} className={blur ? 'blurred' : undefined} draggable={false} />
      ) : (
        <span className={failed || !src ? 'imgbox-empty' : 'imgbox-loading'} aria-hidden={!failed && !!src}>
          {failed || !src ? empty : ''}
        </span>
      )}
    </div>
  )
}
