import { randomInt, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { NewEvent, RecordedEvent } from '../../../src/application/ports/event-store.js';
import { comparePositions } from '../../../src/application/ports/position.js';
import { PgEventStore, type HorizonStall } from '../../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../../../src/infrastructure/postgres/database.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { sleep } from '../../../src/application/sleep.js';

// The horizon is server-wide: other test files' transactions can hold it for a moment too, so
// what must happen is awaited, and what must not happen is checked over a window.

let database: TestDatabase;
let pool: pg.Pool;
let store: PgEventStore;
const stalls: HorizonStall[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool(database.url, 10);
  await migrateToLatest(pool);
  // A long fallback poll, so a prompt delivery below proves the store did not merely poll.
  store = new PgEventStore(pool, { pollIntervalMs: 5000, stallWarningMs: 300, onStall: (stall) => stalls.push(stall) });
});

afterAll(async () => {
  await store.close();
  await pool.end();
  await database.drop();
});

describe('PgEventStore on PostgreSQL', () => {
  it('never lets a subscriber pass a transaction that is still open, and delivers it once it commits', async () => {
    const prefix = `slow-${randomUUID()}`;
    const subscriber = subscribe(prefix);
    const held = await openTransaction();
    try {
      // The held transaction takes its id first but appends after `a`: its position is higher
      // than a's, its transaction id lower. Both orders would deliver it before `b`.
      const identity = await held.query<{ xid: string; pid: number }>('SELECT pg_current_xact_id()::text AS xid, pg_backend_pid() AS pid');
      const heldXid = BigInt(identity.rows[0]?.xid ?? 0);
      const heldPid = identity.rows[0]?.pid;
      await store.appendToStream(`${prefix}-a`, [event('A')]);
      await appendWith(held, `${prefix}-held`, event('Held'));
      await store.appendToStream(`${prefix}-b`, [event('B')]);

      await sleep(400);
      expect(subscriber.received).toEqual([]);
      expect(await collect(store.readAll({ filter: { streamPrefixes: [prefix] } }))).toEqual([]);
      await vi.waitFor(async () => {
        const holder = await store.oldestInFlightTransaction();
        expect(holder).toMatchObject({ pid: heldPid, xid: heldXid, state: 'idle in transaction' });
        expect(holder?.ageMs).toBeGreaterThanOrEqual(300);
      });
      await vi.waitFor(() => expect(stalls.some((stall) => stall.holder?.pid === heldPid)).toBe(true));

      await held.query('COMMIT');
      const committed = Date.now();
      await vi.waitFor(() => expect(subscriber.received).toHaveLength(3), { timeout: 3000 });
      // No NOTIFY came from that commit: the subscriber saw events waiting and looked again.
      expect(Date.now() - committed).toBeLessThan(1000);
      expect(subscriber.received.map((e) => e.type)).toEqual(['Held', 'A', 'B']);
      const [first, second] = subscriber.received;
      expect(first?.position.commit).toBe(heldXid);
      expect(first && second && first.position.prepare > second.position.prepare).toBe(true);
      expectIncreasing(subscriber.received);
      expect(ids(await collect(store.readAll({ filter: { streamPrefixes: [prefix] } })))).toEqual(ids(subscriber.received));
    } finally {
      await held.end();
      subscriber.stop();
    }
  });

  it('names its head below a transaction still open, so what that transaction appended reads after the head once it commits', async () => {
    const prefix = `head-${randomUUID()}`;
    // Given an older transaction that appended and is still open, and a later append committed
    const held = await openTransaction();
    try {
      await appendWith(held, `${prefix}-held`, event('Held'));
      const later = await store.appendToStream(`${prefix}-later`, [event('Later')]);

      // When the head is taken
      const head = await store.headPosition();

      // Then it stops before the later event, which commits behind the open transaction
      expect(comparePositions(head, later.position)).toBe(-1);
      // and, the open one committed, both its event and the later one read after the head
      await held.query('COMMIT');
      await vi.waitFor(async () => {
        const afterHead = await collect(store.readAll({ after: head, filter: { streamPrefixes: [prefix] } }));
        expect(afterHead.map((e) => e.type)).toEqual(['Held', 'Later']);
      });
    } finally {
      await held.end();
    }
  });

  it('names as its head the last event in number order, not in text order (position 12 after 9)', async () => {
    // A database of its own, so that the positions are 1 to 12: compared as text, '9' > '12'.
    const fresh = await createTestDatabase();
    const freshPool = createPool(fresh.url, 2);
    const freshStore = new PgEventStore(freshPool);
    try {
      await migrateToLatest(freshPool);
      const appended = await freshStore.appendToStream(`head-${randomUUID()}`, Array.from({ length: 12 }, () => event('Counted')));
      // Below the horizon once every transaction older than the append has ended, server-wide.
      await vi.waitFor(async () => expect(await freshStore.headPosition()).toEqual(appended.position), { timeout: 5000 });
    } finally {
      await freshStore.close();
      await freshPool.end();
      await fresh.drop();
    }
  });

  it('is not stalled by a rolled-back append that left a hole in the positions', async () => {
    const prefix = `hole-${randomUUID()}`;
    const subscriber = subscribe(prefix);
    const rolledBack = await openTransaction();
    try {
      await appendWith(rolledBack, `${prefix}-gone`, event('Gone'));
      await rolledBack.query('ROLLBACK');
      await store.appendToStream(`${prefix}-after`, [event('After')]);
      await vi.waitFor(() => expect(subscriber.received.map((e) => e.type)).toEqual(['After']), { timeout: 1000 });

      // Rolled back while others committed behind it: released without any notification.
      const holding = await openTransaction();
      await appendWith(holding, `${prefix}-gone`, event('Gone'));
      await store.appendToStream(`${prefix}-after`, [event('Later')]);
      await sleep(200);
      expect(subscriber.received).toHaveLength(1);
      await holding.query('ROLLBACK');
      const released = Date.now();
      await vi.waitFor(() => expect(subscriber.received.map((e) => e.type)).toEqual(['After', 'Later']), { timeout: 3000 });
      expect(Date.now() - released).toBeLessThan(1000);
      await holding.end();
      expect(await store.readStream(`${prefix}-gone`)).toEqual({ status: 'no_stream' });
    } finally {
      await rolledBack.end();
      subscriber.stop();
    }
  });

  it('looks again promptly behind each new holder of the horizon, however long the one before held it', async () => {
    // Under load one open transaction hands the horizon to the next: the wait between looks
    // must start short behind each, or a subscriber lags by the longest wait on every event.
    async function relay(): Promise<number> {
      const prefix = `relay-${randomUUID()}`;
      const subscriber = subscribe(prefix);
      const first = await openTransaction();
      const second = await openTransaction();
      try {
        await first.query('SELECT pg_current_xact_id()');
        await store.appendToStream(`${prefix}-1`, [event('One')]);
        // Long enough for the looks behind the first holder to space out to their longest.
        await sleep(500);
        await second.query('SELECT pg_current_xact_id()');
        await store.appendToStream(`${prefix}-2`, [event('Two')]);
        await first.query('COMMIT');
        await vi.waitFor(() => expect(subscriber.received.map((e) => e.type)).toEqual(['One']), { timeout: 3000, interval: 1 });

        // Released without a notification, just after a look found the second holder.
        await second.query('COMMIT');
        const released = performance.now();
        await vi.waitFor(() => expect(subscriber.received.map((e) => e.type)).toEqual(['One', 'Two']), { timeout: 3000, interval: 1 });
        return performance.now() - released;
      } finally {
        await first.end();
        await second.end();
        subscriber.stop();
      }
    }
    // The old wait between looks, kept across holders, was 100 ms by then, every time. A machine
    // busy with other test files can delay one relay past that too: the best of three is judged.
    const delays: number[] = [];
    for (let relays = 0; relays < 3 && !delays.some((delay) => delay < 90); relays++) delays.push(await relay());
    expect(Math.min(...delays)).toBeLessThan(90);
  });

  it('spaces its looks out behind a holder it first saw with nothing waiting behind it', async () => {
    // Held first with nothing committed above the horizon, then an append lands above it: the
    // looks that follow must wait, not hammer the server until the holder ends.
    const counting = createPool(database.url, 5);
    let looks = 0;
    const query = counting.query.bind(counting) as (config: pg.QueryConfig) => Promise<pg.QueryResult>;
    Object.assign(counting, {
      query: (config: pg.QueryConfig) => {
        if (config.name?.startsWith('subscribe')) looks += 1;
        return query(config);
      },
    });
    const watched = new PgEventStore(counting, { pollIntervalMs: 5000 });
    const prefix = `spaced-${randomUUID()}`;
    const holder = await openTransaction();
    const subscriber = subscribe(prefix, watched);
    try {
      await holder.query('SELECT pg_current_xact_id()');
      await sleep(100);
      await watched.appendToStream(`${prefix}-1`, [event('Waiting')]);
      const from = looks;
      await sleep(400);
      // Doubling from 2 ms, capped at 100 ms: a handful of looks in 400 ms.
      expect(looks - from).toBeLessThan(30);
      expect(subscriber.received).toEqual([]);
      await holder.query('COMMIT');
      await vi.waitFor(() => expect(subscriber.received.map((e) => e.type)).toEqual(['Waiting']), { timeout: 3000 });
    } finally {
      subscriber.stop();
      await holder.end();
      await watched.close();
      await counting.end();
    }
  });

  it('wakes subscribers by notification, well before the fallback poll', async () => {
    const prefix = `notify-${randomUUID()}`;
    const subscriber = subscribe(prefix);
    await sleep(200);
    for (const n of [1, 2, 3]) {
      const appended = Date.now();
      await store.appendToStream(`${prefix}-1`, [event(`E${n}`)]);
      await vi.waitFor(() => expect(subscriber.received).toHaveLength(n), { timeout: 3000, interval: 5 });
      expect(Date.now() - appended).toBeLessThan(1000);
    }
    subscriber.stop();
  });

  it('announces a burst of appends with a few notifications, one of them after the last append', async () => {
    const burst = new PgEventStore(pool, { channel: 'burst_test', notifyIntervalMs: 20 });
    const listener = new pg.Client(database.url);
    await listener.connect();
    await listener.query('LISTEN burst_test');
    const heard: number[] = [];
    listener.on('notification', () => heard.push(performance.now()));
    try {
      const started = performance.now();
      for (let n = 0; n < 100; n += 1) await burst.appendToStream(`burst-${randomUUID()}`, [event('Burst')]);
      const lastAppended = performance.now();

      await vi.waitFor(() => expect(heard.at(-1) ?? 0).toBeGreaterThan(lastAppended), { timeout: 1000 });
      expect(heard.length).toBeLessThanOrEqual(Math.ceil((lastAppended - started) / 20) + 2);
      expect(heard.length).toBeLessThan(100);
    } finally {
      await burst.close();
      await listener.end();
    }
  });

  it('keeps delivering when its LISTEN connection is killed, and listens again', async () => {
    const prefix = `relisten-${randomUUID()}`;
    const fast = new PgEventStore(pool, { pollIntervalMs: 200, channel: 'relisten_test' });
    const subscriber = subscribe(prefix, fast);
    const listenerPid = async () =>
      (await pool.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN relisten_test'")).rows[0]?.pid;
    try {
      await vi.waitFor(async () => expect(await listenerPid()).toBeTypeOf('number'));
      await pool.query('SELECT pg_terminate_backend($1)', [await listenerPid()]);
      await fast.appendToStream(`${prefix}-1`, [event('AfterKill')]);
      await vi.waitFor(() => expect(subscriber.received).toHaveLength(1), { timeout: 3000 });
      await vi.waitFor(async () => expect(await listenerPid()).toBeTypeOf('number'), { timeout: 3000 });
    } finally {
      subscriber.stop();
      await fast.close();
    }
  });

  it('listens again as soon as its LISTEN connection is killed, not at the next poll', async () => {
    const prefix = `relisten-now-${randomUUID()}`;
    const slow = new PgEventStore(pool, { pollIntervalMs: 10_000, channel: 'relisten_now_test' });
    const subscriber = subscribe(prefix, slow);
    const listenerPid = async () =>
      (await pool.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN relisten_now_test'")).rows[0]?.pid;
    try {
      const killed = await vi.waitFor(async () => {
        const pid = await listenerPid();
        expect(pid).toBeTypeOf('number');
        return pid;
      });
      await sleep(100);
      await pool.query('SELECT pg_terminate_backend($1)', [killed]);
      await vi.waitFor(async () => expect(await listenerPid()).not.toBe(killed), { timeout: 1000 });

      const appended = Date.now();
      await slow.appendToStream(`${prefix}-1`, [event('AfterKill')]);
      await vi.waitFor(() => expect(subscriber.received).toHaveLength(1), { timeout: 5000, interval: 5 });
      expect(Date.now() - appended).toBeLessThan(1000);
    } finally {
      subscriber.stop();
      await slow.close();
    }
  });

  it('ends its subscriptions and releases its LISTEN connection on close', async () => {
    const own = new PgEventStore(createPool(database.url, 2), { channel: 'close_test', closePool: true });
    const ended = collect(own.subscribeToAll({ filter: { streamPrefixes: [`close-${randomUUID()}`] } }));
    const listening = async () =>
      (await pool.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN close_test' AND state = 'idle'")).rowCount;
    await vi.waitFor(async () => expect(await listening()).toBe(1));

    await own.close();

    expect(await ended).toEqual([]);
    await vi.waitFor(async () => expect(await listening()).toBe(0));
    await expect(own.appendToStream('closed-1', [event('Late')])).rejects.toThrow(/closed/);
  });

  it('reads the same whatever parsers another library installs in pg.types', async () => {
    const streamId = `parsers-${randomUUID()}`;
    const original = { int8: pg.types.getTypeParser(20), jsonb: pg.types.getTypeParser(3802) };
    // What emmett's dumbo does to the process.
    pg.types.setTypeParser(20, (text: string) => BigInt(text));
    pg.types.setTypeParser(3802, () => ({ replaced: true }));
    try {
      const appended = await store.appendToStream(streamId, [{ id: randomUUID(), type: 'Parsed', data: { n: 1 }, metadata: { m: 'x' } }]);
      const result = await store.readStream(streamId);
      const [read] = result.status === 'found' ? await collect(result.events) : [];
      expect(read).toMatchObject({ revision: 0, data: { n: 1 }, metadata: { m: 'x' }, position: appended.position });
      expect(typeof read?.revision).toBe('number');
    } finally {
      pg.types.setTypeParser(20, original.int8);
      pg.types.setTypeParser(3802, original.jsonb);
    }
  });

  it('stores the events append-only', async () => {
    const streamId = `immutable-${randomUUID()}`;
    await store.appendToStream(streamId, [event('Fixed')]);
    await expect(pool.query("UPDATE events SET event_type = 'Changed' WHERE stream_id = $1", [streamId])).rejects.toMatchObject({ code: 'EV003' });
    await expect(pool.query('DELETE FROM events WHERE stream_id = $1', [streamId])).rejects.toMatchObject({ code: 'EV003' });
  });

  it('reads and subscribes with every shape of filter as statements prepared on the connection, one per shape', async () => {
    // One connection: every read below meets the statements the ones before it prepared.
    const onePool = createPool(database.url, 1);
    const own = new PgEventStore(onePool, { pollIntervalMs: 50 });
    try {
      const prefix = `shapes-${randomUUID()}`;
      await store.appendToStream(`${prefix}-a`, [event('Kept'), event('Other')]);
      const after = (await store.appendToStream(`${prefix}-b`, [event('Kept')])).position;
      const filters = [{ streamPrefixes: [prefix] }, { streamPrefixes: [prefix], eventTypes: ['Kept'] }];
      for (const filter of filters) {
        const expected = filter.eventTypes ? 2 : 3;
        // Awaited: another file's open transaction may hold the horizon below `after` for a moment.
        await vi.waitFor(async () => expect(await collect(own.readAll({ filter }))).toHaveLength(expected));
        const subscription = new AbortController();
        const received: RecordedEvent[] = [];
        for await (const delivered of own.subscribeToAll({ filter, signal: subscription.signal })) {
          received.push(delivered);
          if (comparePositions(delivered.position, after) >= 0) subscription.abort();
        }
        expect(received).toHaveLength(expected);
      }
      const unfiltered = own.subscribeToAll({ after, signal: AbortSignal.timeout(200) });
      expect(await collect(unfiltered)).toEqual([]);
      const statements = await onePool.query<{ name: string }>('SELECT name FROM pg_prepared_statements');
      expect(statements.rows.map((row) => row.name)).toEqual(
        expect.arrayContaining(['read_all_by_stream', 'read_all_by_type_by_stream', 'subscribe_by_stream', 'subscribe_by_type_by_stream', 'subscribe']),
      );
    } finally {
      await own.close();
      await onePool.end();
    }
  });
});

describe('group commit', () => {
  it('commits the appends that queue up behind the ones in flight together, in one transaction', async () => {
    const prefix = `together-${randomUUID()}`;
    // Called in one go: two are sent at once, the other 38 wait for the first to finish.
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => store.appendToStream(`${prefix}-${i}`, [event('Together')], { expectedRevision: 'no_stream' })));
    expect(results.map((result) => result.revision)).toEqual(Array.from({ length: 40 }, () => 0));
    const { rows } = await pool.query<{ transactions: number }>('SELECT count(DISTINCT transaction_id)::int AS transactions FROM events WHERE stream_id LIKE $1', [`${prefix}-%`]);
    expect(rows[0]?.transactions).toBeLessThanOrEqual(4);
  });

  it('answers each append of a batch on its own: a conflict and a retry beside appends that go through', async () => {
    const streamId = `mixed-${randomUUID()}`;
    const first = event('First');
    const original = await store.appendToStream(streamId, [first]);
    const [one, two, stale, retry, fresh] = await Promise.allSettled([
      store.appendToStream(`${streamId}-a`, [event('A')]),
      store.appendToStream(`${streamId}-b`, [event('B')]),
      store.appendToStream(streamId, [event('Stale')], { expectedRevision: 'no_stream' }),
      store.appendToStream(streamId, [first], { expectedRevision: 'no_stream' }),
      store.appendToStream(`${streamId}-c`, [event('C')], { expectedRevision: 'no_stream' }),
    ]);
    expect([one, two, fresh].map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(stale).toMatchObject({ status: 'rejected', reason: { name: 'ConcurrencyError', actual: 0 } });
    expect(retry).toEqual({ status: 'fulfilled', value: { ...original, written: false } });
    expect([one, two, fresh]).toMatchObject([1, 2, 3].map(() => ({ value: { written: true } })));
  });

  it('answers reads that queue up together as it answers each alone: missing streams, offsets, pages, counts', async () => {
    const paged = new PgEventStore(pool, { pageSize: 3 });
    const prefix = `heads-${randomUUID()}`;
    for (let stream = 1; stream < 8; stream++) {
      await paged.appendToStream(`${prefix}-${stream}`, Array.from({ length: stream }, () => event('E')));
    }
    const reads = Array.from({ length: 60 }, (_, i) => ({ streamId: `${prefix}-${i % 9}`, from: i % 5, maxCount: i % 4 === 0 ? 2 : undefined }));
    const readAll = async (read: (typeof reads)[number]) => {
      const result = await paged.readStream(read.streamId, { from: read.from, ...(read.maxCount ? { maxCount: read.maxCount } : {}) });
      return result.status === 'found' ? ids(await collect(result.events)) : 'no_stream';
    };
    const together = await Promise.all(reads.map(readAll));
    const alone: Array<string[] | 'no_stream'> = [];
    for (const read of reads) alone.push(await readAll(read));
    expect(together).toEqual(alone);
    expect(alone.filter((answer) => answer === 'no_stream')).toHaveLength(reads.filter((read) => /-(0|8)$/.test(read.streamId)).length);
    expect(alone.some((answer) => Array.isArray(answer) && answer.length > 3)).toBe(true);
    await paged.close();
  });

  it('never deadlocks two stores whose batches share streams, and loses no append', async () => {
    const [poolA, poolB] = [createPool(database.url, 4), createPool(database.url, 4)];
    const [a, b] = [new PgEventStore(poolA, { closePool: true }), new PgEventStore(poolB, { closePool: true })];
    const prefix = `shared-${randomUUID()}`;
    const deadlocks = async () => (await pool.query<{ n: string }>('SELECT deadlocks::text AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0]?.n;
    const before = await deadlocks();
    try {
      // 400 appends of two events each over 6 streams, in random order, from both stores.
      const appends = Array.from({ length: 400 }, (_, i) => (i % 2 ? a : b).appendToStream(`${prefix}-${randomInt(6)}`, [event('X'), event('Y')]));
      await Promise.all(appends);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    const { rows } = await pool.query<{ stream_id: string; events: number; last: number }>(
      'SELECT stream_id, count(*)::int AS events, max(revision)::int AS last FROM events WHERE stream_id LIKE $1 GROUP BY stream_id',
      [`${prefix}-%`],
    );
    expect(rows.reduce((sum, row) => sum + row.events, 0)).toBe(800);
    for (const row of rows) expect(row.last).toBe(row.events - 1);
    // And the log has each stream's events in revision order.
    const revisions = new Map<string, number[]>();
    for await (const recorded of store.readAll({ filter: { streamPrefixes: [prefix] } })) {
      revisions.set(recorded.streamId, [...(revisions.get(recorded.streamId) ?? []), recorded.revision]);
    }
    for (const [, seen] of revisions) expect(seen).toEqual(seen.map((_, index) => index));
    // A deadlock would have been resolved by resending alone; the server's count tells. Its
    // statistics reach the view within a second of the victim's transaction.
    await sleep(1100);
    expect(await deadlocks()).toBe(before);
  });
});

describe('a batch that waits for a stream lock', () => {
  it("keeps the stream's revision order in the log: its transaction id is drawn only once it holds every lock", async () => {
    const prefix = `order-${randomUUID()}`;
    // The batch appends to `first` (locked first: the lower key) and to `hot`.
    const hot = `${prefix}-hot`;
    let first = '';
    for (let i = 0; !first; i++) {
      const { rows } = await pool.query<{ lower: boolean }>('SELECT hashtext($1) < hashtext($2) AS lower', [`${prefix}-${i}`, hot]);
      if (rows[0]?.lower) first = `${prefix}-${i}`;
    }
    const append = (client: pg.Client, streamId: string) =>
      client.query("SELECT * FROM append_to_stream($1, -2, ARRAY[$2::uuid], ARRAY['E'], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])", [streamId, randomUUID()]);
    const [holder, alone, batch] = [await openTransaction(), new pg.Client(database.url), new pg.Client(database.url)];
    await Promise.all([alone.connect(), batch.connect()]);
    try {
      // An append to `hot` in flight; another queues for its lock; then the batch queues behind both.
      await append(holder, hot);
      const second = append(alone, hot);
      await sleep(200);
      const appends = [first, hot].map((stream) => ({ stream, expected: -2, events: [event('E')] }));
      const third = batch.query('SELECT * FROM append_to_streams($1::jsonb)', [JSON.stringify(appends)]);
      await sleep(200);
      await holder.query('COMMIT');
      await Promise.all([second, third]);
    } finally {
      await Promise.all([holder.end(), alone.end(), batch.end()]);
    }

    // Read once all three are below the horizon: another test's transaction, open on the same
    // server, can hold the global order back for a moment.
    let inLog: number[] = [];
    for (const deadline = Date.now() + 10_000; inLog.length < 3 && Date.now() < deadline; await sleep(50)) {
      inLog = [];
      for await (const recorded of store.readAll({ filter: { streamPrefixes: [hot] } })) inLog.push(recorded.revision);
    }
    expect(inLog).toEqual([0, 1, 2]);
  });
});

type Subscriber = { received: RecordedEvent[]; stop(): void };

function subscribe(prefix: string, from: PgEventStore = store): Subscriber {
  const controller = new AbortController();
  const received: RecordedEvent[] = [];
  void (async () => {
    for await (const recorded of from.subscribeToAll({ filter: { streamPrefixes: [prefix] }, signal: controller.signal })) {
      received.push(recorded);
    }
  })();
  return { received, stop: () => controller.abort() };
}

/** A connection of its own, in a transaction, standing for another process's slow append. */
async function openTransaction(): Promise<pg.Client> {
  const client = new pg.Client(database.url);
  await client.connect();
  await client.query('BEGIN');
  return client;
}

async function appendWith(client: pg.Client, streamId: string, newEvent: NewEvent): Promise<void> {
  await client.query('SELECT * FROM append_to_stream($1, -2, $2, $3, $4, $5)', [
    streamId,
    [newEvent.id],
    [newEvent.type],
    [newEvent.data],
    [newEvent.metadata],
  ]);
}

function event(type: string): NewEvent {
  return { id: randomUUID(), type, data: {}, metadata: {} };
}

function ids(events: readonly RecordedEvent[]): string[] {
  return events.map((recorded) => recorded.id);
}

function expectIncreasing(events: readonly RecordedEvent[]): void {
  for (let index = 1; index < events.length; index += 1) {
    const [previous, current] = [events[index - 1], events[index]];
    if (previous && current) expect(comparePositions(previous.position, current.position)).toBe(-1);
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

