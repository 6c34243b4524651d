import { defineConfig } from '@playwright/test'

const executablePath = process.env.ATELIER_CHROMIUM ?? '/usr/bin/chromium'

export default defineConfig({
  testDir: 'e2e/specs',
  timeout: 120_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [['list']],
  use: {
    headless: true,
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath,
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-dev-shm-usage',
      ],
    },
  },
})
