/**
 * Studio e2e: Img2img, Inpaint, Outpaint and the Gallery against `atelier serve` with the seeded tiny
 * checkpoint. Pixel checks decode the result the browser shows and compare it with the input decoded
 * here. Also prints frame times of a scripted brush drag on a 2048² image.
 */
import fs from 'node:fs'
import path from 'node:path'
import { expect, test, type Locator, type Page } from '@playwright/test'
import sharp from 'sharp'
import { SCREENSHOTS, serveApp, type ServedApp } from '../../fixtures/server'
import { appMissing, decodeRgb, studioHome, testPng, type RawRgb } from '../../fixtures/studio-home'

const skipReason = appMissing()
if (skipReason) console.warn(`studio.spec.ts skipped: ${skipReason}`)

test.describe.configure({ mode: 'serial' })

let app: ServedApp

async function open(page: Page, section: string): Promise<void> {
  await page.goto(`${app.url}#/${section}`)
  await expect(page.getByTestId(`section-${section}`)).toBeVisible()
  if (section !== 'gallery') await expect(page.getByTestId('model-family')).toHaveText('SD 1.x')
}

async function upload(page: Page, png: Buffer, name = 'input.png'): Promise<void> {
  await page.getByTestId('image-file').setInputFiles({ name, mimeType: 'image/png', buffer: png })
}

async function basics(page: Page, prompt: string, steps: number, seed: number): Promise<void> {
  await page.getByTestId('prompt').fill(prompt)
  await page.getByTestId('steps').fill(String(steps))
  await page.getByTestId('seed').fill(String(seed))
}

async function generateAndWait(page: Page): Promise<void> {
  await page.getByTestId('generate').click()
  // Fail fast on an error message instead of waiting out the timeout.
  await expect(page.getByTestId('message')).toBeVisible({ timeout: 90_000 })
  await expect(page.getByTestId('message')).toContainText('Done', { timeout: 1000 })
  await expect(page.getByTestId('result-image')).toBeVisible()
}

/** RGB pixels of an <img> as the browser decoded it. */
async function imagePixels(img: Locator): Promise<RawRgb> {
  const r = await img.evaluate(async (el: HTMLImageElement) => {
    await el.decode()
    const c = document.createElement('canvas')
    c.width = el.naturalWidth
    c.height = el.naturalHeight
    const ctx = c.getContext('2d') as CanvasRenderingContext2D
    ctx.drawImage(el, 0, 0)
    const d = ctx.getImageData(0, 0, c.width, c.height).data
    const rgb: number[] = []
    for (let i = 0; i < d.length; i += 4) rgb.push(d[i] as number, d[i + 1] as number, d[i + 2] as number)
    return { rgb, width: c.width, height: c.height }
  })
  return { data: Buffer.from(r.rgb), width: r.width, height: r.height }
}

function pixelDiff(a: RawRgb, b: RawRgb, x: number, y: number): number {
  const ia = (y * a.width + x) * 3
  const ib = (y * b.width + x) * 3
  let m = 0
  for (let c = 0; c < 3; c++) m = Math.max(m, Math.abs((a.data[ia + c] ?? 0) - (b.data[ib + c] ?? 0)))
  return m
}

/** Screen position of an image point on the inpaint canvas (reads the view the canvas publishes). */
async function toScreen(page: Page, ix: number, iy: number): Promise<{ x: number; y: number }> {
  const canvas = page.getByTestId('inpaint-canvas')
  const box = await canvas.boundingBox()
  const view = (await canvas.getAttribute('data-view'))?.split(',').map(Number) ?? [1, 0, 0]
  const [scale = 1, vx = 0, vy = 0] = view
  return { x: (box?.x ?? 0) + vx + ix * scale, y: (box?.y ?? 0) + vy + iy * scale }
}

async function stroke(page: Page, from: [number, number], to: [number, number], steps = 12): Promise<void> {
  const a = await toScreen(page, from[0], from[1])
  const b = await toScreen(page, to[0], to[1])
  await page.mouse.move(a.x, a.y)
  await page.mouse.down()
  await page.mouse.move(b.x, b.y, { steps })
  await page.mouse.up()
}

function distToSegment(px: number, py: number, a: [number, number], b: [number, number]): number {
  const [ax, ay] = a
  const [bx, by] = b
  const dx = bx - ax
  const dy = by - ay
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy || 1)))
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy))
}

async function waitCanvasFitted(page: Page): Promise<void> {
  // The canvas fits the image a frame after it mounts.
  await expect(page.getByTestId('inpaint-canvas')).not.toHaveAttribute('data-view', '1,0,0')
}

test.describe('studio', () => {
  test.skip(skipReason !== undefined, skipReason)

  test.beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true })
    const home = await studioHome()
    // ATELIER_HOME too: the generation worker looks up the tokenizer cache through it.
    app = await serveApp(home, { ATELIER_HOME: home })
  })

  test.afterAll(async () => {
    await app?.stop()
  })

  test('img2img: upload, strength 0.6, generate; the PNG carries the parameters', async ({ page }) => {
    await open(page, 'img2img')
    // Paste (Ctrl+V) an image.
    const bytes = [...(await testPng(64, 64))]
    await page.evaluate((bytes) => {
      const dt = new DataTransfer()
      dt.items.add(new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' }))
      window.dispatchEvent(
        new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }),
      )
    }, bytes)
    await expect(page.getByTestId('input-image')).toBeVisible()
    await expect(page.getByTestId('image-drop')).toContainText('pasted.png · 64×64')
    await basics(page, 'a red house', 4, 42)
    // A LoRA from the library, its trigger words inserted on request.
    const option = page.getByTestId('lora-add').locator('option', { hasText: 'tiny-lora' })
    await expect(option).toContainText('SD 1.x')
    await page.getByTestId('lora-add').selectOption((await option.getAttribute('value')) ?? '')
    await page.getByLabel('tiny-lora weight').fill('0.8')
    await page.getByRole('button', { name: '+ triggers' }).click()
    await expect(page.getByTestId('prompt')).toHaveValue('a red house, tinystyle')
    // Taken off again before generating: the engine's LoRA graphs fail on the tiny checkpoint at the moment
    // (`atelier img2img --lora tiny-lora:0.8` fails the same way: MatMul shape error in lora0_11_up).
    await page.getByRole('button', { name: 'Remove tiny-lora' }).click()
    await expect(page.getByTestId('lora-picker')).not.toContainText('+ triggers')
    await page.getByTestId('strength').fill('0.6')
    await expect(page.getByTestId('strength-value')).toHaveText('0.60')
    await expect(page.getByTestId('steps-run')).toContainText('Runs 3 of 4 steps')
    await generateAndWait(page)
    await expect(page.getByTestId('result-info')).toContainText('64×64')
    await expect(page.getByTestId('result-info')).toContainText('seed 42')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'studio-img2img.png') })
    // Loopback, then send the result to Inpaint.
    await page.getByTestId('use-as-input').click()
    await expect(page.getByTestId('image-drop')).toContainText('00000-42.png · 64×64')
    await page.getByTestId('send-to-inpaint').click()
    await expect(page.getByTestId('section-inpaint')).toBeVisible()
    await expect(page.getByTestId('mask-status')).toContainText('00000-42.png · 64×64')

    // The PNG's parameters, read back through gallery:parameters in the Gallery.
    await page.getByRole('navigation').getByRole('link', { name: 'Gallery', exact: true }).click()
    await expect(page.getByTestId('gallery-item')).toHaveCount(1)
    const params = page.getByTestId('gallery-parameters')
    await expect(params).toContainText('a red house, tinystyle')
    for (const s of ['Steps: 4', 'Seed: 42', 'Denoising strength: 0.6', 'Size: 64x64', 'Model: tiny-sd15'])
      await expect(params).toContainText(s)
    await page.screenshot({ path: path.join(SCREENSHOTS, 'studio-gallery.png') })
  })

  test('restore parameters from a dropped PNG', async ({ page }) => {
    const outputs = path.join(app.home, 'outputs')
    const file = fs.readdirSync(outputs).find((f) => f.endsWith('.png'))
    expect(file).toBeDefined()
    const bytes = [...fs.readFileSync(path.join(outputs, file as string))]
    await open(page, 'img2img')
    await basics(page, 'something else', 9, 7)
    await page.evaluate(
      ({ bytes, name }) => {
        const dt = new DataTransfer()
        dt.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/png' }))
        const target = document.querySelector('[aria-label="Generation settings"]') as Element
        target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }))
        target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
      },
      { bytes, name: file as string },
    )
    await expect(page.getByTestId('toast')).toContainText('Restored')
    await expect(page.getByTestId('prompt')).toHaveValue('a red house, tinystyle')
    await expect(page.getByTestId('steps')).toHaveValue('4')
    await expect(page.getByTestId('seed')).toHaveValue('42')
    await expect(page.getByTestId('strength-value')).toHaveText('0.60')
  })

  test('inpaint: painted mask; pixels outside the blurred mask are unchanged', async ({ page }) => {
    const W = 128
    const png = await testPng(W, W)
    const original = await decodeRgb(png)
    await open(page, 'inpaint')
    await upload(page, png)
    await waitCanvasFitted(page)
    await page.getByTestId('brush-size').fill('12')
    await basics(page, 'a blue window', 4, 5)
    const a: [number, number] = [30, 60]
    const b: [number, number] = [96, 60]
    await stroke(page, a, b)
    await expect(page.getByTestId('mask-status')).toHaveAttribute('data-strokes', '1')
    await page.getByTestId('inpaint-area').selectOption('only-masked')
    // Painted box 24..102 x 54..66, blur reach 10, padding 32 -> widened to a square, clamped.
    await expect(page.getByTestId('mask-status')).toContainText('regenerates 128×128')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'studio-inpaint-only-masked.png') })
    await page.getByTestId('inpaint-area').selectOption('whole-picture')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'studio-inpaint.png') })
    await generateAndWait(page)

    const result = await imagePixels(page.getByTestId('result-image'))
    expect([result.width, result.height]).toEqual([W, W])
    const outside = 6 + 10 + 2 // brush radius + blur reach (int(2.5 * 4 + 0.5)) + antialiasing
    let maxOutside = 0
    let changedInside = 0
    let inside = 0
    for (let y = 0; y < W; y++)
      for (let x = 0; x < W; x++) {
        const d = distToSegment(x + 0.5, y + 0.5, a, b)
        const diff = pixelDiff(original, result, x, y)
        if (d > outside) maxOutside = Math.max(maxOutside, diff)
        else if (d < 4) {
          inside++
          if (diff > 8) changedInside++
        }
      }
    console.log(JSON.stringify({ inpaint: { maxDiffOutsideBlurredMask: maxOutside, changedInside, inside } }))
    expect(maxOutside).toBe(0)
    expect(changedInside).toBeGreaterThan(inside / 4)
    await page.screenshot({ path: path.join(SCREENSHOTS, 'studio-inpaint-result.png') })
  })

  test('inpaint: undo and redo strokes (buttons and Ctrl+Z / Ctrl+Shift+Z)', async ({ page }) => {
    await open(page, 'inpaint')
    await upload(page, await testPng(128, 128))
    await waitCanvasFitted(page)
    await page.getByTestId('brush-size').fill('8')
    await page.getByTestId('inpaint-area').selectOption('only-masked')
    await page.getByTestId('masked-padding').fill('0')
    await page.getByTestId('mask-blur').fill('0')
    const status = page.getByTestId('mask-status')
    // Zoom (wheel) and pan (middle mouse, space + drag) must not paint, and painting maps through the view.
    const canvas = page.getByTestId('inpaint-canvas')
    const fitted = await canvas.getAttribute('data-view')
    const box = await canvas.boundingBox()
    if (!box) throw new Error('no canvas box')
    const cx = box.x + box.width / 2
    const cy = box.y + box.height / 2
    const zoom0 = Number((await page.getByTestId('zoom-level').textContent())?.replace('%', ''))
    await page.mouse.move(cx, cy)
    await page.mouse.wheel(0, -400)
    await expect
      .poll(async () => Number((await page.getByTestId('zoom-level').textContent())?.replace('%', '')))
      .toBeGreaterThan(zoom0 * 1.5)
    const zoomed = await canvas.getAttribute('data-view')
    await page.mouse.down({ button: 'middle' })
    await page.mouse.move(cx + 40, cy + 10, { steps: 4 })
    await page.mouse.up({ button: 'middle' })
    await expect(canvas).not.toHaveAttribute('data-view', zoomed ?? '')
    const panned = await canvas.getAttribute('data-view')
    await page.keyboard.down('Space')
    await page.mouse.down()
    await page.mouse.move(cx - 30, cy - 20, { steps: 4 })
    await page.mouse.up()
    await page.keyboard.up('Space')
    await expect(canvas).not.toHaveAttribute('data-view', panned ?? '')
    await expect(status).toHaveAttribute('data-strokes', '0')
    // A stroke while zoomed and panned lands where the image point is: brush 8 from (60, 64) to (68, 64).
    await stroke(page, [60, 64], [68, 64], 4)
    await expect(status).toHaveAttribute('data-strokes', '1')
    const m = /regenerates (\d+)×(\d+) at \((\d+), (\d+)\)/.exec((await status.textContent()) ?? '')
    const [w, h, x, y] = (m ?? []).slice(1).map(Number)
    expect(x).toBeGreaterThanOrEqual(53)
    expect(x).toBeLessThanOrEqual(57)
    expect(w).toBeGreaterThanOrEqual(15)
    expect(w).toBeLessThanOrEqual(19)
    expect(w).toBe(h) // widened to the square processing aspect
    expect(y).toBeGreaterThanOrEqual(55)
    expect(y).toBeLessThanOrEqual(57)
    await page.screenshot({ path: path.join(SCREENSHOTS, 'studio-inpaint-zoomed.png') })
    await page.keyboard.press('Control+z')
    await expect(status).toHaveAttribute('data-strokes', '0')
    await page.getByTestId('zoom-fit').click()
    await expect(canvas).toHaveAttribute('data-view', fitted ?? '')
    await stroke(page, [20, 20], [40, 20])
    await expect(status).toHaveAttribute('data-strokes', '1')
    const first = await status.textContent()
    await stroke(page, [60, 90], [100, 100])
    await expect(status).toHaveAttribute('data-strokes', '2')
    const both = await status.textContent()
    expect(both).not.toBe(first)

    await page.keyboard.press('Control+z')
    await expect(status).toHaveAttribute('data-strokes', '1')
    expect(await status.textContent()).toBe(first)
    await page.keyboard.press('Control+Shift+Z')
    await expect(status).toHaveAttribute('data-strokes', '2')
    expect(await status.textContent()).toBe(both)
    await page.getByTestId('undo').click()
    await page.getByTestId('undo').click()
    await expect(status).toHaveAttribute('data-strokes', '0')
    await expect(status).toContainText('paint a mask')
    await page.getByTestId('redo').click()
    await expect(status).toHaveAttribute('data-strokes', '1')
    expect(await status.textContent()).toBe(first)
    // Invert: everything but the stroke is masked, so the whole image is regenerated.
    await page.getByTestId('mask-invert').click()
    await expect(status).toContainText('regenerates 128×128 at (0, 0)')
    await page.getByTestId('mask-clear').click()
    await expect(status).toContainText('paint a mask')
    await page.keyboard.press('Control+z')
    await page.keyboard.press('Control+z')
    expect(await status.textContent()).toBe(first)
    // An uploaded mask (white = repaint) replaces the painted one, as one undoable step.
    const maskPng = await sharp({ create: { width: 128, height: 128, channels: 3, background: '#000' } })
      .composite([
        { input: { create: { width: 32, height: 24, channels: 3, background: '#fff' } }, left: 8, top: 16 },
      ])
      .png()
      .toBuffer()
    await page
      .getByTestId('mask-file')
      .setInputFiles({ name: 'mask.png', mimeType: 'image/png', buffer: maskPng })
    await expect(status).toContainText('regenerates 32×32 at (8, 12)')
    await page.keyboard.press('Control+z')
    expect(await status.textContent()).toBe(first)
    // Brush size shortcuts.
    await page.keyboard.press(']')
    await expect(page.getByTestId('brush-size-value')).toHaveText('11')
    await page.keyboard.press('[')
    await expect(page.getByTestId('brush-size-value')).toHaveText('9')
  })

  test('outpaint: extend right by 64; the output is 64 px wider and the original pixels stay', async ({
    page,
  }) => {
    const png = await testPng(64, 64)
    const original = await decodeRgb(png)
    await open(page, 'outpaint')
    await upload(page, png)
    const canvas = page.getByTestId('outpaint-canvas')
    await expect(canvas).toHaveAttribute('data-board', '64x64')
    await page.getByTestId('extend-right').fill('61')
    await page.getByTestId('extend-right').blur()
    await expect(page.getByTestId('extend-right')).toHaveValue('64')
    await expect(canvas).toHaveAttribute('data-board', '128x64')
    await expect(page.getByTestId('outpaint-size')).toHaveText('64×64 → 128×64')
    await page.getByTestId('outpaint-overlap').fill('16')
    await page.getByTestId('seam-blur').fill('4')
    await basics(page, 'a meadow', 4, 3)
    await page.waitForTimeout(300) // the pre-fill preview settles
    await page.screenshot({ path: path.join(SCREENSHOTS, 'studio-outpaint.png') })
    await generateAndWait(page)
    const result = await imagePixels(page.getByTestId('result-image'))
    expect([result.width, result.height]).toEqual([128, 64])
    const keep = 64 - 16 - 10 - 2 // overlap band, blur reach, margin
    let maxDiff = 0
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < keep; x++) maxDiff = Math.max(maxDiff, pixelDiff(original, result, x, y))
    console.log(JSON.stringify({ outpaint: { maxDiffInKeptOriginal: maxDiff, keptColumns: keep } }))
    expect(maxDiff).toBe(0)
    await page.screenshot({ path: path.join(SCREENSHOTS, 'studio-outpaint-result.png') })
  })

  test('outpaint: dragging a handle extends that side in multiples of 8', async ({ page }) => {
    await open(page, 'outpaint')
    await upload(page, await testPng(64, 64))
    const canvas = page.getByTestId('outpaint-canvas')
    await expect(canvas).toHaveAttribute('data-board', '64x64')
    const box = await canvas.boundingBox()
    if (!box) throw new Error('no canvas box')
    // The board (64x64) is fitted and centred: the right handle sits at the middle of its right edge.
    const scale = Math.min((box.width - 32) / 64, (box.height - 32) / 64)
    const hx = box.x + box.width / 2 + 32 * scale
    const hy = box.y + box.height / 2
    await page.mouse.move(hx, hy)
    await page.mouse.down()
    await page.mouse.move(hx + 37 * scale, hy, { steps: 8 })
    await page.mouse.up()
    const v = Number(await page.getByTestId('extend-right').inputValue())
    expect(v % 8).toBe(0)
    expect(v).toBeGreaterThanOrEqual(32)
    expect(v).toBeLessThanOrEqual(40)
    expect(await page.getByTestId('extend-left').inputValue()).toBe('0')
    // Zoom out ×1.5 grows every side by a quarter of the image, snapped to 8.
    await page.getByLabel('Zoom out factor').selectOption('1.5')
    await page.getByTestId('zoom-out').click()
    await expect(canvas).toHaveAttribute('data-board', '96x96')
  })

  test('cancel a running generation', async ({ page }) => {
    await open(page, 'img2img')
    await upload(page, await testPng(256, 256))
    await basics(page, 'a long run', 60, 1)
    await page.getByTestId('strength').fill('1')
    await page.getByTestId('generate').click()
    await expect(page.getByTestId('progress')).toContainText(/step [1-9]\d*\/60/, { timeout: 60_000 })
    // Previews come every steps/6 steps: the first at step 10.
    await expect(page.getByTestId('live-preview')).toBeVisible({ timeout: 90_000 })
    await expect(page.getByTestId('progress')).toContainText('ETA')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'studio-running.png') })
    await page.getByTestId('cancel').click()
    await expect(page.getByTestId('message')).toContainText('Cancelled', { timeout: 30_000 })
    await expect(page.getByTestId('generate')).toBeEnabled()
  })

  test('gallery: send to a tab, delete', async ({ page }) => {
    await open(page, 'gallery')
    const items = page.getByTestId('gallery-item')
    await expect(items.first()).toBeVisible()
    const count = await items.count()
    expect(count).toBeGreaterThanOrEqual(3)
    await items.last().click()
    await expect(page.getByTestId('gallery-parameters')).toContainText('Steps:')
    await page.getByTestId('gallery-send-outpaint').click()
    await expect(page.getByTestId('section-outpaint')).toBeVisible()
    await expect(page.getByTestId('outpaint-canvas')).toBeVisible()
    await page.getByRole('navigation').getByRole('link', { name: 'Gallery', exact: true }).click()
    page.once('dialog', (d) => void d.accept())
    await items.first().click()
    await page.getByTestId('gallery-delete').click()
    await expect(items).toHaveCount(count - 1)
  })

  test('painting a 2048² mask stays smooth (frame times of a scripted drag)', async ({ page }) => {
    await open(page, 'inpaint')
    await upload(page, await testPng(2048, 2048), 'big.png')
    await waitCanvasFitted(page)
    await page.getByTestId('brush-size').fill('96')
    const path1: [number, number][] = []
    for (let i = 0; i <= 40; i++) path1.push([200 + i * 40, 1024 + Math.sin(i / 3) * 600])
    const screen = await Promise.all(path1.map(([x, y]) => toScreen(page, x, y)))
    await page.evaluate(() => {
      const w = window as unknown as { __frames: number[]; __rec: boolean; __long: number[] }
      w.__frames = []
      w.__rec = true
      w.__long = []
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.__long.push(e.duration)
      }).observe({ type: 'longtask' })
      const tick = (t: number): void => {
        w.__frames.push(t)
        if (w.__rec) requestAnimationFrame(tick)
      }
      requestAnimationFrame(tick)
    })
    const t0 = Date.now()
    const first = screen[0] as { x: number; y: number }
    await page.mouse.move(first.x, first.y)
    await page.mouse.down()
    let moves = 0
    for (const p of screen.slice(1)) {
      await page.mouse.move(p.x, p.y, { steps: 5 })
      moves += 5
    }
    await page.mouse.up()
    const dragMs = Date.now() - t0
    await page.waitForTimeout(100)
    const { frames, longTasks } = await page.evaluate(() => {
      const w = window as unknown as { __frames: number[]; __rec: boolean; __long: number[] }
      w.__rec = false
      return { frames: w.__frames, longTasks: w.__long }
    })
    const dts = frames.slice(1).map((t, i) => t - (frames[i] as number))
    const sorted = [...dts].sort((x, y) => x - y)
    const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
    const stats = {
      image: '2048x2048',
      brush: 96,
      pointerMoves: moves,
      dragMs,
      frames: dts.length,
      meanFrameMs: +(dts.reduce((s, d) => s + d, 0) / Math.max(1, dts.length)).toFixed(2),
      p50FrameMs: +q(0.5).toFixed(2),
      p95FrameMs: +q(0.95).toFixed(2),
      maxFrameMs: +(sorted[sorted.length - 1] ?? 0).toFixed(2),
      framesOver33ms: dts.filter((d) => d > 33.4).length,
      framesOver50ms: dts.filter((d) => d > 50).length,
      // Where in the run (0 = start, 1 = end) frames over 33 ms fell.
      slowFramesAt: dts.flatMap((d, i) => (d > 33.4 ? [+(i / dts.length).toFixed(2)] : [])),
      longTasks: longTasks.length,
      longestTaskMs: Math.round(Math.max(0, ...longTasks)),
    }
    console.log(JSON.stringify({ paintFrameTimes: stats }))
    await expect(page.getByTestId('mask-status')).toHaveAttribute('data-strokes', '1')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'studio-inpaint-2048.png') })
    expect(stats.frames).toBeGreaterThan(10)
  })
})
