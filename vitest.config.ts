import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests mount overlays, start registries and run runc: files run in parallel processes,
    // each test file owns its own temporary root and registry port.
    pool: 'forks',
    fileParallelism: true,
  },
});
