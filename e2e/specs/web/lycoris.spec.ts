/**
 * LyCORIS from the UI: a LoHa and a DoRA file (bytes generated here) in the library's LoRA folder show up
 * in the LoRA select; img2img generates with them; changing the weight gives another image (the
 * multiplier is a graph input, so the loaded session is reused) and the PNG names the adapter.
 */
import fs from 'node:fs'
import path from 'node:path'
import { expect, test, type Page } from '@playwright/test'
import { writeAdapterFile } from '../../fixtures/lycoris-files'
import { SCREENSHOTS, serveApp, type ServedApp } from '../../fixtures/server'
import { appMissing, scanLibrary, studioHome, testPng } from '../../fixtures/studio-home'

const skipReason = appMissing()
if (skipReason) console.warn(`lycoris.spec.ts skipped: ${skipReason}`)

test.describe.configure({ mode: 'serial' })

let app: ServedApp

async function generateAndWait(page: Page): Promise<void> {
  await page.getByTestId('generate').click()
  await expect(page.getByTestId('message')).toBeVisible({ timeout: 90_000 })
  await expect(page.getByTestId('message')).toContainText('Done', { timeout: 1000 })
  await expect(page.getByTestId('result-image')).toBeVisible()
}

function outputs(): string[] {
  const dir = path.join(app.home, 'outputs')
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.png')) : []
}

test.describe('LyCORIS in the studio', () => {
  test.skip(skipReason !== undefined, skipReason)

  test.beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true })
    const home = await studioHome()
    const lyco = path.join(home, 'models', 'loras')
    fs.mkdirSync(lyco, { recursive: true })
    await writeAdapterFile(path.join(lyco, 'tiny-loha.safetensors'), 'loha', undefined, {
      seed: 5,
      scale: 0.4,
    })
    await writeAdapterFile(path.join(lyco, 'tiny-dora.safetensors'), 'dora', undefined, {
      seed: 6,
      scale: 0.4,
    })
    scanLibrary(home)
    app = await serveApp(home, { ATELIER_HOME: home })
  })

  test.afterAll(async () => {
    await app?.stop()
  })

  test('LoHa and DoRA from the LoRA select; a weight change regenerates differently', async ({ page }) => {
    await page.goto(`${app.url}#/img2img`)
    await expect(page.getByTestId('section-img2img')).toBeVisible()
    await expect(page.getByTestId('model-family')).toHaveText('SD 1.x')
    await page
      .getByTestId('image-file')
      .setInputFiles({ name: 'input.png', mimeType: 'image/png', buffer: await testPng(64, 64) })
    await page.getByTestId('prompt').fill('a red house')
    await page.getByTestId('steps').fill('4')
    await page.getByTestId('seed').fill('42')
    await page.getByTestId('strength').fill('0.6')
    for (const name of ['tiny-loha', 'tiny-dora']) {
      const option = page.getByTestId('lora-add').locator('option', { hasText: name })
      await expect(option).toContainText('SD 1.x')
    }
    const loha = page.getByTestId('lora-add').locator('option', { hasText: 'tiny-loha' })
    await page.getByTestId('lora-add').selectOption((await loha.getAttribute('value')) ?? '')
    await page.getByLabel('tiny-loha weight').fill('0.8')
    await generateAndWait(page)
    expect(outputs()).toHaveLength(1)

    await page.getByLabel('tiny-loha weight').fill('0.3')
    await generateAndWait(page)
    const dora = page.getByTestId('lora-add').locator('option', { hasText: 'tiny-dora' })
    await page.getByTestId('lora-add').selectOption((await dora.getAttribute('value')) ?? '')
    await page.getByLabel('tiny-dora weight').fill('0.7')
    await generateAndWait(page)
    await page.screenshot({ path: path.join(SCREENSHOTS, 'lycoris-img2img.png') })
    const files = outputs().sort()
    expect(files).toHaveLength(3)
    const bytes = files.map((f) => fs.readFileSync(path.join(app.home, 'outputs', f)))
    expect(bytes[0]?.equals(bytes[1] as Buffer)).toBe(false)
    expect(bytes[1]?.equals(bytes[2] as Buffer)).toBe(false)

    await page.getByRole('navigation').getByRole('link', { name: 'Gallery', exact: true }).click()
    await expect(page.getByTestId('gallery-item')).toHaveCount(3)
    await expect(page.getByTestId('gallery-parameters')).toContainText('tiny-loha:')
  })
})
