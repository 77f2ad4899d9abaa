import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/infrastructure/postgres/embedded-postgres.js';

export type BenchDatabase = { readonly url: string; stop(): Promise<void> };

/** Whoever may stop the benchmark early (a signal) and must remove the database then: told before it is made. */
export type OnStop = (stop: () => Promise<void>) => void;

/**
 * The database a benchmark runs against: `DATABASE_URL` when set; else a throwaway database on
 * the server of `TEST_DATABASE_URL` (a maintenance database, as for the tests); else a throwaway
 * embedded PostgreSQL. `stop()` removes what was made; `onStop` is handed the same `stop` before
 * anything is made, so that a caller stopped meanwhile removes it all the same (its `stop` waits
 * for the making to end, either way).
 */
export async function benchDatabase(name: string, onStop: OnStop = () => undefined): Promise<BenchDatabase> {
  const external = process.env.DATABASE_URL;
  if (external) return { url: external, stop: async () => undefined };
  const testServer = process.env.TEST_DATABASE_URL;
  if (testServer) return throwawayDatabase(testServer, `bench_${name}_${randomBytes(4).toString('hex')}`, onStop);
  return embeddedDatabase(name, onStop);
}

async function embeddedDatabase(name: string, onStop: OnStop): Promise<BenchDatabase> {
  const dir = await mkdtemp(path.join(tmpdir(), `bench-${name}-`));
  const starting = (async () => {
    // As root, PostgreSQL runs as the `postgres` user, which must be able to enter the directory.
    await chmod(dir, 0o755);
    return startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), persistent: false });
  })();
  const stop = once(async () => {
    const server = await starting.catch(() => undefined);
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  onStop(stop);
  const server = await starting;
  const admin = new pg.Client(server.adminUrl);
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  return { url: server.urlFor('bench'), stop };
}

/**
 * Another throwaway database on the server of `url` (which must be allowed to create one), for
 * figures that share the server but must not share the tables.
 */
export function siblingDatabase(url: string, name: string): Promise<BenchDatabase> {
  return throwawayDatabase(url, `bench_${name}_${randomBytes(4).toString('hex')}`);
}

async function throwawayDatabase(adminUrl: string, name: string, onStop: OnStop = () => undefined): Promise<BenchDatabase> {
  // Bench names have hyphens (`command-latency`), which an unquoted identifier cannot hold.
  const database = name.replace(/[^a-z0-9_]/g, '_');
  const onServer = async (statement: string) => {
    const admin = new pg.Client(adminUrl);
    await admin.connect();
    try {
      await admin.query(statement);
    } finally {
      await admin.end();
    }
  };
  const creating = onServer(`CREATE DATABASE ${database}`);
  // Dropped once the CREATE has ended, whichever way: a DROP that ran before it committed would
  // find nothing, and the database would appear afterwards all the same.
  const stop = once(async () => {
    await creating.catch(() => undefined);
    await onServer(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  });
  onStop(stop);
  await creating;
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return { url: url.toString(), stop };
}

/** `run` the first time; the same promise every time after (a stop asked for twice: the clean-up and the caller's own). */
function once(run: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= run());
}

/** The `p`-th percentile (0–100) of `samples`, in their unit. */
export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}
