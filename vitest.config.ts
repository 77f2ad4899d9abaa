import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['tests/support/global-setup.ts'],
    pool: 'forks',
    // Two cores: more workers only make the PostgreSQL-bound suites contend.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'specs', include: ['tests/**/*.test.ts'], exclude: [...configDefaults.exclude, 'tests/soak/**'] } },
      // The soak keeps both cores busy for a minute: it runs alone, after every other file, so
      // that neither its figures nor the other files' timings suffer from the other.
      { extends: true, test: { name: 'soak', include: ['tests/soak/**/*.test.ts'], sequence: { groupOrder: 1 } } },
    ],
  },
});
