import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { expect, test, type Page } from '@playwright/test'
import { startModelSources, type ModelSources } from '../../fixtures/model-sources'
import { SCREENSHOTS, serveApp, type ServedApp } from '../../fixtures/server'

/** The fixture's SD 1.5 checkpoint (Civitai model 1001, with a preview image and an older version). */
const CHECKPOINT_NAME = 'Tiny Checkpoint'

let tmp: string
let sources: ModelSources

test.beforeAll(async () => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true })
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-models-e2e-'))
  sources = await startModelSources(tmp)
})

test.afterAll(async () => {
  await sources.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `models-${name}.png`) })
}

async function open(page: Page, app: ServedApp, hash: string): Promise<void> {
  await page.goto(`${app.url}#/models`)
  await expect(page.getByTestId('section-models')).toBeVisible()
  await page.evaluate((h) => (location.hash = h), hash)
}

test('browse, install with progress across a server restart, library, compatibility, delete', async ({
  page,
}) => {
  test.setTimeout(240_000)
  const home = path.join(tmp, 'home')
  let app = await serveApp(home, sources.env)
  try {
    await page.goto(`${app.url}#/models`)
    // Browse: Civitai cards with images, NSFW hidden by default.
    const cards = page.getByTestId('model-card')
    await expect(cards.first()).toBeVisible()
    await expect(page.locator('[data-testid="model-card"] img').first()).toBeVisible()
    await shot(page, 'browse')

    // Search, then filter.
    await page.getByTestId('search-input').fill('tiny')
    await expect(cards.filter({ hasText: 'Tiny Style LoRA' })).toBeVisible()
    await expect(cards.filter({ hasText: 'Filler' })).toHaveCount(0)
    await page.getByTestId('filter-type').selectOption('lora')
    await expect(cards.filter({ hasText: CHECKPOINT_NAME })).toHaveCount(0)
    await expect(cards.filter({ hasText: 'Tiny XL Detail' })).toBeVisible()
    await shot(page, 'browse-filtered')

    await page.getByTestId('filter-type').selectOption('checkpoint')
    await cards.filter({ hasText: CHECKPOINT_NAME }).click()
    await expect(page.getByTestId('model-title')).toHaveText(CHECKPOINT_NAME)
    await expect(page.getByTestId('compat-badge')).toHaveText('Compatible')

    // Slow mode, then install the checkpoint: the progress bar moves.
    sources.civitai.setFaults({ throttleBytesPerSec: 40 * 1024 })
    await page.getByTestId('install-button').first().click()
    await expect(page.getByTestId('install-progress')).toBeVisible()
    await shot(page, 'model-installing')

    // The LoRA, from its page (Back returns to the same results).
    await page.getByText('← Back to results').click()
    await expect(page.getByTestId('filter-type')).toHaveValue('checkpoint')
    await page.getByTestId('filter-type').selectOption('lora')
    await cards.filter({ hasText: 'Tiny Style LoRA' }).click()
    await expect(page.getByTestId('trigger-words')).toContainText('tinystyle')
    await expect(page.getByTestId('preview-image').first()).toContainText('seed 1234567')
    await page.getByTestId('install-button').first().click()

    // Downloads panel: both jobs, with bytes, speed and an ETA for the running one.
    await page.getByTestId('tab-downloads').click()
    const rows = page.getByTestId('download-row')
    await expect(rows).toHaveCount(2)
    await expect(rows.filter({ hasText: 'Tiny Style LoRA' }).getByTestId('download-status')).toHaveText(
      /Installed/,
    )
    const ckptRow = rows.filter({ hasText: CHECKPOINT_NAME })
    await expect(ckptRow).toHaveAttribute('data-state', 'downloading')
    await expect(ckptRow).toContainText(/\/s/)
    await shot(page, 'downloads')
  } finally {
    // Restart mid-download: the server stops while the checkpoint is still arriving.
    await app.stop()
  }
  const queue = JSON.parse(fs.readFileSync(path.join(home, 'downloads', 'downloads.json'), 'utf8')) as {
    jobs: { state: string; bytes: number }[]
  }
  const interrupted = queue.jobs.find((j) => j.state !== 'done')
  expect(interrupted?.bytes ?? 0).toBeGreaterThan(0)

  sources.civitai.resetFaults()
  app = await serveApp(home, sources.env)
  try {
    await open(page, app, '#/models/downloads')
    const rows = page.getByTestId('download-row')
    await expect(rows).toHaveCount(2)
    for (const name of [CHECKPOINT_NAME, 'Tiny Style LoRA']) {
      await expect(rows.filter({ hasText: name })).toHaveAttribute('data-install', 'installed', {
        timeout: 60_000,
      })
    }
    await expect(rows.filter({ hasText: CHECKPOINT_NAME })).toContainText('verified')
    await shot(page, 'downloads-done')
    // The resumed request asked only for the missing bytes.
    expect(
      sources.civitai.storageRequests().some((r) => String(r.headers.range ?? '').startsWith('bytes=')),
    ).toBe(true)

    // Library: both models, each with its preview image and a verified badge.
    await page.getByTestId('tab-library').click()
    const libCards = page.getByTestId('library-card')
    await expect(libCards).toHaveCount(2)
    for (const card of await libCards.all()) {
      await expect(card.locator('img')).toBeVisible()
      await expect(card).toContainText('Verified')
    }
    await shot(page, 'library')
    await page.getByTestId('library-search').fill('tinystyle')
    await expect(libCards).toHaveCount(1)
    await libCards.first().click()
    const details = page.getByTestId('library-details')
    await expect(details).toContainText('SHA-256')
    await expect(details.getByTestId('compat-badge')).toHaveText('Compatible')
    await shot(page, 'library-details')

    // Browse shows the badge; the SDXL LoRA is incompatible with the installed SD 1.5 checkpoint.
    await page.getByTestId('tab-browse').click()
    await page.getByTestId('search-input').fill('tiny')
    const cards = page.getByTestId('model-card')
    await expect(cards.filter({ hasText: 'Tiny Style LoRA' }).getByTestId('badge-installed')).toBeVisible()
    await cards.filter({ hasText: 'Tiny XL Detail' }).click()
    await expect(page.getByTestId('compat-badge')).toHaveText('Incompatible')
    await expect(page.getByTestId('compat')).toContainText('SDXL')
    await shot(page, 'model-incompatible')

    // "Use in Img2img": the LoRA joins the studio at 0.8 and its trigger word goes into the prompt.
    await page.getByTestId('tab-library').click()
    await page.getByTestId('library-card').filter({ hasText: 'tinyStyleLora' }).click()
    await page.getByTestId('use-in-img2img').click()
    await expect(page.getByTestId('section-img2img')).toBeVisible()
    await expect(page.getByTestId('lora-picker')).toContainText('tinyStyleLora_v1')
    await expect(page.getByTestId('lora-picker')).toContainText('0.80')
    await expect(page.locator('textarea').first()).toHaveValue(/tinystyle/)
    await shot(page, 'use-in-img2img')

    // Delete the LoRA (with confirmation).
    await page.evaluate(() => (location.hash = '#/models/library'))
    await page.getByTestId('library-card').filter({ hasText: 'tinyStyleLora' }).click()
    await page.getByTestId('delete-model').click()
    await expect(page.getByTestId('confirm-delete')).toBeVisible()
    await shot(page, 'library-delete')
    await page.getByTestId('confirm-delete-button').click()
    await expect(page.getByTestId('library-card')).toHaveCount(1)
    expect(fs.readdirSync(path.join(home, 'models', 'loras')).filter((n) => !n.startsWith('.'))).toEqual([])
  } finally {
    await app.stop()
  }
})

test('the grid loads the next page when its end scrolls into view', async ({ page }) => {
  const app = await serveApp(path.join(tmp, 'home-scroll'), sources.env)
  try {
    // Pages of 3: the grid keeps asking for the next page while its end is near the viewport.
    await open(page, app, '#/models/browse?limit=3')
    const cards = page.getByTestId('model-card')
    await expect(cards.first()).toBeVisible()
    for (let i = 0; i < 6; i++) {
      await cards.last().scrollIntoViewIfNeeded()
      await page.waitForTimeout(200)
    }
    await expect.poll(() => cards.count()).toBe(12)
    await expect(page.getByText('That is everything.')).toBeVisible()
    // No duplicates across pages.
    const ids = await cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-model-id')))
    expect(new Set(ids).size).toBe(ids.length)
  } finally {
    await app.stop()
  }
})

test('Hugging Face browsing, gated repos explained, keys tested in Settings, empty library starters', async ({
  page,
}) => {
  const app = await serveApp(path.join(tmp, 'home-hf'), sources.env)
  try {
    await open(page, app, '#/models/library')
    await expect(page.getByTestId('library-empty')).toContainText('three good starters')
    await shot(page, 'library-empty')

    await page.getByTestId('tab-browse').click()
    await page.getByTestId('source-huggingface').click()
    const cards = page.getByTestId('model-card')
    await expect(cards.filter({ hasText: 'tiny-sd-diffusers' })).toBeVisible()
    await shot(page, 'browse-hf')
    await cards.filter({ hasText: 'tiny-sd-diffusers' }).click()
    await expect(page.getByText('Install the whole pipeline')).toBeVisible()
    await expect(page.getByTestId('file-row')).toHaveCount(3)
    await shot(page, 'hf-pipeline')
    await page.getByText('← Back to results').click()
    await cards.filter({ hasText: 'gated-model' }).click()
    await expect(page.getByTestId('access-note')).toContainText('request access')
    await page.getByTestId('install-button').first().click()
    await expect(page.getByRole('alert').first()).toContainText('gated')
    await shot(page, 'hf-gated')

    await page.evaluate(() => (location.hash = '#/settings'))
    await page.getByTestId('secret-civitaiApiKey').fill('wrong-key')
    await page.getByTestId('test-civitaiApiKey').click()
    await expect(page.getByTestId('test-result-civitaiApiKey')).toContainText('rejected')
    await page.getByTestId('secret-civitaiApiKey').fill('civitai-test-key')
    await page.getByTestId('test-civitaiApiKey').click()
    await expect(page.getByTestId('test-result-civitaiApiKey')).toContainText('accepted')
    await shot(page, 'settings')
  } finally {
    await app.stop()
  }
})
