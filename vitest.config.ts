import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: [
      'main/**/*.test.ts',
      'scripts/**/*.test.ts',
      'preload/**/*.test.ts',
      'renderer/**/*.test.ts',
      'bench/**/*.test.ts',
    ],
    environment: 'node',
    // Seeded tiny models (SD 1.5, SDXL, LoRA, upscaler, IP-Adapter), written once per run and cached.
    globalSetup: ['bench/fixtures/tiny-models.setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
})
