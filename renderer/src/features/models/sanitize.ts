import createDOMPurify from 'dompurify'
import type { Config, DOMPurify } from 'dompurify'

/**
 * Model descriptions (Civitai sends HTML written by uploaders) through DOMPurify with an allow-list: text
 * formatting, lists, tables and links only. No scripts, styles, iframes, event handlers, forms, SVG/MathML,
 * or images (remote images would bypass the proxy); unknown wrappers (font, center, img...) keep their text.
 * Links keep http(s) targets and open outside the app; h1-h3 are demoted to fit the page.
 */

const ALLOWED_TAGS = [
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
]

const CONFIG: Config = {
  ALLOWED_TAGS,
  ALLOWED_ATTR: ['href', 'colspan'],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  KEEP_CONTENT: true,
  // Dropped with everything inside them (DOMPurify's defaults already drop script, style, svg, math...).
  ADD_FORBID_CONTENTS: ['form', 'object', 'embed', 'iframe', 'select', 'textarea', 'button'],
}

const HEADING_DEMOTE: Record<string, string> = { H1: 'h3', H2: 'h4', H3: 'h5' }

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

export interface Sanitizer {
  /** Sanitised HTML string, safe for `dangerouslySetInnerHTML`. */
  sanitizeHtml(html: string): string
  /** Plain text of an HTML fragment (for short summaries). */
  htmlToText(html: string): string
}

/** A sanitiser over a window (the renderer's, or a jsdom window in tests). */
export function createSanitizer(win: Window & typeof globalThis): Sanitizer {
  const purify: DOMPurify = createDOMPurify(win)
  purify.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName === 'A') {
      const href = safeHref(node.getAttribute('href'))
      if (href) {
        node.setAttribute('href', href)
        node.setAttribute('target', '_blank')
        node.setAttribute('rel', 'noopener noreferrer nofollow')
      } else node.removeAttribute('href')
    }
    if (node.hasAttribute('colspan')) {
      const n = Number(node.getAttribute('colspan'))
      if (!(Number.isInteger(n) && n > 0 && n < 50)) node.removeAttribute('colspan')
    }
  })
  return {
    sanitizeHtml(html) {
      const body = purify.sanitize(html, { ...CONFIG, RETURN_DOM: true })
      for (const h of Array.from(body.querySelectorAll('h1, h2, h3'))) {
        const out = win.document.createElement(HEADING_DEMOTE[h.nodeName] ?? 'h5')
        while (h.firstChild) out.appendChild(h.firstChild)
        h.replaceWith(out)
      }
      return body.innerHTML
    },
    htmlToText(html) {
      const body = purify.sanitize(html, { ...CONFIG, RETURN_DOM: true })
      return (body.textContent ?? '').replace(/\s+/g, ' ').trim()
    },
  }
}

let shared: Sanitizer | undefined
const sanitizer = (): Sanitizer => (shared ??= createSanitizer(window))

export function sanitizeHtml(html: string): string {
  return sanitizer().sanitizeHtml(html)
}

export function htmlToText(html: string): string {
  return sanitizer().htmlToText(html)
}
