import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/application/ports/event-store.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { batchEvents } from '../../src/projections/runtime/event-batches.js';
import { sleep } from '../../src/application/sleep.js';

async function append(store: MemoryEventStore, count: number): Promise<void> {
  const events = Array.from({ length: count }, () => ({ id: randomUUID(), type: 'Counted', data: {}, metadata: {} }));
  await store.appendToStream(`s-${randomUUID()}`, events);
}

/** Collects batches in the background until `take` of them arrived. */
function collect(source: AsyncGenerator<RecordedEvent[]>, take: number): Promise<RecordedEvent[][]> {
  return (async () => {
    const batches: RecordedEvent[][] = [];
    for await (const batch of source) {
      batches.push(batch);
      if (batches.length === take) break;
    }
    return batches;
  })();
}

describe('batchEvents', () => {
  it('fills batches to their size while catching up', async () => {
    const store = new MemoryEventStore();
    await append(store, 250);
    const controller = new AbortController();
    const batches = await collect(batchEvents(store.subscribeToAll({ signal: controller.signal }), { size: 100, maxWaitMs: 20 }), 3);
    controller.abort();
    expect(batches.map((batch) => batch.length)).toEqual([100, 100, 50]);
    expect(batches.flat().map((event) => event.position.commit)).toEqual(Array.from({ length: 250 }, (_, i) => BigInt(i + 1)));
  });

  it('closes a live batch after its maximum wait, without losing the event that arrives later', async () => {
    const store = new MemoryEventStore();
    const controller = new AbortController();
    const collecting = collect(batchEvents(store.subscribeToAll({ signal: controller.signal }), { size: 100, maxWaitMs: 30 }), 2);
    await append(store, 2);
    await sleep(80);
    await append(store, 1);
    const batches = await collecting;
    controller.abort();
    expect(batches.map((batch) => batch.map((event) => event.position.commit))).toEqual([[1n, 2n], [3n]]);
  });

  it('counts the wait of events that arrived during the previous batch from its hand-over: behind a slow commit, no full wait on top', async () => {
    const store = new MemoryEventStore();
    const controller = new AbortController();
    const source = batchEvents(store.subscribeToAll({ signal: controller.signal }), { size: 100, maxWaitMs: 200 });
    await append(store, 1);
    expect((await source.next()).value).toHaveLength(1);
    // The consumer commits for longer than the batches' maximum wait; events come meanwhile.
    await append(store, 2);
    await sleep(250);
    await append(store, 1);
    const asked = performance.now();
    const next = await source.next();
    const tookMs = performance.now() - asked;
    controller.abort();
    expect(next.value).toHaveLength(3);
    // They have waited longer than 200 ms already: the batch is handed over at once.
    expect(tookMs).toBeLessThan(100);
  });

  it('hands over the items the source gave before it threw as a batch, then throws', async () => {
    async function* source() {
      yield 1;
      yield 2;
      throw new Error('the third could not be read');
    }
    const batches = batchEvents(source(), { size: 10, maxWaitMs: 50 });
    expect(await batches.next()).toEqual({ done: false, value: [1, 2] });
    await expect(batches.next()).rejects.toThrow('the third could not be read');
  });

  it('yields an empty batch as a heartbeat when idle, and ends when the subscription is aborted', async () => {
    const store = new MemoryEventStore();
    const controller = new AbortController();
    const source = batchEvents(store.subscribeToAll({ signal: controller.signal }), { size: 10, maxWaitMs: 5, idleMs: 20 });
    const first = await source.next();
    expect(first).toEqual({ done: false, value: [] });
    await append(store, 1);
    expect((await source.next()).value).toHaveLength(1);
    controller.abort();
    // A heartbeat may still be on its way; after it, the iteration ends.
    let next = await source.next();
    if (!next.done) next = await source.next();
    expect(next.done).toBe(true);
  });
});
