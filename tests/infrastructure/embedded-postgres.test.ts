import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../src/application/sleep.js';
import { openAuditCliStorage } from '../../src/infrastructure/audit/audit-cli-storage.js';
import { failureReport } from '../../src/infrastructure/config/command-line.js';
import { loadConfig } from '../../src/infrastructure/config/config.js';
import { createLogger } from '../../src/infrastructure/logging/logger.js';
import { startEmbeddedPostgres } from '../../src/infrastructure/postgres/embedded-postgres.js';
import { openDatabase, openStorage } from '../../src/infrastructure/storage.js';
import { childEnv } from '../support/child-env.js';
import { testMasterKeyText } from '../support/personal-data.js';
import { isRunning, postmasterPid, processWithEmbeddedPostgres, scratchDataDir } from '../support/embedded-postgres.js';

const logger = createLogger({ level: 'silent' });

// One DATA_DIR for the file, initialised once (initdb is most of a first start); each test
// leaves its server stopped.
let dataDir: string;
let postgresDir: string;

beforeAll(async () => {
  dataDir = await scratchDataDir('bookable-embedded-');
  postgresDir = path.join(dataDir, 'postgres');
});

afterEach(async () => {
  // A server left behind by a failing test would hold the data dir for the next one.
  const pid = await postmasterPid(dataDir);
  if (pid !== undefined && (await isRunning(pid))) process.kill(pid, 'SIGKILL');
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function selectOne(url: string): Promise<unknown> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one;
  } finally {
    await client.end();
  }
}

/** A command-line tool run on `DATA_DIR` alone, as from a shell with `DATABASE_URL` unset: its exit code and output. */
async function cliOnDataDir(script: string, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = childEnv({ DATA_DIR: dataDir, MASTER_KEY: testMasterKeyText, LOG_LEVEL: 'silent' }, ['DATABASE_URL']);
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && typeof error.code === 'number' && 'stdout' in error && 'stderr' in error)) throw error;
    return { code: error.code, stdout: String(error.stdout), stderr: String(error.stderr) };
  }
}

/** `promise`'s outcome, or 'still pending' if it has none within `ms`. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T | 'still pending'> {
  return Promise.race([promise, sleep(ms).then(() => 'still pending' as const)]);
}

describe('the embedded PostgreSQL', () => {
  it('on EMBEDDED_POSTGRES_PORT=0 (which the configuration accepts as any free port) listens on a free port', { timeout: 60_000 }, async () => {
    // given port 0, as the configuration documents it
    expect(loadConfig({ EMBEDDED_POSTGRES_PORT: '0' }).EMBEDDED_POSTGRES_PORT).toBe(0);

    // when the server starts with it
    const server = await startEmbeddedPostgres({ dataDir: postgresDir, port: 0, persistent: true });
    try {
      // then it serves on a port of the system's choosing
      expect(new URL(server.adminUrl).port).not.toMatch(/^0?$/);
      expect(await selectOne(server.adminUrl)).toBe(1);
    } finally {
      await server.stop();
    }
  });

  it('once it has died (OOM killer, a crash), stops at once, so a failing CLI reaches its error; and the next start serves', { timeout: 60_000 }, async () => {
    // given a server that died under the process that started it
    const server = await startEmbeddedPostgres({ dataDir: postgresDir, persistent: true });
    const pid = await postmasterPid(dataDir);
    process.kill(pid ?? 0, 'SIGKILL');
    await sleep(200);

    // when the process stops it
    const outcome = await within(5_000, server.stop().then(() => 'stopped'));

    // then the stop returns (it waited forever for an exit already gone)
    expect(outcome).toBe('stopped');
    // and a start on the lock file it left behind (a dead pid in it) serves
    const next = await startEmbeddedPostgres({ dataDir: postgresDir, persistent: true });
    try {
      expect(await selectOne(next.adminUrl)).toBe(1);
    } finally {
      await next.stop();
    }
  });

  it('left running by a process that crashed (SIGKILL, heap OOM) is stopped, and the next start serves', { timeout: 90_000 }, async () => {
    // given a server orphaned by the crash of the process that started it
    const crashed = await processWithEmbeddedPostgres(dataDir);
    const orphan = await postmasterPid(dataDir);
    crashed.child.kill('SIGKILL');
    await crashed.exited;
    expect(await isRunning(orphan ?? 0)).toBe(true);

    // when the next process starts on the same data dir
    const server = await startEmbeddedPostgres({ dataDir: postgresDir, persistent: true });
    try {
      // then it serves from a server of its own, the orphan gone (it failed on the orphan's lock file)
      expect(await selectOne(server.adminUrl)).toBe(1);
      expect(await postmasterPid(dataDir)).not.toBe(orphan);
      expect(await isRunning(orphan ?? 0)).toBe(false);
    } finally {
      await server.stop();
    }
  });

  it('served by a running process (`npm start`) is used by a second one on the same DATA_DIR (`npm run seed`), which leaves it serving when it stops', { timeout: 60_000 }, async () => {
    // given the embedded PostgreSQL of a process running on DATA_DIR
    const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir });
    const running = await openDatabase(config, logger);
    try {
      const pid = await postmasterPid(dataDir);

      // when a second one opens the database on the same DATA_DIR, then stops
      const second = await openDatabase(config, logger, { share: true });
      const answered = await selectOne(second.url);
      await second.stop();

      // then it worked on the running server (it failed on the lock file), which still serves
      expect(answered).toBe(1);
      expect(second.url).toBe(running.url);
      expect(await postmasterPid(dataDir)).toBe(pid);
      expect(await selectOne(running.url)).toBe(1);
    } finally {
      await running.stop();
    }
  });

  it('never takes a live server of another data dir for its own: a stale lock file naming its pid (power loss, the pid reused) neither stops it nor hands it out', { timeout: 60_000 }, async () => {
    // given a server running on one data dir, and another dir whose lock file, left by a power
    // loss, names the pid that server has since been given
    const running = await startEmbeddedPostgres({ dataDir: postgresDir, persistent: true });
    const other = await scratchDataDir('bookable-embedded-other-');
    try {
      const otherDir = path.join(other, 'postgres');
      const lockFile = (await readFile(path.join(postgresDir, 'postmaster.pid'), 'utf8')).split('\n');
      lockFile[1] = otherDir;
      await mkdir(otherDir, { recursive: true });
      await writeFile(path.join(otherDir, 'postmaster.pid'), lockFile.join('\n'));

      // when a CLI starts on the other dir
      const outcome = await startEmbeddedPostgres({ dataDir: otherDir, persistent: true, share: true }).then(
        async (started) => {
          await started.stop();
          return started.adminUrl;
        },
        () => 'failed',
      );

      // then it got no connection to the first server (it was "shared"), which still serves
      expect(outcome).not.toBe(running.adminUrl);
      expect(await selectOne(running.adminUrl)).toBe(1);
    } finally {
      await running.stop();
      await rm(other, { recursive: true, force: true });
    }
  });

  it('started by a live service that is no `node` process (process.title, pm2) is used by a CLI (`npm run seed`), not stopped as an orphan', { timeout: 60_000 }, async () => {
    // given the server of a running service renamed by its process.title
    const service = await processWithEmbeddedPostgres(dataDir, { title: 'bookable-api' });
    try {
      const pid = await postmasterPid(dataDir);

      // when a CLI starts on the same data dir
      const cli = await startEmbeddedPostgres({ dataDir: postgresDir, persistent: true, share: true });
      await cli.stop();

      // then it used that server, which still runs (it was stopped, the service's database gone)
      expect(cli.shared).toBe(true);
      expect(await postmasterPid(dataDir)).toBe(pid);
      expect(await isRunning(pid ?? 0)).toBe(true);
    } finally {
      // Stops its server too (SIGKILL would leave it to the next test).
      service.child.kill('SIGTERM');
      await service.exited;
    }
  });

  it('served by another live process is not shared by `npm start`, which says so and leaves it running', { timeout: 60_000 }, async () => {
    // given a server a CLI (`npm run seed`) runs on the data dir
    const cli = await startEmbeddedPostgres({ dataDir: postgresDir, persistent: true });
    try {
      // when the service starts on the same data dir
      const failure = await startEmbeddedPostgres({ dataDir: postgresDir, persistent: true }).then(
        async (unexpected) => unexpected.stop(),
        (error: unknown) => error,
      );

      // then it fails, naming why (it used the CLI's server, and lost its database when the CLI ended)
      expect(failure).toMatchObject({ message: expect.stringMatching(/another process runs the embedded PostgreSQL on DATA_DIR/) });
      expect(await selectOne(cli.adminUrl)).toBe(1);
    } finally {
      await cli.stop();
    }
  });

  it('served by `npm start` is read by the audit tools beside it (`npm run audit:verify`, `npm run replay`), which leave it serving', { timeout: 90_000 }, async () => {
    // given the service's storage on DATA_DIR, opened as `npm start` opens it (its own server, not shared)
    const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, MASTER_KEY: testMasterKeyText });
    const service = await openStorage(config, logger, 'bookable all', { claimEventLog: 'claim' });
    try {
      const pid = await postmasterPid(dataDir);

      // when the audit storage opens on the same DATA_DIR, reads, and closes
      const audit = await openAuditCliStorage(config);
      const counted = await audit.pool.query<{ events: string }>('SELECT count(*) AS events FROM events');
      await audit.close();
      // and the audit tools run from a shell on it
      const verify = await cliOnDataDir('src/infrastructure/audit/audit-verify.cli.ts');
      const stream = 'listing-00000000-0000-4000-8000-000000000000';
      const replay = await cliOnDataDir('src/infrastructure/audit/replay.cli.ts', ['--stream', stream]);

      // then they read through the service's server (they refused: "another process runs the
      // embedded PostgreSQL on DATA_DIR", exit 3 and 2), which still serves the service
      expect(counted.rows[0]?.events).toBe('0');
      expect(verify).toMatchObject({ code: 0, stdout: expect.stringContaining('0 events in 0 streams checked; 0 broken') });
      expect(replay).toMatchObject({ code: 1, stderr: `${stream}: no-stream\n` });
      expect(await postmasterPid(dataDir)).toBe(pid);
      expect(await isRunning(pid ?? 0)).toBe(true);
      expect((await service.pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one).toBe(1);
    } finally {
      await service.stop();
    }
  });

  it('refused to `npm start` beside a CLI running its own server is one line, with no stack trace', { timeout: 60_000 }, async () => {
    // given a server a CLI (`npm run seed` alone) runs on DATA_DIR
    const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir });
    const cli = await openDatabase(config, logger, { share: true });
    try {
      // when the service opens the database on the same DATA_DIR
      const failure = await openDatabase(config, logger).then(
        async (unexpected) => unexpected.stop(),
        (error: unknown) => error,
      );

      // then its report is the refusal alone, in one line
      const { text } = failureReport(failure, { failedCode: 1, databaseUrl: undefined });
      expect(text).toMatch(/^another process runs the embedded PostgreSQL on DATA_DIR \(.*\): stop it, or give this one a DATA_DIR of its own$/);
      expect(await selectOne(cli.url)).toBe(1);
    } finally {
      await cli.stop();
    }
  });
});
