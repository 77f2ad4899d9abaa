import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/infrastructure/postgres/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server's maintenance database; each test file creates its own database. */
    adminDatabaseUrl: string;
  }
}

/**
 * One PostgreSQL server per test run: `TEST_DATABASE_URL` when set, else an embedded one in a
 * temporary directory that is deleted when the run ends.
 */
export default async function setup(project: TestProject) {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    project.provide('adminDatabaseUrl', external);
    return;
  }
  const runDir = await mkdtemp(path.join(tmpdir(), 'bookings-test-'));
  // As root, PostgreSQL runs as the `postgres` user, which must be able to enter the directory.
  await chmod(runDir, 0o755);
  const dataDir = path.join(runDir, 'pg');
  const server = await startEmbeddedPostgres({ dataDir, persistent: false });
  project.provide('adminDatabaseUrl', server.adminUrl);
  return () => server.stop();
}
