import { defineConfig } from 'vitest/config';

/** `npm run soak`: the long versions of issue 8's fault scenarios (the default suite runs short ones). */
export default defineConfig({
  test: {
    include: ['test/soak/**/*.soak.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
