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
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
})
