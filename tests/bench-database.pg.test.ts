import pg from 'pg';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { benchDatabase } from '../bench/support/bench-database.js';

// A benchmark's throwaway database, on the test run's PostgreSQL server: whoever stops the
// benchmark (a signal) removes it, even while it is still being made.

const adminUrl = inject('adminDatabaseUrl');
type Made = { url: string; stop(): Promise<void> };
/** Every database a test asked for, dropped after it whatever it found. */
const made: Promise<Made>[] = [];

afterEach(async () => {
  for (const database of made.splice(0)) await (await database).stop();
  vi.unstubAllEnvs();
});

/** A throwaway database on the run's server, as a bench run with `TEST_DATABASE_URL` makes one. */
function throwaway(cleanUp?: (stop: () => Promise<void>) => void): Promise<Made> {
  vi.stubEnv('DATABASE_URL', '');
  vi.stubEnv('TEST_DATABASE_URL', adminUrl);
  const database = benchDatabase('clean-up-spec', cleanUp);
  made.push(database);
  return database;
}

async function exists(url: string): Promise<boolean> {
  const admin = new pg.Client(adminUrl);
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from pg_database where datname = $1', [new URL(url).pathname.slice(1)]);
    return rows[0]?.n === 1;
  } finally {
    await admin.end();
  }
}

describe('benchDatabase on TEST_DATABASE_URL\'s server', () => {
  it('given a throwaway database made, then it exists until its stop drops it', async () => {
    const database = await throwaway();

    expect(await exists(database.url)).toBe(true);
    await database.stop();
    expect(await exists(database.url)).toBe(false);
  });

  it('given the caller\'s clean-up run while CREATE DATABASE is under way (a SIGTERM then), then the database is dropped all the same, once made', async () => {
    let cleanUp: Promise<void> | undefined;
    const making = throwaway((stop) => {
      cleanUp = stop();
    });

    expect(cleanUp).toBeDefined();
    await cleanUp;
    const database = await making;

    expect(await exists(database.url)).toBe(false);
  });
});
