/**
 * Image prompts in the UI against `atelier serve` with the seeded tiny checkpoint, the tiny IP-Adapter and
 * its image encoder in the library: reference-image slots in the generation panel (one image, then two with
 * different weights, one removed), and the Gallery's Blend action on two gallery images. Every output's
 * PNG parameters name the adapter and the image prompts.
 */
import fs from 'node:fs'
import path from 'node:path'
import { expect, test, type Page } from '@playwright/test'
import { SCREENSHOTS, serveApp, type ServedApp } from '../../fixtures/server'
import { appMissing, scanLibrary, studioHome, testPng, tinyModels } from '../../fixtures/studio-home'

const skipReason = appMissing()
if (skipReason) console.warn(`image-prompts.spec.ts skipped: ${skipReason}`)

test.describe.configure({ mode: 'serial' })

let app: ServedApp

/** The studio home plus the tiny IP-Adapter and its encoder (folder with config.json), scanned again. */
async function homeWithImagePrompts(): Promise<string> {
  const tiny = await tinyModels()
  const home = await studioHome()
  const models = path.join(home, 'models')
  fs.mkdirSync(path.join(models, 'ip-adapters'), { recursive: true })
  fs.copyFileSync(tiny.ipAdapter, path.join(models, 'ip-adapters', 'tiny-ip.safetensors'))
  const enc = path.join(models, 'image-encoders', 'tiny-vit')
  fs.mkdirSync(enc, { recursive: true })
  for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json'])
    fs.copyFileSync(path.join(tiny.imageEncoder, f), path.join(enc, f))
  scanLibrary(home)
  return home
}

async function generateAndWait(page: Page): Promise<void> {
  await page.getByTestId('generate').click()
  await expect(page.getByTestId('message')).toBeVisible({ timeout: 90_000 })
  await expect(page.getByTestId('message')).toContainText('Done', { timeout: 1000 })
}

async function addReference(page: Page, png: Buffer, name: string): Promise<void> {
  await page.getByTestId('ip-file').setInputFiles({ name, mimeType: 'image/png', buffer: png })
}

async function lastParameters(page: Page): Promise<string> {
  await page.getByRole('navigation').getByRole('link', { name: 'Gallery', exact: true }).click()
  await page.getByTestId('gallery-item').first().click()
  const params = page.getByTestId('gallery-parameters')
  await expect(params).toContainText('Steps:')
  return (await params.textContent()) ?? ''
}

test.describe('image prompts', () => {
  test.skip(skipReason !== undefined, skipReason)

  test.beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true })
    const home = await homeWithImagePrompts()
    app = await serveApp(home, { ATELIER_HOME: home })
  })

  test.afterAll(async () => {
    await app?.stop()
  })

  test('img2img with one, then two reference images (weights), then one removed', async ({ page }) => {
    await page.goto(`${app.url}#/img2img`)
    await expect(page.getByTestId('model-family')).toHaveText('SD 1.x')
    await page.getByTestId('image-file').setInputFiles({
      name: 'input.png',
      mimeType: 'image/png',
      buffer: await testPng(64, 64),
    })
    await page.getByTestId('prompt').fill('a red house')
    await page.getByTestId('steps').fill('3')
    await page.getByTestId('seed').fill('5')

    await addReference(page, await testPng(48, 64), 'ref-a.png')
    await expect(page.getByTestId('ip-slot')).toHaveCount(1)
    await page.getByLabel('ref-a.png weight').fill('0.6')
    await expect(page.getByTestId('ip-adapter').locator('option', { hasText: 'tiny-ip' })).toHaveCount(1)
    await generateAndWait(page)
    let params = await lastParameters(page)
    for (const s of ['IP-Adapter: tiny-ip', 'IP-Adapter weight: 0.6', 'Image prompts: 1'])
      expect(params).toContain(s)

    await page.getByRole('navigation').getByRole('link', { name: 'Img2img', exact: true }).click()
    await expect(page.getByTestId('ip-slot')).toHaveCount(1)
    await addReference(page, await testPng(64, 40), 'ref-b.png')
    await expect(page.getByTestId('ip-slot')).toHaveCount(2)
    await page.getByLabel('ref-b.png weight').fill('1.2')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'image-prompts-slots.png') })
    await generateAndWait(page)
    params = await lastParameters(page)
    for (const s of ['IP-Adapter weight: 1.2', 'Image prompts: 2', 'Image prompt weights: "0.6, 1.2"'])
      expect(params).toContain(s)

    await page.getByRole('navigation').getByRole('link', { name: 'Img2img', exact: true }).click()
    await page.getByRole('button', { name: 'Remove ref-a.png' }).click()
    await page.getByRole('button', { name: 'Remove ref-b.png' }).click()
    await expect(page.getByTestId('ip-slot')).toHaveCount(0)
  })

  test('gallery: blend two images (no text, equal weights)', async ({ page }) => {
    await page.goto(`${app.url}#/gallery`)
    await expect(page.getByTestId('gallery-item')).toHaveCount(2)
    await page.getByTestId('blend-open').click()
    const picks = page.getByTestId('blend-pick')
    await expect(picks).toHaveCount(2)
    await picks.nth(0).click()
    await expect(picks.nth(0)).toHaveAttribute('aria-pressed', 'true')
    await expect(page.getByTestId('blend-start')).toBeDisabled()
    await picks.nth(1).click()
    await page.getByTestId('blend-start').click()
    await expect(page.getByTestId('blend-action')).toContainText('Done', { timeout: 90_000 })
    await expect(page.getByTestId('gallery-item')).toHaveCount(3)
    await page.screenshot({ path: path.join(SCREENSHOTS, 'image-prompts-blend.png') })
    await page.getByTestId('gallery-item').first().click()
    const params = page.getByTestId('gallery-parameters')
    await expect(params).toContainText('Image prompts: 2')
    await expect(params).toContainText('IP-Adapter weight: 1')
    await expect(params).toContainText('Size: 512x512')
    await expect(params).toContainText('IP-Adapter encoder: tiny-vit')
  })
})
