import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPosition } from '../../src/application/ports/position.js';
import { sleep } from '../../src/application/sleep.js';
import { createKysely, createPool } from '../../src/infrastructure/postgres/database.js';
import { eventCountsProjection, readEventCounts } from '../../src/projections/event-counts/event-counts.projection.js';
import { requestRebuild } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { readSchema } from '../../src/projections/runtime/projection.js';
import type { ProjectionLogger } from '../../src/projections/runtime/projector.js';
import { checkpointChannel, waitForPosition, type CheckpointNotifications } from '../../src/projections/runtime/wait-for-position.js';
import { activeCheckpoint, appendEvents, countsInLog, createHarness, createRuntime, eventually, onlyPrefix, type Harness } from './support/runtime-harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness.close();
});

/** Messages logged, with their fields, for specs that check what a projector went through. */
function recordingLogger(): { readonly logger: ProjectionLogger; readonly lines: { fields: Record<string, unknown>; message: string }[] } {
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  const record = (fields: object, message: string) => void lines.push({ fields: { ...fields }, message });
  return { logger: { info: record, warn: record, error: record }, lines };
}

describe('a rebuild swapping in while a read of the old views runs', () => {
  it('holds back neither other subscribers nor new reads, and swaps in once the read has ended', async () => {
    const name = 'swap_reader';
    const bystander = 'swap_bystander';
    const { last } = await appendEvents(harness.store, { streams: 2, perStream: 20, prefix: name, type: 'SwapRead' });
    const { logger, lines } = recordingLogger();
    harness.startRuntime([eventCountsProjection({ name, eventTypes: ['SwapRead'] }), eventCountsProjection({ name: bystander, eventTypes: ['Bystander'] })], { logger });
    await eventually(() => harness.reached(name, last), 10_000, 'the first generation');
    await eventually(() => harness.reached(bystander, last), 10_000, 'the bystander');

    const reader = new pg.Client(harness.url);
    await reader.connect();
    let reading = true;
    const longRead = reader.query(`select pg_sleep(4), count(*) from ${readSchema(name)}.stream_event_counts`).finally(() => (reading = false));
    try {
      await sleep(200);
      await requestRebuild(harness.db, name);
      // Long enough for the rebuild (40 events) to catch up and try its swap against the read.
      await sleep(1000);

      const { last: fresh } = await appendEvents(harness.store, { streams: 1, perStream: 1, prefix: bystander, type: 'Bystander' });
      await eventually(() => harness.reached(bystander, fresh), 2000, 'the bystander to see a new event while the read runs');
      const started = Date.now();
      for (let read = 0; read < 4; read += 1) await readEventCounts(harness.db, name);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(reading).toBe(true);
      // The rebuild did try, and gave way to the read.
      expect((await activeCheckpoint(harness.db, name))?.generation).toBe(1);
      expect(lines.some((line) => line.fields['projection'] === name && line.message.startsWith('Projection swap found its views or the live generation busy'))).toBe(true);
    } finally {
      await longRead;
      await reader.end();
    }

    await eventually(async () => (await activeCheckpoint(harness.db, name))?.generation === 2, 10_000, 'the rebuild to swap in');
    const expected = onlyPrefix(await countsInLog(harness.store, ['SwapRead'], last), name);
    expect(onlyPrefix(await readEventCounts(harness.db, name), name)).toEqual(expected);
  });
});

/**
 * A kysely on its own pool that runs the COMMIT of the first transaction to drop `schema` and
 * then fails it for the caller as a dropped connection would, once armed: the answer to a swap
 * lost, though the swap went through.
 */
function losingSwapAnswer(url: string, schema: string): { readonly db: Kysely<unknown>; arm(): void; lost(): number } {
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  const dropping = new RegExp(`drop schema if exists "${schema}"`, 'i');
  let armed = false;
  let lost = 0;
  const dialect = new PostgresDialect({
    pool: {
      async connect() {
        const client = await pool.connect();
        let swapping = false;
        const query = async (statement: unknown, parameters?: unknown[]): Promise<unknown> => {
          const result = await client.query(statement as string, parameters);
          if (typeof statement !== 'string') return result;
          if (armed && dropping.test(statement)) swapping = true;
          if (swapping && /^commit$/i.test(statement)) {
            armed = false;
            swapping = false;
            lost += 1;
            throw new Error('Connection terminated unexpectedly');
          }
          if (/^(commit|rollback)$/i.test(statement)) swapping = false;
          return result;
        };
        return new Proxy(client, { get: (target, property) => (property === 'query' ? query : Reflect.get(target, property, target)) });
      },
      end: () => pool.end(),
    },
  });
  return { db: new Kysely<unknown>({ dialect }), arm: () => (armed = true), lost: () => lost };
}

describe('a swap whose COMMIT answer was lost', () => {
  it('goes on as the active generation, announcing its commits, without starting over', async () => {
    const name = 'swap_lost';
    const { last } = await appendEvents(harness.store, { streams: 2, perStream: 20, prefix: name, type: 'SwapLost' });
    const losing = losingSwapAnswer(harness.url, readSchema(name));
    const { logger, lines } = recordingLogger();
    const runtime = createRuntime({ url: harness.url, db: losing.db, revealed: harness.revealed }, [eventCountsProjection({ name, eventTypes: ['SwapLost'] })], { logger });
    runtime.start();
    const listener = new pg.Client(harness.url);
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (message) => heard.push(message.payload ?? ''));
    await listener.query(`listen ${checkpointChannel}`);
    try {
      await eventually(() => harness.reached(name, last), 10_000, 'the first generation');
      losing.arm();
      await requestRebuild(harness.db, name);
      await eventually(async () => (await activeCheckpoint(harness.db, name))?.generation === 2, 10_000, 'the rebuild to swap in');
      expect(losing.lost()).toBe(1);

      const { last: after } = await appendEvents(harness.store, { streams: 2, perStream: 3, prefix: name, type: 'SwapLost' });
      await eventually(async () => heard.includes(`${name}:${formatPosition(after)}`), 5000, 'the new active generation to announce the new events');
      // Give a projector that took itself for a rebuild its next tail check, where it would start over.
      await sleep(500);
      const acquired = lines.filter((line) => line.message === 'Projection lock acquired' && line.fields['generation'] === 2);
      expect(acquired).toHaveLength(1);
      expect((await activeCheckpoint(harness.db, name))?.generation).toBe(2);
      const expected = onlyPrefix(await countsInLog(harness.store, ['SwapLost'], after), name);
      expect(onlyPrefix(await readEventCounts(harness.db, name), name)).toEqual(expected);
    } finally {
      await listener.end();
      await runtime.stop();
      await losing.db.destroy();
    }
  });
});

describe('a consistency wait on a pool with no connection to spare', () => {
  it('answers false when its time is up, not when a connection comes free', async () => {
    const pool = createPool(harness.url, 1);
    const db = createKysely<unknown>(pool);
    const notifications: CheckpointNotifications = { subscribe: () => () => undefined, epoch: 1 };
    const held = await pool.connect();
    try {
      const started = Date.now();
      const waited = waitForPosition({ db, notifications, projections: ['swap_reader'], position: { commit: 2n ** 62n, prepare: 0n }, timeoutMs: 300 });
      const answer = await Promise.race([waited, sleep(2000).then(() => 'still waiting' as const)]);
      expect(answer).toBe(false);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      held.release();
      await db.destroy();
    }
  });
});
