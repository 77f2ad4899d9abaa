import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSkipped } from '../../src/infrastructure/seed/seed-demo.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { childEnv } from '../support/child-env.js';
import { testMasterKeyText } from '../support/personal-data.js';

const run = promisify(execFile);

describe('which runs of npm run seed add the demo data', () => {
  it.each([
    [undefined, 'development', undefined],
    [undefined, 'test', undefined],
    [undefined, 'production', 'demo data skipped: NODE_ENV=production (add it with --demo)'],
    [true, 'production', undefined],
    [false, 'development', 'demo data skipped (--no-demo)'],
    [false, 'production', 'demo data skipped (--no-demo)'],
  ] as const)('--demo %s, NODE_ENV=%s: %s', (demo, nodeEnv, skipped) => {
    expect(demoSkipped(demo, nodeEnv)).toBe(skipped);
  });
});

describe('npm run seed in production', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  it('creates the admin and the auditor and says it left the demo data out; nothing else reaches the log', async () => {
    const env = childEnv({
      NODE_ENV: 'production',
      DATABASE_URL: database.url,
      JWT_SECRET: 'j'.repeat(40),
      MASTER_KEY: testMasterKeyText,
      STRIPE_SECRET_KEY: 'sk_test_unused',
      STRIPE_WEBHOOK_SECRET: 'whsec_unused',
      ADMIN_PASSWORD: 'correct horse battery staple',
      LOG_LEVEL: 'silent',
    });
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/infrastructure/main.ts', 'seed'], { timeout: 30_000, env });

    expect(stdout).toMatch(/^created ADMIN admin@bookable.local/m);
    expect(stdout).toContain('demo data skipped: NODE_ENV=production (add it with --demo)');
    const client = new pg.Client(database.url);
    await client.connect();
    try {
      const { rows } = await client.query<{ event_type: string; count: number }>('SELECT event_type, count(*)::int AS count FROM events GROUP BY event_type');
      expect(rows).toEqual([{ event_type: 'UserRegistered', count: 2 }]);
    } finally {
      await client.end();
    }
  });
});
