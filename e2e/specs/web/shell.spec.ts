import fs from 'node:fs'
import path from 'node:path'
import { expect, test } from '@playwright/test'
import { SCREENSHOTS, serveApp } from '../../fixtures/server'

test('the served shell switches sections, and a setting survives a server restart', async ({ page }) => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true })
  const first = await serveApp()
  try {
    await page.goto(first.url)
    // Create (text to image) is the first section and the default page.
    await expect(page.getByTestId('section-create')).toBeVisible()
    await expect(page.getByRole('navigation').getByRole('link').first()).toHaveText('Create')
    await expect(page.getByTestId('engine-provider')).toContainText(/Engine: (AUTO|CPU)/)
    // The token is moved out of the address bar.
    expect(page.url()).not.toContain('token=')
    for (const name of ['Models', 'Img2img', 'Inpaint', 'Outpaint', 'Gallery', 'Settings']) {
      await page.getByRole('navigation').getByRole('link', { name, exact: true }).click()
      await expect(page.getByTestId(`section-${name.toLowerCase()}`)).toBeVisible()
    }
    await page.getByTestId('nsfw').selectOption('blur')
    await expect(page.getByRole('note')).toHaveText('Saved.')
    await page.screenshot({ path: path.join(SCREENSHOTS, 'shell-settings.png') })
  } finally {
    await first.stop()
  }

  const second = await serveApp(first.home)
  try {
    expect(second.token).not.toBe(first.token)
    await page.goto(`${second.url}#/settings`)
    await expect(page.getByTestId('nsfw')).toHaveValue('blur')
  } finally {
    await second.stop()
  }
})

test('requests without the token are refused', async ({ page, request }) => {
  const app = await serveApp()
  try {
    expect((await request.get(`${app.origin}/`)).status()).toBe(401)
    expect((await request.get(`${app.origin}/?token=wrong`)).status()).toBe(401)
    expect((await request.get(`${app.origin}/api/health?token=${app.token}`)).status()).toBe(200)
    // A rebinding attack arrives with a foreign Host header.
    expect(
      (
        await request.get(`${app.origin}/api/health?token=${app.token}`, {
          headers: { Host: 'evil.example:80' },
        })
      ).status(),
    ).toBe(403)

    await page.goto(app.url)
    const outcome = await page.evaluate(async (origin) => {
      const ws = new WebSocket(origin.replace('http', 'ws') + '/ws')
      return await new Promise<string>((resolve) => {
        ws.onopen = () => resolve('open')
        ws.onclose = () => resolve('closed')
      })
    }, app.origin)
    // The page's cookie carries the token, so same-origin sockets open; a socket from another origin must not.
    expect(outcome).toBe('open')
    const other = await page.context().newPage()
    await other.goto('about:blank')
    const foreign = await other.evaluate(async (origin) => {
      const ws = new WebSocket(origin.replace('http', 'ws') + '/ws')
      return await new Promise<string>((resolve) => {
        ws.onopen = () => resolve('open')
        ws.onclose = () => resolve('closed')
      })
    }, app.origin)
    expect(foreign).toBe('closed')
  } finally {
    await app.stop()
  }
})
