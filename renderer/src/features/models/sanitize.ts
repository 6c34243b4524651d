/**
 * An allow-list HTML sanitiser for model descriptions (Civitai sends HTML written by uploaders). Parsed with
 * DOMParser into an inert document (no scripts run, nothing loads), then rebuilt from allowed elements and
 * attributes only: no scripts, styles, iframes, event handlers, forms, or images (remote images would bypass
 * the proxy). Links keep http(s) targets and open outside the app.
 */

const ALLOWED = new Set([
  'p',
  'br',
  'hr',
  'b',
  'strong',
  'i',
  'em',
  'u',
  's',
  'del',
  'mark',
  'small',
  'sub',
  'sup',
  'code',
  'pre',
  'blockquote',
  'ul',
  'ol',
  'li',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'a',
  'span',
  'div',
  'table',
  'thead',
  'tbody',
  'tr',
  'th',
  'td',
])
/** Dropped with everything inside them. */
const DROP = new Set([
  'script',
  'style',
  'iframe',
  'object',
  'embed',
  'noscript',
  'template',
  'form',
  'svg',
  'math',
  'head',
  'title',
  'link',
  'meta',
])
const HEADING_DEMOTE: Record<string, string> = { h1: 'h3', h2: 'h4', h3: 'h5' }

function safeHref(href: string | null): string | null {
  if (!href) return null
  try {
    const u = new URL(href, 'https://invalid.example/')
    if (u.origin === 'https://invalid.example') return null
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null
  } catch {
    return null
  }
}

function copy(src: Node, into: Node, doc: Document, depth: number): void {
  if (depth > 40) return
  for (const child of Array.from(src.childNodes)) {
    if (child.nodeType === Node.TEXT_NODE) {
      into.appendChild(doc.createTextNode(child.textContent ?? ''))
      continue
    }
    if (child.nodeType !== Node.ELEMENT_NODE) continue
    const el = child as Element
    const tag = el.tagName.toLowerCase()
    if (DROP.has(tag)) continue
    if (!ALLOWED.has(tag)) {
      // Unknown wrapper (font, center, img, video...): keep its text, lose the element.
      copy(el, into, doc, depth + 1)
      continue
    }
    const out = doc.createElement(HEADING_DEMOTE[tag] ?? tag)
    if (tag === 'a') {
      const href = safeHref(el.getAttribute('href'))
      if (href) {
        out.setAttribute('href', href)
        out.setAttribute('target', '_blank')
        out.setAttribute('rel', 'noopener noreferrer nofollow')
      }
    }
    if ((tag === 'td' || tag === 'th') && el.getAttribute('colspan')) {
      const n = Number(el.getAttribute('colspan'))
      if (Number.isInteger(n) && n > 0 && n < 50) out.setAttribute('colspan', String(n))
    }
    copy(el, out, doc, depth + 1)
    into.appendChild(out)
  }
}

/** Sanitised HTML string, safe for `dangerouslySetInnerHTML`. */
export function sanitizeHtml(html: string): string {
  const parsed = new DOMParser().parseFromString(html, 'text/html')
  const clean = document.implementation.createHTMLDocument('')
  const root = clean.createElement('div')
  copy(parsed.body, root, clean, 0)
  return root.innerHTML
}

/** Plain text of an HTML fragment (for short summaries). */
export function htmlToText(html: string): string {
  const parsed = new DOMParser().parseFromString(html, 'text/html')
  return (parsed.body.textContent ?? '').replace(/\s+/g, ' ').trim()
}
