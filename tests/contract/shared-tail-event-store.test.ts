import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { matchesFilter, type EventStore, type RecordedEvent, type SubscribeOptions } from '../../src/application/ports/event-store.js';
import { comparePositions, type Position } from '../../src/application/ports/position.js';
import { sleep } from '../../src/application/sleep.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { SharedTailEventStore } from '../../src/infrastructure/shared-subscription/shared-tail-event-store.js';
import { createTestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { describeEventStoreContract } from './event-store.contract.js';

/**
 * The shared tail serves unfiltered subscriptions (the projectors'); it hands filtered ones to the
 * store it wraps. The contract's subscriptions are all filtered, so here they go through the tail
 * unfiltered and are filtered after it: the contract then tests the tail itself.
 */
class FilteredAfterTheTail extends SharedTailEventStore {
  override subscribeToAll({ filter, ...options }: SubscribeOptions = {}): AsyncIterable<RecordedEvent> {
    const events = super.subscribeToAll(options);
    return {
      async *[Symbol.asyncIterator]() {
        for await (const event of events) if (matchesFilter(event, filter)) yield event;
      },
    };
  }
}

// A tiny buffer and catch-up page, so that subscribers fall behind the shared tail and switch.
describeEventStoreContract('SharedTailEventStore over MemoryEventStore', async () => {
  const store = new FilteredAfterTheTail(new MemoryEventStore(), { bufferSize: 7, catchUpPage: 5 });
  return { store, teardown: () => store.close() };
});

describeEventStoreContract('SharedTailEventStore over PgEventStore', async () => {
  const database = await createTestDatabase();
  const pool = createPool(database.url, 20);
  await migrateToLatest(pool);
  const store = new FilteredAfterTheTail(new PgEventStore(pool, { pageSize: 50, closePool: true }), { bufferSize: 40, catchUpPage: 30 });
  return {
    store,
    async teardown() {
      await store.close();
      await database.drop();
    },
  };
});

describe('SharedTailEventStore with many subscribers at different places', () => {
  it('gives every subscriber exactly the log after its start, while appends go on', async () => {
    const store = new SharedTailEventStore(new MemoryEventStore(), { bufferSize: 20, catchUpPage: 7 });
    const append = (n: number) =>
      Promise.all(Array.from({ length: n }, (_, i) => store.appendToStream(`s-${i % 13}`, [{ id: randomUUID(), type: 'E', data: { i }, metadata: {} }])));
    await append(60);
    const log: RecordedEvent[] = [];
    for await (const event of store.readAll()) log.push(event);
    const starts = [undefined, log[0]?.position, log[25]?.position, log[59]?.position];
    const stop = new AbortController();
    const total = 60 + 90;
    const received = starts.map(async (after, s) => {
      const seen: string[] = [];
      const expected = total - (after ? log.findIndex((e) => e.position === after) + 1 : 0);
      for await (const event of store.subscribeToAll({ ...(after ? { after } : {}), signal: stop.signal })) {
        seen.push(event.id);
        if (seen.length === expected) break;
      }
      return { s, seen };
    });
    await append(90);
    const full: string[] = [];
    for await (const event of store.readAll()) full.push(event.id);
    for (const { s, seen } of await Promise.all(received)) {
      const after = starts[s];
      const from = after ? log.findIndex((e) => e.position === after) + 1 : 0;
      expect(seen).toEqual(full.slice(from));
    }
    stop.abort();
    await store.close();
  });
});

describe('SharedTailEventStore with a subscriber far behind', () => {
  /** The memory store, counting the events its subscriptions hand out (the shared reader's reads). */
  class CountingStore extends MemoryEventStore {
    delivered = 0;
    override subscribeToAll(options?: SubscribeOptions): AsyncIterable<RecordedEvent> {
      const events = super.subscribeToAll(options);
      const count = () => (this.delivered += 1);
      return {
        async *[Symbol.asyncIterator]() {
          for await (const event of events) {
            count();
            yield event;
          }
        },
      };
    }
  }

  it('does not hold a caught-up subscriber back while one that subscribed first from the first event catches up', async () => {
    const inner = new CountingStore();
    const store = new SharedTailEventStore(inner, { bufferSize: 100, catchUpPage: 50 });
    for (let i = 0; i < 20; i += 1) {
      await store.appendToStream(`s-${i}`, Array.from({ length: 1_000 }, (_, j) => ({ id: randomUUID(), type: 'E', data: { j }, metadata: {} })));
    }
    const { position: head } = await store.appendToStream('head', [{ id: randomUUID(), type: 'E', data: {}, metadata: {} }]);
    const stop = new AbortController();
    // A rebuild from the first event subscribes first, and takes its time.
    const rebuild = store.subscribeToAll({ signal: stop.signal })[Symbol.asyncIterator]();
    await rebuild.next();
    const live = store.subscribeToAll({ after: head, signal: stop.signal })[Symbol.asyncIterator]();
    const next = live.next();
    const { position: fresh } = await store.appendToStream('fresh', [{ id: randomUUID(), type: 'E', data: {}, metadata: {} }]);
    const received = await next;

    expect(received.done ? undefined : received.value.position).toEqual(fresh);
    // The shared reader went to the live subscriber's place, not through the 20,000 events before it.
    expect(inner.delivered).toBeLessThan(1_000);
    // And the rebuild still gets every event, in order.
    let seen = 1;
    for (let event = await rebuild.next(); !event.done; event = await rebuild.next()) {
      seen += 1;
      if (comparePositions(event.value.position, fresh) === 0) break;
    }
    expect(seen).toBe(20_002);
    stop.abort();
    await store.close();
  });
});

describe('SharedTailEventStore when a subscriber starts past the shared reader', () => {
  /** The memory store, whose subscription from `lagFrom`'s position hands nothing out until `release`: a shared reader running late. */
  class LaggingStore extends MemoryEventStore {
    private lagging: Position | undefined;
    private released: Promise<void> = Promise.resolve();
    release: () => void = () => undefined;

    lagFrom(after: Position): void {
      this.lagging = after;
      this.released = new Promise((resolve) => (this.release = resolve));
    }

    override subscribeToAll(options: SubscribeOptions = {}): AsyncIterable<RecordedEvent> {
      const events = super.subscribeToAll(options);
      const lags = this.lagging !== undefined && options.after !== undefined && comparePositions(options.after, this.lagging) === 0;
      const released = () => this.released;
      return {
        async *[Symbol.asyncIterator]() {
          for await (const event of events) {
            if (lags) await released();
            yield event;
          }
        },
      };
    }
  }

  const append = (store: EventStore, n: number) =>
    Array.from({ length: n }).reduce<Promise<unknown>>(
      (previous) => previous.then(() => store.appendToStream(`s-${randomUUID()}`, [{ id: randomUUID(), type: 'E', data: {}, metadata: {} }])),
      Promise.resolve(),
    );

  it('wakes the caught-up subscribers it leaves behind, which catch up from the store at once, not at the next append', async () => {
    const inner = new LaggingStore();
    const store = new SharedTailEventStore(inner, { bufferSize: 100, catchUpPage: 50 });
    const stop = new AbortController();
    const log = async () => {
      const events: RecordedEvent[] = [];
      for await (const event of store.readAll()) events.push(event);
      return events;
    };
    const positionOf = async (n: number) => {
      const event = (await log())[n - 1];
      if (!event) throw new Error(`there is no event ${n}`);
      return event.position;
    };
    try {
      await append(store, 10);
      const tenth = await positionOf(10);
      // Given a subscriber caught up at the tenth event, whose shared reader runs late,
      inner.lagFrom(tenth);
      const seen: RecordedEvent[] = [];
      const following = (async () => {
        for await (const event of store.subscribeToAll({ after: tenth, signal: stop.signal })) seen.push(event);
      })();
      await sleep(20);
      await append(store, 5);
      // when another subscriber starts after the fifteenth, moving the shared reader past them,
      const late = store.subscribeToAll({ after: await positionOf(15), signal: stop.signal })[Symbol.asyncIterator]();
      const lateFirst = late.next();

      // then the first one gets the five events in between without waiting for another append,
      await eventually(async () => seen.length >= 5, 2_000, 'the five events after the tenth');
      // and, the late reader let go and one more appended, every event exactly once, in order.
      inner.release();
      await append(store, 1);
      await eventually(async () => seen.length >= 6, 2_000, 'the sixteenth event');
      await sleep(20);
      const all = await log();
      expect(seen.map((event) => event.id)).toEqual(all.slice(10).map((event) => event.id));
      const first = await lateFirst;
      expect(first.done ? undefined : first.value.id).toBe(all[15]?.id);
      stop.abort();
      await following;
    } finally {
      stop.abort();
      await store.close();
    }
  });
});
