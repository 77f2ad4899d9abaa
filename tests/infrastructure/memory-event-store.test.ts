import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  DuplicateEventError,
  type NewEvent,
  type RecordedEvent,
} from '../../src/application/ports/event-store.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';

const event = (type = 'ThingHappened'): NewEvent => ({ id: randomUUID(), type, data: { n: 1 }, metadata: {} });

async function collect(events: AsyncIterable<RecordedEvent>): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for await (const recorded of events) all.push(recorded);
  return all;
}

describe('MemoryEventStore', () => {
  it('returns the original result for a retried batch, even with a stale expected revision', async () => {
    const store = new MemoryEventStore();
    const batch = [event(), event()];
    const first = await store.appendToStream('thing-1', batch, { expectedRevision: 'no_stream' });
    await store.appendToStream('thing-1', [event()], { expectedRevision: 1 });

    const retry = await store.appendToStream('thing-1', batch, { expectedRevision: 'no_stream' });

    expect(retry).toEqual({ ...first, written: false });
    expect(first).toEqual({ revision: 1, position: { commit: 2n, prepare: 2n }, written: true });
  });

  it('rejects a partial repeat and a wrong expected revision', async () => {
    const store = new MemoryEventStore();
    const old = event();
    await store.appendToStream('thing-1', [old]);

    await expect(store.appendToStream('thing-1', [old, event()])).rejects.toEqual(
      new DuplicateEventError('thing-1', [old.id]),
    );
    await expect(store.appendToStream('thing-1', [event()], { expectedRevision: 3 })).rejects.toMatchObject({
      name: 'ConcurrencyError',
      expected: 3,
      actual: 0,
    });
    await expect(store.appendToStream('thing-2', [event()], { expectedRevision: 'stream_exists' })).rejects.toBeInstanceOf(
      ConcurrencyError,
    );
  });

  it('reads a stream backwards from a revision, and says when there is none', async () => {
    const store = new MemoryEventStore();
    await store.appendToStream('thing-1', [event('A'), event('B'), event('C')]);

    const result = await store.readStream('thing-1', { from: 1, direction: 'backwards', maxCount: 5 });

    expect(await store.readStream('thing-2')).toEqual({ status: 'no_stream' });
    if (result.status !== 'found') throw new Error('expected the stream');
    expect((await collect(result.events)).map((e) => e.type)).toEqual(['B', 'A']);
  });

  it('reads $all after a position, filtered', async () => {
    const store = new MemoryEventStore();
    const { position } = await store.appendToStream('a-1', [event('A')]);
    await store.appendToStream('b-1', [event('B')]);
    await store.appendToStream('a-2', [event('A'), event('C')]);

    const read = await collect(store.readAll({ after: position, filter: { streamPrefixes: ['a-'], eventTypes: ['A'] } }));

    expect(read.map((e) => [e.streamId, e.type])).toEqual([['a-2', 'A']]);
  });

  it('subscribes with catch-up then live, and ends when aborted', async () => {
    const store = new MemoryEventStore();
    await store.appendToStream('a-1', [event('A')]);
    const controller = new AbortController();
    const seen: string[] = [];

    const subscription = (async () => {
      for await (const recorded of store.subscribeToAll({ signal: controller.signal })) {
        seen.push(recorded.type);
        if (seen.length === 2) controller.abort();
      }
    })();
    await store.appendToStream('a-1', [event('B')]);
    await subscription;

    expect(seen).toEqual(['A', 'B']);
  });

  it('ends an idle subscription promptly when aborted', async () => {
    const store = new MemoryEventStore();
    const controller = new AbortController();
    const subscription = collect(store.subscribeToAll({ signal: controller.signal }));

    setTimeout(() => controller.abort(), 5);

    await expect(subscription).resolves.toEqual([]);
  });
});
