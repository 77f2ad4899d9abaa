import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../src/application/sleep.js';
import { eventCountsProjection, readEventCounts } from '../../src/projections/event-counts/event-counts.projection.js';
import { requestRebuild } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { generationSchema, readSchema, type Projection } from '../../src/projections/runtime/projection.js';
import type { ProjectionRuntime } from '../../src/projections/runtime/projection-runtime.js';
import type { ProjectionStatus } from '../../src/projections/runtime/projector-metrics.js';
import { activeCheckpoint, appendEvents, checkpointsOf, countsInLog, createHarness, eventually, onlyPrefix, type Harness } from './support/runtime-harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness.close();
});

/** The event counts, with every batch of generation `slowGeneration` made to take `sleepMs` longer. */
function slowInGeneration(name: string, slowGeneration: number, sleepMs: number): Projection {
  const base = eventCountsProjection({ name, eventTypes: ['Swapped'] });
  return {
    ...base,
    async apply(trx, events) {
      await base.apply(trx, events);
      const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(trx);
      if (rows[0]?.schema === generationSchema(name, slowGeneration)) await sql`select pg_sleep(${sleepMs / 1000})`.execute(trx);
    },
  };
}

/** Runs `read` back to back on `readers` loops until `stop` resolves; returns each read's duration. */
async function readContinuously(readers: number, read: () => Promise<unknown>, stop: Promise<unknown>): Promise<number[]> {
  let stopped = false;
  void stop.finally(() => (stopped = true));
  const durations: number[] = [];
  await Promise.all(
    Array.from({ length: readers }, async () => {
      while (!stopped) {
        const started = performance.now();
        await read();
        durations.push(performance.now() - started);
        await sleep(10);
      }
    }),
  );
  return durations;
}

function rebuildStatus(runtime: ProjectionRuntime, name: string): ProjectionStatus | undefined {
  return runtime.status().find((status) => status.name === name && status.generation === 2);
}

describe('a swap whose batch takes long to apply', () => {
  it('keeps the views from readers only for the drop, the create and the commit', async () => {
    const name = 'swap_slow_apply';
    const { last } = await appendEvents(harness.store, { streams: 2, perStream: 20, prefix: name, type: 'Swapped' });
    harness.startRuntime([slowInGeneration(name, 2, 400)]);
    await eventually(() => harness.reached(name, last), 10_000, 'the first generation');

    await requestRebuild(harness.db, name);
    const swapped = eventually(async () => (await activeCheckpoint(harness.db, name))?.generation === 2, 10_000, 'the rebuild to swap in');
    const durations = await readContinuously(3, () => readEventCounts(harness.db, name), swapped);
    await swapped;

    // The swap's batch sleeps 400 ms in its transaction: had the views been taken first, reads waited as long.
    expect(durations.length).toBeGreaterThan(10);
    expect(Math.max(...durations)).toBeLessThan(250);
    const expected = onlyPrefix(await countsInLog(harness.store, ['Swapped'], last), name);
    expect(onlyPrefix(await readEventCounts(harness.db, name), name)).toEqual(expected);
  });
});

/**
 * Starts a read of the views that lasts `durationMs` every `everyMs` until stopped, on a pool of
 * its own; returns how to stop it, which resolves to the errors the reads met.
 */
function readsArriving(url: string, name: string, options: { durationMs: number; everyMs: number }): { stop(): Promise<unknown[]> } {
  const pool = new pg.Pool({ connectionString: url, max: 20 });
  const errors: unknown[] = [];
  const reads: Promise<unknown>[] = [];
  const statement = `select pg_sleep(${options.durationMs / 1000}), count(*) from ${readSchema(name)}.stream_event_counts`;
  const timer = setInterval(() => reads.push(pool.query(statement).catch((error: unknown) => errors.push(error))), options.everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(reads);
      await pool.end();
      return errors;
    },
  };
}

describe('a swap under reads that never leave the views free for its first lock timeout', () => {
  it('waits longer on later tries, swaps in, and shows the failed tries meanwhile', async () => {
    const name = 'swap_starved';
    const { last } = await appendEvents(harness.store, { streams: 2, perStream: 20, prefix: name, type: 'Swapped' });
    const runtime = harness.startRuntime([eventCountsProjection({ name, eventTypes: ['Swapped'] })]);
    await eventually(() => harness.reached(name, last), 10_000, 'the first generation');

    // A read starts every 40 ms and lasts 300 ms: whenever a try asks for the views, one has over
    // 200 ms left, so the first tries (100 ms, then 200 ms) are turned away, even on a busy machine
    // where the reads start late; a later, longer try waits them out.
    const reads = readsArriving(harness.url, name, { durationMs: 300, everyMs: 40 });
    let failedTries = 0;
    try {
      await sleep(300);
      await requestRebuild(harness.db, name);
      await eventually(
        async () => {
          const status = rebuildStatus(runtime, name);
          if (status?.state === 'rebuilding') failedTries = Math.max(failedTries, status.failedSwapTries);
          return (await activeCheckpoint(harness.db, name))?.generation === 2;
        },
        15_000,
        'the rebuild to swap in under continuous reads',
      );
    } finally {
      expect(await reads.stop()).toEqual([]);
    }
    expect(failedTries).toBeGreaterThanOrEqual(3);
    expect(rebuildStatus(runtime, name)?.failedSwapTries).toBe(0);
    const expected = onlyPrefix(await countsInLog(harness.store, ['Swapped'], last), name);
    expect(onlyPrefix(await readEventCounts(harness.db, name), name)).toEqual(expected);
  });

  it('reports a rebuild that keeps failing to swap as an error, in its status and its checkpoint row', async () => {
    const name = 'swap_held_off';
    const { last } = await appendEvents(harness.store, { streams: 2, perStream: 20, prefix: name, type: 'Swapped' });
    const runtime = harness.startRuntime([eventCountsProjection({ name, eventTypes: ['Swapped'] })]);
    await eventually(() => harness.reached(name, last), 10_000, 'the first generation');

    const reader = new pg.Client(harness.url);
    await reader.connect();
    const longRead = reader.query(`select pg_sleep(8), count(*) from ${readSchema(name)}.stream_event_counts`);
    try {
      await sleep(200);
      await requestRebuild(harness.db, name);
      const status = await eventually(
        async () => {
          const found = rebuildStatus(runtime, name);
          return found?.lastError ? found : undefined;
        },
        7000,
        'the starved swap to be reported',
      );
      expect(status.state).toBe('rebuilding');
      expect(status.failedSwapTries).toBeGreaterThanOrEqual(10);
      expect(status.lastError?.message).toMatch(/swap/i);
      // The note on the row follows the status by a statement.
      const row = await eventually(
        async () => (await checkpointsOf(harness.db, name)).find((checkpoint) => checkpoint.generation === 2 && checkpoint.lastFailure),
        2000,
        'the starved swap noted on the checkpoint row',
      );
      expect(row.status).toBe('rebuilding');
      expect(row.lastFailure?.error).toMatch(/swap/i);
    } finally {
      await longRead;
      await reader.end();
    }
    await eventually(async () => (await activeCheckpoint(harness.db, name))?.generation === 2, 10_000, 'the rebuild to swap in once the read ended');
  });
});
