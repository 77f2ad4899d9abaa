import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/infrastructure/config/config.js';
import { createLogger } from '../../src/infrastructure/logging/logger.js';
import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { openDatabase, openStorage } from '../../src/infrastructure/storage.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { childEnv } from '../support/child-env.js';
import { eventually } from '../support/eventually.js';

/** Far longer than a failed start takes (a few seconds, most of it loading TypeScript); a hang never ends. */
const exitDeadlineMs = 20_000;
const logger = createLogger({ level: 'silent' });

type Outcome = { exited: true; code: number | null; output: string } | { exited: false; output: string };

/** `npm start -- --role <role>` with these settings; killed if still running at the deadline. */
async function startRole(role: string, env: Record<string, string>): Promise<Outcome> {
  // Only what the test names: a secret in the runner's environment would hide the one missing.
  const secrets = ['JWT_SECRET', 'MASTER_KEY', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET'];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/infrastructure/main.ts', '--role', role], {
    env: childEnv({ LOG_LEVEL: 'warn', COMMAND_PORT: '0', QUERY_PORT: '0', PROJECTOR_PORT: '0', ...env }, secrets),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<Outcome>((resolve) => {
      child.on('exit', (code) => resolve({ exited: true, code, output }));
      timer = setTimeout(() => resolve({ exited: false, output }), exitDeadlineMs);
    });
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

async function temporaryDataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bookable-start-up-'));
  // As root, the embedded PostgreSQL runs as the `postgres` user, which must be able to enter it.
  await chmod(dir, 0o755);
  return dir;
}

const masterKey = randomBytes(32).toString('base64');
const dataDirs: string[] = [];
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database.drop();
});

afterEach(async () => {
  await Promise.all(dataDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function dataDir(): Promise<string> {
  const dir = await temporaryDataDir();
  dataDirs.push(dir);
  return dir;
}

describe('a start that fails', () => {
  it('of the projector role in production without STRIPE_SECRET_KEY exits 1 with the message, leaving no loop running', { timeout: 40_000 }, async () => {
    // given production settings but for the Stripe key, which only the process managers need
    const env = { NODE_ENV: 'production', DATABASE_URL: database.url, DATA_DIR: await dataDir(), MASTER_KEY: masterKey };

    // when the projector role starts
    const outcome = await startRole('projector', env);

    // then it stops at once, saying why
    expect(outcome).toMatchObject({ exited: true, code: 1 });
    expect(outcome.output).toContain('STRIPE_SECRET_KEY: required in production');
  });

  it('of the query role in production without JWT_SECRET exits 1 with the message, leaving no LISTEN connection open', { timeout: 40_000 }, async () => {
    // given production settings but for the signing secret
    const env = { NODE_ENV: 'production', DATABASE_URL: database.url, DATA_DIR: await dataDir(), MASTER_KEY: masterKey };

    // when the query role starts
    const outcome = await startRole('query', env);

    // then it stops at once, saying why
    expect(outcome).toMatchObject({ exited: true, code: 1 });
    expect(outcome.output).toContain('JWT_SECRET: is required when NODE_ENV=production');
  });

  it('of the projector role on the PostgreSQL event store, on a database whose checkpoints come from EventStoreDB, exits 1 naming both logs and what to do', { timeout: 40_000 }, async () => {
    // given a database a deployment on EventStoreDB migrated and recorded as its log's
    const used = await createTestDatabase();
    try {
      const pool = createPool(used.url, 1);
      try {
        await migrateToLatest(pool);
        await pool.query(`INSERT INTO event_log_identity (kind) VALUES ('eventstoredb')`);
      } finally {
        await pool.end();
      }

      // when the projector role starts on it without EVENTSTORE_URL (the PostgreSQL event store)
      const outcome = await startRole('projector', { NODE_ENV: 'test', DATABASE_URL: used.url, DATA_DIR: await dataDir(), MASTER_KEY: masterKey });

      // then it stops at once, before any projector resumes from a position of the other log
      expect(outcome).toMatchObject({ exited: true, code: 1 });
      expect(outcome.output).toContain("taken from the eventstoredb log (EventStoreDB, EVENTSTORE_URL set), but this process's event store is postgres");
      expect(outcome.output).toContain('DELETE FROM projection_checkpoints; DELETE FROM process_checkpoints; DELETE FROM event_log_identity;');
    } finally {
      await used.drop();
    }
  });

  it('to read the master key closes the pool it opened, then rejects', async () => {
    // given a damaged DATA_DIR/master-key
    const dir = await dataDir();
    await writeFile(path.join(dir, 'master-key'), 'not a key\n');
    const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: database.url, DATA_DIR: dir });
    const applicationName = `start-up-failure-${randomBytes(4).toString('hex')}`;

    // when storage opens (migrating first, through the pool)
    await expect(openStorage(config, logger, applicationName)).rejects.toThrow(/master-key/);

    // then none of its connections is left (an idle one lingers 10 s, keeping the process alive)
    const observer = new pg.Client(database.url);
    await observer.connect();
    try {
      const connections = async () => {
        const { rows } = await observer.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
        return rows[0]?.n;
      };
      await eventually(async () => (await connections()) === 0, 3_000, 'the pool to close');
    } finally {
      await observer.end();
    }
  });

  // Where /proc is missing a live pid in the lock file is taken for a server to use (see serverOnDataDir).
  it.skipIf(process.platform !== 'linux')('of the embedded PostgreSQL says why: another process holds its lock file', { timeout: 40_000 }, async () => {
    // given a data dir whose lock file names a live process that is no server of it (a pid given
    // to another process since the server's crash)
    const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: await dataDir() });
    await (await openDatabase(config, logger)).stop();
    const dir = path.join(config.DATA_DIR, 'postgres');
    // The server's user's: PostgreSQL takes another user's process for no server of its own.
    const { uid, gid } = await stat(dir);
    const other = spawn('sleep', ['60'], { stdio: 'ignore', uid, gid });
    try {
      await writeFile(path.join(dir, 'postmaster.pid'), `${other.pid}\n${dir}\n0\n5432\n\n127.0.0.1\n0 0\nready\n`);

      // when the embedded PostgreSQL starts on it
      const failure = await openDatabase(config, logger).then(
        async (unexpected) => unexpected.stop(),
        (error: unknown) => error,
      );

      // then the error carries PostgreSQL's own reason (it was `undefined`)
      expect(failure).toMatchObject({ message: expect.stringMatching(/embedded PostgreSQL .* did not start:[\s\S]*lock file "postmaster.pid" already exists/) });
    } finally {
      other.kill('SIGKILL');
    }
  });
});
