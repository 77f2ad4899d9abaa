import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sleep } from '../../src/application/sleep.js';
import { ensureGeneration } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { generationLockKey } from '../../src/projections/runtime/projection-lock.js';
import { usersProjection } from '../../src/projections/users/users.projection.js';
import { testMasterKeyText } from '../support/personal-data.js';
import { childEnv } from '../support/child-env.js';
import { checkpointsOf, createHarness, eventually, type Harness } from './support/runtime-harness.js';

let harness: Harness;

beforeEach(async () => {
  harness = await createHarness();
});

afterEach(async () => {
  await harness.close();
});

/**
 * `npm run projections:rebuild -- users` on the test database, as a process of its own (`node
 * --import tsx`, so that the process killed at the end is the command itself); what it printed,
 * and how it ended, or `still running` after `withinMs`.
 */
function rebuildCommand() {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/infrastructure/main.ts', 'rebuild', 'users'], {
    env: childEnv({
      DATABASE_URL: harness.url,
      MASTER_KEY: testMasterKeyText,
      LOG_LEVEL: 'silent',
      PROJECTION_MAX_ATTEMPTS: '2',
      PROJECTION_RETRY_DELAY_MS: '10',
      PROJECTION_LOCK_RETRY_MS: '100',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    exit: (withinMs: number) => Promise.race([exited, sleep(withinMs).then(() => 'still running' as const)]),
    kill: () => child.exitCode === null && child.kill('SIGKILL'),
  };
}

/** Sessions of this database that hold an advisory lock (projectors' lock sessions hold two each). */
async function lockHolders(): Promise<number> {
  const { rows } = await harness.pool.query<{ n: number }>(
    `select count(distinct l.pid)::int as n from pg_locks l join pg_database d on d.oid = l.database
      where l.locktype = 'advisory' and d.datname = current_database()`,
  );
  return rows[0]?.n ?? 0;
}

describe('the rebuild command', () => {
  it('exits 1 with the failure when the rebuild fails, and leaves no lock behind', async () => {
    // An event the users read model cannot decode, which the live generation has already passed.
    const broken = await harness.store.appendToStream(`user-${randomUUID()}`, [{ id: randomUUID(), type: 'UserRegistered', data: {}, metadata: {} }]);
    await ensureGeneration(harness.db, 'users', usersProjection.version);
    await harness.pool.query(`update projection_checkpoints set position_commit = $1, position_prepare = $2 where name = 'users'`, [
      broken.position.commit.toString(),
      broken.position.prepare.toString(),
    ]);

    const command = rebuildCommand();
    try {
      expect(await command.exit(20_000)).toBe(1);
      expect(command.stdout()).toContain('rebuilding users as generation 2');
      expect(command.stderr()).toContain('rebuild of users as generation 2 failed at event');
      // An outcome the command expects: its line, no stack trace.
      expect(command.stderr()).not.toMatch(/\n\s+at /);
      expect((await checkpointsOf(harness.db, 'users')).find((row) => row.generation === 2)?.status).toBe('failed');
      await eventually(async () => (await lockHolders()) === 0, 5000, 'the locks to be released');
    } finally {
      command.kill();
    }
  });

  it('exits 1 when the copy it waits for is retired before it goes live', async () => {
    // A read model built once already: the command asks for a second copy.
    await ensureGeneration(harness.db, 'users', usersProjection.version);
    // Generation 2 held elsewhere, so that it stays pending until the test retires it.
    const elsewhere = new pg.Client(harness.url);
    await elsewhere.connect();
    await elsewhere.query('select pg_advisory_lock($1::bigint)', [generationLockKey('users', 2).toString()]);
    const command = rebuildCommand();
    try {
      await eventually(async () => command.stdout().includes('rebuilding users as generation 2'), 20_000, 'the rebuild to be requested');
      await harness.pool.query(`update projection_checkpoints set status = 'retired' where name = 'users' and generation = 2`);

      expect(await command.exit(10_000)).toBe(1);
      expect(command.stderr()).toContain('rebuild of users as generation 2 was retired before it went live');
      expect(command.stderr()).not.toMatch(/\n\s+at /);
    } finally {
      command.kill();
      await elsewhere.end();
    }
  });
});
