/**
 * VAE select, Clip skip and RNG in the studio against `atelier serve` with the seeded tiny SD 1.5 and a
 * different tiny VAE in the library: the select is named "VAE", its choice survives a reload and reaches
 * the PNG (`VAE: <file>`); a dropped PNG restores the VAE by hash (Automatic when it names none), Clip skip,
 * and the RNG (an A1111 infotext without `RNG:` is the GPU / Philox generator).
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { expect, test, type Page } from '@playwright/test'
import sharp from 'sharp'
import { ensureTinyModels } from '../../../bench/fixtures/tiny-models'
import { writeTinyVae } from '../../../bench/fixtures/tiny-vae'
import { ROOT, serveApp, type ServedApp } from '../../fixtures/server'
import { testPng } from '../../fixtures/studio-home'

const built = fs.existsSync(path.join(ROOT, 'out', 'cli', 'atelier.mjs'))
test.describe.configure({ mode: 'serial' })

let app: ServedApp
let home = ''

async function open(page: Page): Promise<void> {
  await page.goto(`${app.url}#/img2img`)
  await expect(page.getByTestId('section-img2img')).toBeVisible()
  await expect(page.getByTestId('model-family')).toHaveText('SD 1.x')
}

/** A PNG with an A1111 `parameters` text chunk. */
async function pngWith(parameters: string): Promise<number[]> {
  const png = await testPng(64, 64)
  // A tEXt chunk before IEND, as A1111 (PIL) writes it.
  const text = Buffer.concat([Buffer.from('parameters\0', 'latin1'), Buffer.from(parameters, 'latin1')])
  const len = Buffer.alloc(4)
  len.writeUInt32BE(text.length)
  const type = Buffer.from('tEXt', 'latin1')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat([type, text])))
  const iend = png.length - 12
  return [...Buffer.concat([png.subarray(0, iend), len, type, text, crc, png.subarray(iend)])]
}

function crc32(b: Buffer): number {
  let c = ~0
  for (const x of b) {
    c ^= x
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1
  }
  return ~c >>> 0
}

async function drop(page: Page, bytes: number[], name: string): Promise<void> {
  await page.evaluate(
    ({ bytes, name }) => {
      const dt = new DataTransfer()
      dt.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/png' }))
      const target = document.querySelector('[aria-label="Generation settings"]') as Element
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }))
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
    },
    { bytes, name },
  )
  await expect(page.getByTestId('toast')).toContainText('Restored')
}

test.describe('VAE, Clip skip and RNG in the studio', () => {
  test.skip(!built, 'the app is not built (run `npm run build`)')

  test.beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-vae-e2e-'))
    const tiny = await ensureTinyModels()
    const ck = path.join(home, 'models', 'checkpoints')
    fs.mkdirSync(ck, { recursive: true })
    fs.copyFileSync(tiny.sd15, path.join(ck, 'tiny-sd15.safetensors'))
    writeTinyVae(path.join(home, 'models', 'vaes', 'tiny-vae.safetensors'), { seed: 41 })
    const scan = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'atelier.js'), 'library', 'scan'], {
      env: { ...process.env, ATELIER_HOME: home },
      encoding: 'utf8',
    })
    if (scan.status !== 0) throw new Error(`atelier library scan failed: ${scan.stderr}`)
    app = await serveApp(home, { ATELIER_HOME: home })
  })

  test.afterAll(async () => {
    await app?.stop()
    fs.rmSync(home, { recursive: true, force: true })
  })

  test('the VAE select is remembered and reaches the image', async ({ page }) => {
    await open(page)
    const select = page.getByRole('combobox', { name: 'VAE', exact: true })
    await expect(select.locator('option')).toHaveText(["Automatic (the checkpoint's own)", /^tiny-vae/])
    await select.selectOption({ label: (await select.locator('option').nth(1).textContent()) ?? '' })
    const chosen = await select.inputValue()
    expect(chosen).not.toBe('')
    await page.reload()
    await expect(page.getByTestId('model-family')).toHaveText('SD 1.x')
    await expect(page.getByRole('combobox', { name: 'VAE', exact: true })).toHaveValue(chosen)

    await page.getByTestId('image-file').setInputFiles({
      name: 'in.png',
      mimeType: 'image/png',
      buffer: await testPng(64, 64),
    })
    await page.getByTestId('prompt').fill('a red house')
    await page.getByTestId('steps').fill('2')
    await page.getByTestId('seed').fill('3')
    await page.getByRole('spinbutton', { name: 'Clip skip' }).fill('2')
    await page.getByTestId('generate').click()
    await expect(page.getByTestId('message')).toBeVisible({ timeout: 120_000 })
    await expect(page.getByTestId('message')).toContainText('Done', { timeout: 1000 })
    const outputs = path.join(home, 'outputs')
    const file = fs.readdirSync(outputs).find((f) => f.endsWith('.png'))
    const text = ((await sharp(path.join(outputs, file ?? '')).metadata()).comments ?? [])
      .map((c) => c.text)
      .join('\n')
    expect(text).toMatch(/VAE hash: [0-9a-f]{10}, VAE: tiny-vae\.safetensors/)
    expect(text).toContain('Clip skip: 2')
    expect(text).toContain('RNG: CPU')
  })

  test('a dropped PNG restores VAE, Clip skip and RNG', async ({ page }) => {
    await open(page)
    const select = page.getByRole('combobox', { name: 'VAE', exact: true })
    // A new browser context remembers nothing: pick the VAE, then let the drops change it.
    await expect(select.locator('option')).toHaveCount(2)
    await select.selectOption({ index: 1 })
    const vaeId = await select.inputValue()
    expect(vaeId).not.toBe('')
    // An A1111 infotext: no VAE (the checkpoint's own), Clip skip 3, no RNG (A1111's default GPU).
    await drop(
      page,
      await pngWith(
        'a cat\nSteps: 5, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, Model: tiny-sd15, Clip skip: 3',
      ),
      'a1111.png',
    )
    await expect(select).toHaveValue('')
    await expect(page.getByRole('spinbutton', { name: 'Clip skip' })).toHaveValue('3')
    await expect(page.getByRole('combobox', { name: 'RNG' })).toHaveValue('gpu')
    // Atelier's own image: its VAE by hash, RNG CPU, Clip skip 2.
    const outputs = path.join(home, 'outputs')
    const file = fs.readdirSync(outputs).find((f) => f.endsWith('.png')) ?? ''
    await drop(page, [...fs.readFileSync(path.join(outputs, file))], file)
    await expect(select).toHaveValue(vaeId)
    await expect(page.getByRole('spinbutton', { name: 'Clip skip' })).toHaveValue('2')
    await expect(page.getByRole('combobox', { name: 'RNG' })).toHaveValue('cpu')
  })
})
