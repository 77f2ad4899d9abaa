import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventCountsProjection, readEventCounts } from '../../src/projections/event-counts/event-counts.projection.js';
import type { ProjectionLogger } from '../../src/projections/runtime/projector.js';
import { activeCheckpoint, appendEvents, createHarness, eventually, onlyPrefix, type Harness } from './support/runtime-harness.js';

/**
 * A database error that passes (a deadlock, a connection lost) is no fault of the event: the
 * projector waits it out however often it comes, and only the other errors count towards
 * `maxAttempts` (3 in the harness). Each test uses its own projection names and stream prefixes.
 */
let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness.close();
});

/** A logger that keeps the fields of its warnings. */
function recordingLogger(): ProjectionLogger & { readonly warnings: object[] } {
  const warnings: object[] = [];
  return { warnings, info: () => undefined, warn: (fields) => warnings.push(fields), error: () => undefined };
}

/** Raises a real `deadlock_detected` (40P01) from the server, as a deadlock victim gets it. */
async function deadlock(): Promise<never> {
  await harness.pool.query(`do $$ begin raise exception 'deadlock detected' using errcode = 'deadlock_detected'; end $$`);
  throw new Error('the deadlock was not raised');
}

describe('projector retries', () => {
  it('given apply deadlocks more times than maxAttempts and then succeeds, then the event is applied and the projection is not failed', async () => {
    let deadlocks = 7;
    const projection = eventCountsProjection({
      name: 'deadlocked',
      eventTypes: ['Counted'],
      afterApply: async () => {
        if (deadlocks === 0) return;
        deadlocks -= 1;
        await deadlock();
      },
    });
    const logger = recordingLogger();
    const runtime = harness.startRuntime([projection], { logger });

    const { last } = await appendEvents(harness.store, { streams: 1, perStream: 1, prefix: 'deadlocked' });

    await eventually(() => harness.reached('deadlocked', last), 10_000, 'the event to be applied');
    expect(deadlocks).toBe(0);
    expect(onlyPrefix(await readEventCounts(harness.db, 'deadlocked'), 'deadlocked')).toEqual(new Map([['deadlocked-0', 1]]));
    expect(await activeCheckpoint(harness.db, 'deadlocked')).toMatchObject({ status: 'running', lastFailure: null });
    expect(runtime.status()[0]).toMatchObject({ state: 'running', lastError: null });
    // The outage is still visible: every retry was logged as a warning, marked transient.
    expect(logger.warnings.filter((fields) => 'transient' in fields && fields.transient === true).length).toBeGreaterThan(3);
    await runtime.stop();
  });

  it('given the connection of its transaction drops more times than maxAttempts, then the event is applied once it holds', async () => {
    let drops = 5;
    const projection = eventCountsProjection({ name: 'dropped', eventTypes: ['Counted'] });
    // The backend of the batch's own transaction is terminated, as a server restart or a network cut would.
    const dropping = {
      ...projection,
      apply: async (...args: Parameters<typeof projection.apply>) => {
        await projection.apply(...args);
        if (drops === 0) return;
        drops -= 1;
        await sql`select pg_terminate_backend(pg_backend_pid())`.execute(args[0]);
      },
    };
    const runtime = harness.startRuntime([dropping]);

    const { last } = await appendEvents(harness.store, { streams: 1, perStream: 1, prefix: 'dropped' });

    await eventually(() => harness.reached('dropped', last), 10_000, 'the event to be applied');
    expect(drops).toBe(0);
    expect(onlyPrefix(await readEventCounts(harness.db, 'dropped'), 'dropped')).toEqual(new Map([['dropped-0', 1]]));
    expect(await activeCheckpoint(harness.db, 'dropped')).toMatchObject({ status: 'running', lastFailure: null });
    await runtime.stop();
  });

  it('given apply keeps throwing its own error between deadlocks, then the projection still fails after maxAttempts of its own errors', async () => {
    let deadlocks = 0;
    let ownErrors = 0;
    const projection = eventCountsProjection({
      name: 'stubborn',
      eventTypes: ['Counted'],
      afterApply: async () => {
        if (deadlocks === ownErrors) {
          deadlocks += 1;
          await deadlock();
        }
        ownErrors += 1;
        throw new Error('cannot count this event');
      },
    });
    const runtime = harness.startRuntime([projection]);

    const { last } = await appendEvents(harness.store, { streams: 1, perStream: 1, prefix: 'stubborn' });

    const failed = await eventually(async () => {
      const row = await activeCheckpoint(harness.db, 'stubborn');
      return row?.status === 'failed' && row;
    }, 10_000, 'the projection to fail');
    expect(failed.lastFailure).toMatchObject({ error: 'cannot count this event' });
    expect(await harness.reached('stubborn', last)).toBe(false);
    // Three of its own errors, a deadlock before each.
    expect({ ownErrors, deadlocks }).toEqual({ ownErrors: 3, deadlocks: 3 });
    await runtime.stop();
  });
});
