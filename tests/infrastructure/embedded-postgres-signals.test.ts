import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep } from '../../src/application/sleep.js';
import { freePort } from '../../src/infrastructure/postgres/embedded-postgres.js';
import { isRunning, postmasterPid, processWithEmbeddedPostgres, scratchDataDir } from '../support/embedded-postgres.js';
import { childEnv } from '../support/child-env.js';
import { eventually } from '../support/eventually.js';

const dataDirs: string[] = [];

afterEach(async () => {
  for (const dir of dataDirs.splice(0)) {
    // A server left behind by a failing test would keep its port and the data dir busy.
    const pid = await postmasterPid(dir);
    if (pid !== undefined && (await isRunning(pid))) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});

async function dataDir(): Promise<string> {
  const dir = await scratchDataDir('bookable-embedded-signals-');
  dataDirs.push(dir);
  return dir;
}

/**
 * `npm start` on an embedded PostgreSQL under `dataDir`, leading a process group of its own as
 * in a terminal, where Ctrl-C signals the whole foreground group.
 */
async function service(dataDir: string, env: Record<string, string> = {}) {
  const [commandPort, queryPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/infrastructure/main.ts'], {
    // DATABASE_URL unset, or the service would use that database instead of its embedded one.
    env: childEnv(
      {
        DATA_DIR: dataDir,
        COMMAND_PORT: String(commandPort),
        QUERY_PORT: String(queryPort),
        JWT_SECRET: 'signals-secret-signals-secret-signals-secret',
        LOG_LEVEL: 'warn',
        SHED_EVENT_LOOP_DELAY_MS: '0',
        ...env,
      },
      ['DATABASE_URL'],
    ),
    stdio: 'ignore',
    detached: true,
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const ready = () => eventually(() => fetch(`http://127.0.0.1:${queryPort}/health/ready`).then((response) => response.ok), 60_000, 'the service to be ready');
  // A read waiting for a position never reached: in flight until the consistency timeout.
  const heldRead = () =>
    fetch(`http://127.0.0.1:${queryPort}/v1/listings`, { headers: { 'consistency-position': '99999999999.1' } }).then(
      async (response) => ({ status: response.status, type: String((await response.json() as { type?: unknown }).type) }),
      () => ({ status: 'cut', type: '' }),
    );
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return { child, exited, ready, heldRead, kill };
}

describe('the embedded PostgreSQL under a signal', () => {
  it('on Ctrl-C in a process that installs no shutdown of its own (migrate, seed, rebuild, or start-up before it), stops with the process', { timeout: 120_000 }, async () => {
    // given a process that started the embedded server and is busy with something else
    const dir = await dataDir();
    const { child, exited, kill } = await processWithEmbeddedPostgres(dir);
    try {
      const pid = await postmasterPid(dir);

      // when the terminal's Ctrl-C reaches its process group
      process.kill(-(child.pid ?? 0), 'SIGINT');

      // then the process ends as Ctrl-C ends it, and the server with it
      expect(await exited).toEqual({ code: 130, signal: null });
      expect(pid).toBeDefined();
      expect(await postmasterPid(dir)).toBeUndefined();
      expect(await isRunning(pid ?? 0)).toBe(false);
    } finally {
      kill();
    }
  });

  it('on Ctrl-C (SIGINT to the whole process group), keeps serving the reads in flight, which finish as documented, and the process exits 0', { timeout: 120_000 }, async () => {
    // given the service on an embedded database, with a read in flight
    const dir = await dataDir();
    const { child, exited, ready, heldRead, kill } = await service(dir, { QUERY_CONSISTENCY_TIMEOUT_MS: '2000', SHUTDOWN_GRACE_MS: '10000' });
    try {
      await ready();
      const held = heldRead();
      await sleep(300);

      // when the terminal's Ctrl-C reaches its process group
      process.kill(-(child.pid ?? 0), 'SIGINT');

      // then the read ends as a read not caught up ends, not cut by a database shut down under it
      expect(await held).toEqual({ status: 503, type: expect.stringContaining('not-caught-up') as unknown });
      expect(await exited).toBe(0);
      expect(await postmasterPid(dir)).toBeUndefined();
    } finally {
      kill();
    }
  });

  it('on a second SIGTERM during the drain, exits 1 without leaving the embedded PostgreSQL running, so the next start works', { timeout: 180_000 }, async () => {
    // given the service on an embedded database, draining a read in flight
    const dir = await dataDir();
    const first = await service(dir, { QUERY_CONSISTENCY_TIMEOUT_MS: '20000', SHUTDOWN_GRACE_MS: '10000' });
    try {
      await first.ready();
      const pid = await postmasterPid(dir);
      void first.heldRead();
      await sleep(300);

      // when a second SIGTERM follows the first
      first.child.kill('SIGTERM');
      await sleep(20);
      first.child.kill('SIGTERM');

      // then the process gives up on the drain (exit 1), the server stopped with it
      expect(await first.exited).toBe(1);
      expect(pid).toBeDefined();
      expect(await postmasterPid(dir)).toBeUndefined();
      expect(await isRunning(pid ?? 0)).toBe(false);
    } finally {
      first.kill();
    }

    // and a start on the same data dir serves again, and stops cleanly
    const second = await service(dir);
    try {
      await second.ready();
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      second.kill();
    }
  });
});
