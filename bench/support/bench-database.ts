import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/infrastructure/postgres/embedded-postgres.js';

/**
 * The database a benchmark runs against: `DATABASE_URL` when set; else a throwaway database on
 * the server of `TEST_DATABASE_URL` (a maintenance database, as for the tests); else a throwaway
 * embedded PostgreSQL. `stop()` removes what was made.
 */
export async function benchDatabase(name: string): Promise<{ url: string; stop(): Promise<void> }> {
  const external = process.env.DATABASE_URL;
  if (external) return { url: external, stop: async () => undefined };
  const testServer = process.env.TEST_DATABASE_URL;
  if (testServer) return throwawayDatabase(testServer, `bench_${name}_${randomBytes(4).toString('hex')}`);
  const dir = await mkdtemp(path.join(tmpdir(), `bench-${name}-`));
  // As root, PostgreSQL runs as the `postgres` user, which must be able to enter the directory.
  await chmod(dir, 0o755);
  const server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), persistent: false });
  const admin = new pg.Client(server.adminUrl);
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  return {
    url: server.urlFor('bench'),
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Another throwaway database on the server of `url` (which must be allowed to create one), for
 * figures that share the server but must not share the tables.
 */
export function siblingDatabase(url: string, name: string): Promise<{ url: string; stop(): Promise<void> }> {
  return throwawayDatabase(url, `bench_${name}_${randomBytes(4).toString('hex')}`);
}

async function throwawayDatabase(adminUrl: string, name: string): Promise<{ url: string; stop(): Promise<void> }> {
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
  await onServer(`CREATE DATABASE ${database}`);
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return { url: url.toString(), stop: () => onServer(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`) };
}

/** The `p`-th percentile (0–100) of `samples`, in their unit. */
export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}
