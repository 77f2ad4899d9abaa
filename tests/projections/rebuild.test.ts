import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/application/ports/event-store.js';
import { comparePositions, parsePosition, START, type Position } from '../../src/application/ports/position.js';
import { eventCountsProjection, readEventCounts } from '../../src/projections/event-counts/event-counts.projection.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely, createPool } from '../../src/infrastructure/postgres/database.js';
import { ensureGeneration, requestRebuild } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { generationSchema } from '../../src/projections/runtime/projection.js';
import {
  activeCheckpoint,
  appendEvents,
  checkpointsOf,
  countsInLog,
  createHarness,
  createRuntime,
  eventually,
  onlyPrefix,
  type Harness,
} from './support/runtime-harness.js';
import { sleep } from '../../src/application/sleep.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness.close();
});

async function schemaExists(schema: string): Promise<boolean> {
  const { rows } = await sql<{ found: boolean }>`select exists (select 1 from pg_namespace where nspname = ${schema}) as found`.execute(harness.db);
  return rows[0]?.found === true;
}

/**
 * Reads the counts through the read schema every few milliseconds until stopped: every read must
 * succeed, and no stream's count may ever go down (a swap never shows an older state).
 */
function keepReading(name: string) {
  let running = true;
  const problems: string[] = [];
  let reads = 0;
  const done = (async () => {
    const seen = new Map<string, number>();
    while (running) {
      try {
        for (const [stream, count] of await readEventCounts(harness.db, name)) {
          if (count < (seen.get(stream) ?? 0)) problems.push(`${stream} went from ${seen.get(stream)} to ${count}`);
          seen.set(stream, count);
        }
        reads += 1;
      } catch (error) {
        problems.push(String(error));
      }
      await sleep(5);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return { problems, reads };
    },
  };
}

/**
 * The store, with a subscription that stalls every 20 events, longer than a batch waits for
 * company: a rebuild's batches come short all along the log, as page boundaries and slow reads
 * make them. What a swap reads (`readAll`) is reported before it starts and when it ends.
 */
function stallingStore(store: EventStore, swap: { beforeRead?: () => Promise<void>; afterRead?: (read: number) => void }): EventStore {
  return withReads(store, {
    async *readAll(options) {
      await swap.beforeRead?.();
      let read = 0;
      try {
        for await (const event of store.readAll(options)) {
          read += 1;
          yield event;
        }
      } finally {
        swap.afterRead?.(read);
      }
    },
    async *subscribeToAll(options) {
      let delivered = 0;
      for await (const event of store.subscribeToAll(options)) {
        if (++delivered % 20 === 0) await sleep(10);
        yield event;
      }
    },
  });
}

/** `store` with its reads replaced; appends and the rest go straight through. */
function withReads(store: EventStore, reads: Pick<EventStore, 'readAll' | 'subscribeToAll'>): EventStore {
  return {
    appendToStream: (...args) => store.appendToStream(...args),
    readStream: (...args) => store.readStream(...args),
    headPosition: () => store.headPosition(),
    close: () => store.close(),
    ...reads,
  };
}

/** Whether another transaction could lock `name`'s active generation row just now. */
async function activeRowFree(name: string): Promise<boolean> {
  return harness.db.transaction().execute(async (trx) => {
    try {
      await sql`select 1 from projection_checkpoints where name = ${name} and active for update nowait`.execute(trx);
      return true;
    } catch {
      return false;
    }
  });
}

/** A projection `name` built to the end of 1,000 events of its own, its runtime stopped again: the position it got to. */
async function liveGenerationOf1000Events(name: string, batchSize: number): Promise<Position> {
  const log = await appendEvents(harness.store, { streams: 5, perStream: 200, prefix: name });
  const first = harness.startRuntime([eventCountsProjection({ name, eventTypes: ['Counted'] })], { batchSize });
  await eventually(() => harness.reached(name, log.last), 10_000, 'generation 1');
  await first.stop();
  return log.last;
}

describe('zero-downtime rebuilds', () => {
  it('rebuilds on request beside the live generation, swaps it in, and drops the old one', async () => {
    const slow = () => sleep(10);
    const runtime = harness.startRuntime([eventCountsProjection({ name: 'rebuilt', eventTypes: ['Counted'], afterApply: slow })], { batchSize: 50 });
    await appendEvents(harness.store, { streams: 4, perStream: 50, prefix: 'rebuilt' });
    await eventually(async () => (await activeCheckpoint(harness.db, 'rebuilt'))?.eventsProcessed === 200n, 10_000, 'generation 1');

    const reader = keepReading('rebuilt');
    expect(await requestRebuild(harness.db, 'rebuilt')).toEqual({ generation: 2 });
    // A second request while one is under way is the same rebuild.
    expect(await requestRebuild(harness.db, 'rebuilt')).toEqual({ generation: 2 });
    // Live writes go on during the rebuild; the rebuild must end up with them too.
    const during = await appendEvents(harness.store, { streams: 4, perStream: 20, prefix: 'rebuilt' });

    await eventually(async () => {
      const rows = await checkpointsOf(harness.db, 'rebuilt');
      return rows.length === 1 && rows[0]?.generation === 2 && rows[0].active && rows[0].status === 'running';
    }, 10_000, 'generation 2 to be swapped in and generation 1 dropped');
    await eventually(() => harness.reached('rebuilt', during.last), 10_000, 'catch-up');
    const { problems, reads } = await reader.stop();
    expect(problems).toEqual([]);
    expect(reads).toBeGreaterThan(5);

    const checkpoint = await activeCheckpoint(harness.db, 'rebuilt');
    expect(await readEventCounts(harness.db, 'rebuilt')).toEqual(await countsInLog(harness.store, ['Counted'], parsePosition(checkpoint?.position ?? '')));
    expect(await schemaExists(generationSchema('rebuilt', 1))).toBe(false);
    await eventually(async () => runtime.status().length === 1, 5000, 'the runtime to settle');
    expect(runtime.status().map((status) => [status.generation, status.state])).toEqual([[2, 'running']]);
  });

  const batchSize = 50;

  it('catching up far behind, tries its swap on every batch that comes short, reading at most a batch more at each, and applies what it read', async () => {
    await liveGenerationOf1000Events('faraway', batchSize);

    const swapReads: number[] = [];
    const stalling = stallingStore(harness.revealed, { afterRead: (read) => swapReads.push(read) });
    harness.startRuntime([eventCountsProjection({ name: 'faraway', eventTypes: ['Counted'] })], { batchSize, batchMaxWaitMs: 2, eventStore: stalling });
    expect(await requestRebuild(harness.db, 'faraway')).toEqual({ generation: 2 });

    await eventually(async () => (await activeCheckpoint(harness.db, 'faraway'))?.generation === 2, 20_000, 'generation 2 to be swapped in');
    expect(swapReads.length).toBeGreaterThan(3);
    expect(Math.max(...swapReads)).toBeLessThanOrEqual(batchSize);
    // A try that comes up behind goes on past the batch it read: the log takes at most a try per
    // 50 events. Had it thrown its reads away, it would try once per short batch (about 20 events).
    let logLength = 0;
    for await (const _event of harness.store.readAll()) logLength += 1;
    expect(swapReads.length).toBeLessThanOrEqual(logLength / batchSize + 1);
    const checkpoint = await activeCheckpoint(harness.db, 'faraway');
    expect(onlyPrefix(await readEventCounts(harness.db, 'faraway'), 'faraway')).toEqual(
      onlyPrefix(await countsInLog(harness.store, ['Counted'], parsePosition(checkpoint?.position ?? '')), 'faraway'),
    );
  });

  it('looks before it locks: a swap try that finds itself behind never holds the live generation\'s row', async () => {
    await liveGenerationOf1000Events('lookfirst', batchSize);

    // While each swap try reads, another transaction tries the live generation's row.
    const tries: boolean[] = [];
    const stalling = stallingStore(harness.revealed, { beforeRead: async () => void tries.push(await activeRowFree('lookfirst')) });
    harness.startRuntime([eventCountsProjection({ name: 'lookfirst', eventTypes: ['Counted'] })], { batchSize, batchMaxWaitMs: 2, eventStore: stalling });
    expect(await requestRebuild(harness.db, 'lookfirst')).toEqual({ generation: 2 });

    await eventually(async () => (await activeCheckpoint(harness.db, 'lookfirst'))?.generation === 2, 20_000, 'generation 2 to be swapped in');
    expect(tries.length).toBeGreaterThan(3);
    // Nothing was appended meanwhile: even the try that swapped in had nothing to read under the lock.
    expect(tries.filter((free) => !free)).toEqual([]);
  });

  it('a rebuild whose last catch-up try came up behind tries again on the next event, even one at a time', async () => {
    const held = await liveGenerationOf1000Events('trickle', batchSize);
    expect(await requestRebuild(harness.db, 'trickle')).toEqual({ generation: 2 });
    // The rebuild's subscription (from the start) stops after `held`, and a swap try reads
    // nothing, until released: its try at the end of the catch-up comes up behind the live one.
    let release = () => undefined as void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let reading = false;
    const store = harness.revealed;
    const holding = withReads(store, {
      async *readAll(options) {
        if (reading) yield* store.readAll(options);
      },
      async *subscribeToAll(options) {
        const fromStart = comparePositions(options?.after ?? START, START) === 0;
        for await (const event of store.subscribeToAll(options)) {
          if (fromStart && comparePositions(event.position, held) > 0) await released;
          yield event;
        }
      },
    });
    // No idle heartbeat during the test: only events can make it try again.
    harness.startRuntime([eventCountsProjection({ name: 'trickle', eventTypes: ['Counted'] })], { batchSize, batchMaxWaitMs: 2, controlIntervalMs: 60_000, eventStore: holding });
    let trickled = 0;
    try {
      const ahead = await appendEvents(harness.store, { streams: 1, perStream: 1, prefix: 'trickle-ahead' });
      await eventually(() => harness.reached('trickle', ahead.last), 10_000, 'the live generation to move ahead');
      const rebuilt = async () => (await checkpointsOf(harness.db, 'trickle')).find((row) => row.generation === 2);
      await eventually(async () => comparePositions(parsePosition((await rebuilt())?.position ?? '') ?? START, held) >= 0, 10_000, 'the rebuild to catch up to the hold');
      expect((await rebuilt())?.active).toBe(false);

      reading = true;
      release();
      const swapped = async () => (await activeCheckpoint(harness.db, 'trickle'))?.generation === 2;
      const deadline = performance.now() + 3000;
      while (!(await swapped()) && performance.now() < deadline) {
        await appendEvents(harness.store, { streams: 1, perStream: 1, prefix: 'trickle-one' });
        trickled += 1;
        await sleep(50);
      }
      expect(await swapped()).toBe(true);
    } finally {
      release();
    }
    expect(trickled).toBeGreaterThan(0);
  });

  it('builds a higher version from the first event while the old code keeps serving, then retires it', async () => {
    const old = harness.startRuntime([eventCountsProjection({ name: 'versioned', eventTypes: ['Counted'] })]);
    await appendEvents(harness.store, { streams: 2, perStream: 30, prefix: 'versioned' });
    const recounted = await appendEvents(harness.store, { streams: 2, perStream: 10, prefix: 'versioned', type: 'Recounted' });
    await eventually(() => harness.reached('versioned', recounted.last), 10_000, 'version 1');
    expect(onlyPrefix(await readEventCounts(harness.db, 'versioned'), 'versioned')).toEqual(new Map([['versioned-0', 30], ['versioned-1', 30]]));

    // A deploy: new code (version 2, which also counts `Recounted`) starts beside the old.
    const reader = keepReading('versioned');
    const next = harness.startRuntime([eventCountsProjection({ name: 'versioned', eventTypes: ['Counted', 'Recounted'], version: 2 })]);
    await eventually(async () => (await activeCheckpoint(harness.db, 'versioned'))?.version === 2, 10_000, 'version 2 to be swapped in');
    await eventually(async () => (await checkpointsOf(harness.db, 'versioned')).length === 1, 10_000, 'version 1 to be dropped');
    const { problems } = await reader.stop();
    expect(problems).toEqual([]);
    expect(onlyPrefix(await readEventCounts(harness.db, 'versioned'), 'versioned')).toEqual(new Map([['versioned-0', 40], ['versioned-1', 40]]));

    // The old code sees a newer version active and stays out of its way.
    const more = await appendEvents(harness.store, { streams: 2, perStream: 5, prefix: 'versioned', type: 'Recounted' });
    await eventually(() => harness.reached('versioned', more.last), 10_000, 'version 2 to go on');
    expect(onlyPrefix(await readEventCounts(harness.db, 'versioned'), 'versioned')).toEqual(new Map([['versioned-0', 45], ['versioned-1', 45]]));
    // (A process may briefly hold a worker for the retired generation, to drop it.)
    await eventually(async () => old.status().length === 0, 5000, 'the old code to let go');
    await eventually(async () => next.status().length === 1, 5000, 'the new code to settle');
    expect(next.status().map((status) => [status.version, status.state])).toEqual([[2, 'running']]);
  });
});

describe('rebuilds on a pool no larger than the projections need', () => {
  // A database of its own per case: a transaction frozen in one (as on the old code) holds back
  // what every reader of that database's log can see.
  let own: Harness;

  beforeEach(async () => {
    own = await createHarness();
  });

  afterEach(async () => {
    await own.close();
  });

  it.each([
    { connections: 1, projections: 1 },
    { connections: 2, projections: 2 },
  ])('with $connections connection(s) shared by the event store and $projections projection(s), each rebuild swaps in under live traffic', async ({ connections, projections }) => {
    const prefix = `small_pool_${connections}`;
    const pool = createPool(own.url, connections);
    const store = new PgEventStore(pool, { pollIntervalMs: 100 });
    const db = createKysely<unknown>(pool);
    const names = Array.from({ length: projections }, (_, index) => `${prefix}_${index}`);
    // Batches that come short all along the catch-up, and take a while to apply: each rebuild
    // tries its swap often, with the log to read towards the live generation far ahead, and
    // holds its transaction long enough for the other's tries to overlap.
    const runtime = createRuntime(
      { url: own.url, db, revealed: stallingStore(store, {}) },
      names.map((name) => eventCountsProjection({ name, eventTypes: ['Counted'], afterApply: () => sleep(10) })),
      { batchSize: 50, batchMaxWaitMs: 2 },
    );
    runtime.start();
    // Light live traffic, appended through the same pool.
    let live = true;
    const traffic = (async () => {
      while (live) {
        await appendEvents(store, { streams: 1, perStream: 1, prefix: `${prefix}_live` });
        await sleep(20);
      }
    })();
    try {
      const { last } = await appendEvents(own.store, { streams: 2, perStream: 100, prefix });
      for (const name of names) await eventually(() => own.reached(name, last), 10_000, `${name} to catch up`);
      for (const name of names) expect(await requestRebuild(own.db, name)).toEqual({ generation: 2 });
      for (const name of names) {
        await eventually(async () => (await activeCheckpoint(own.db, name))?.generation === 2, 15_000, `${name}'s rebuild to swap in`);
      }
    } finally {
      live = false;
      // A frozen pool never answers again: its connections go with the database.
      await Promise.race([traffic.then(() => runtime.stop()).then(() => db.destroy()), sleep(2000)]);
    }
  });
});

describe('rebuild requests', () => {
  it('after a rebuild failed, a request retires it and starts another, which swaps in', async () => {
    let failing = false;
    harness.startRuntime([
      eventCountsProjection({
        name: 'refailed',
        eventTypes: ['Counted'],
        afterApply: async () => {
          if (failing) throw new Error('could not extend the table: the disk is full');
        },
      }),
    ]);
    const { last } = await appendEvents(harness.store, { streams: 2, perStream: 20, prefix: 'refailed' });
    await eventually(() => harness.reached('refailed', last), 10_000, 'generation 1');
    failing = true;
    expect(await requestRebuild(harness.db, 'refailed')).toEqual({ generation: 2 });
    const second = async () => (await checkpointsOf(harness.db, 'refailed')).find((row) => row.generation === 2);
    await eventually(async () => (await second())?.status === 'failed', 10_000, 'generation 2 to fail');

    // The cause has passed: asked again, the failed rebuild does not stand in for a new one.
    failing = false;
    expect(await requestRebuild(harness.db, 'refailed')).toEqual({ generation: 3 });
    await eventually(async () => (await activeCheckpoint(harness.db, 'refailed'))?.generation === 3, 15_000, 'generation 3 to swap in');
    await eventually(async () => (await checkpointsOf(harness.db, 'refailed')).length === 1, 10_000, 'generations 1 and 2 to be dropped');
    expect(await schemaExists(generationSchema('refailed', 2))).toBe(false);
    const checkpoint = await activeCheckpoint(harness.db, 'refailed');
    expect(onlyPrefix(await readEventCounts(harness.db, 'refailed'), 'refailed')).toEqual(
      onlyPrefix(await countsInLog(harness.store, ['Counted'], parsePosition(checkpoint?.position ?? '')), 'refailed'),
    );
  });

  it('a rebuild left pending for an older version is retired once a newer version is live, and a request then starts a new one', async () => {
    const old = harness.startRuntime([eventCountsProjection({ name: 'orphaned', eventTypes: ['Counted'] })]);
    const { last } = await appendEvents(harness.store, { streams: 2, perStream: 20, prefix: 'orphaned' });
    await eventually(() => harness.reached('orphaned', last), 10_000, 'version 1');
    // Asked for under version 1, whose code is gone (a deploy) before it built the rebuild.
    await old.stop();
    expect(await requestRebuild(harness.db, 'orphaned')).toEqual({ generation: 2 });

    harness.startRuntime([eventCountsProjection({ name: 'orphaned', eventTypes: ['Counted'], version: 2 })]);
    await eventually(async () => (await activeCheckpoint(harness.db, 'orphaned'))?.generation === 3, 15_000, 'version 2 to swap in');
    await eventually(
      async () => (await checkpointsOf(harness.db, 'orphaned')).map((row) => row.generation).join() === '3',
      10_000,
      'the version 1 generations to be retired and dropped',
    );
    expect(await schemaExists(generationSchema('orphaned', 2))).toBe(false);

    expect(await requestRebuild(harness.db, 'orphaned')).toEqual({ generation: 4 });
    await eventually(async () => (await activeCheckpoint(harness.db, 'orphaned'))?.generation === 4, 15_000, 'the new rebuild to swap in');
  });

  it('a request naming its code\'s version retires a pending rebuild of another version for one of its own', async () => {
    await ensureGeneration(harness.db, 'versions_asked', 1);
    expect(await requestRebuild(harness.db, 'versions_asked')).toEqual({ generation: 2 });
    // Code of version 2 (the rebuild command, say) cannot build generation 2, and would wait for it.
    expect(await requestRebuild(harness.db, 'versions_asked', 2)).toEqual({ generation: 3 });
    expect((await checkpointsOf(harness.db, 'versions_asked')).map((row) => [row.generation, row.version, row.status])).toEqual([
      [1, 1, 'running'],
      [2, 1, 'retired'],
      [3, 2, 'rebuilding'],
    ]);
    // The same code asking again finds its own under way.
    expect(await requestRebuild(harness.db, 'versions_asked', 2)).toEqual({ generation: 3 });
  });
});
