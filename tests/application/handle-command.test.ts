import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { verifyChain } from '../../src/application/audit/hash-chain.js';
import type { Aggregate } from '../../src/application/command-handling/aggregate.js';
import { VersionMismatchError } from '../../src/application/command-handling/errors.js';
import { createEventCodec } from '../../src/application/command-handling/event-codec.js';
import { commandHandler } from '../../src/application/command-handling/handle-command.js';
import type { CommandContext } from '../../src/application/metadata.js';
import type { Decider } from '../../src/domain/shared/decider.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';

// A counter with a ceiling: small enough to read at a glance, rich enough to race.
const counterEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('Incremented'), data: z.object({ by: z.number().int() }) }),
]);
type CounterEvent = z.infer<typeof counterEventSchema>;
type CounterCommand = { type: 'Increment'; data: { by: number } };
type CounterState = { status: 'counting'; total: number };

const counterDecider: Decider<CounterCommand, CounterEvent, CounterState> = {
  initialState: { status: 'counting', total: 0 },
  decide: (command, state) => {
    if (command.data.by === 0) return [];
    if (state.total + command.data.by > 1_000) throw new DomainError('ceiling-reached', 'counter is full');
    return [{ type: 'Incremented', data: { by: command.data.by } }];
  },
  evolve: (state, event) => ({ status: 'counting', total: state.total + event.data.by }),
};

// v1 stored the increment as `amount`; v2 calls it `by`.
const counter: Aggregate<CounterCommand, CounterEvent, CounterState> = {
  category: 'counter',
  decider: counterDecider,
  codec: createEventCodec(counterEventSchema, [
    { type: 'Incremented', fromVersion: 1, toVersion: 2, upcast: (data) => ({ by: z.object({ amount: z.number() }).parse(data).amount }) },
  ]),
};

const context: CommandContext = {
  actor: { id: 'user-1', roles: ['CONSUMER'] },
  requestId: 'req-1',
  correlationId: 'corr-1',
  causationId: 'req-1',
};
const clock = { now: () => new Date('2026-01-01T00:00:00Z') };
const increment = (by: number): CounterCommand => ({ type: 'Increment', data: { by } });

function setup() {
  const eventStore = new MemoryEventStore();
  return { eventStore, handle: commandHandler(counter, { eventStore, clock }).handle };
}

async function storedEvents(store: MemoryEventStore, streamId: string) {
  const read = await store.readStream(streamId);
  const events = [];
  if (read.status === 'found') for await (const event of read.events) events.push(event);
  return events;
}

describe('the command-handling loop', () => {
  it('appends what the decider decides, with metadata and the current schema version', async () => {
    const { eventStore, handle } = setup();
    const result = await handle('counter-a', increment(2), { commandId: 'c1', context });

    expect(result).toMatchObject({ streamId: 'counter-a', version: 0, state: { total: 2 }, alreadyApplied: false });
    const [event] = await storedEvents(eventStore, 'counter-a');
    expect(event?.position).toEqual(result.position);
    expect(event?.metadata).toEqual({
      actorId: 'user-1',
      actorRoles: ['CONSUMER'],
      correlationId: 'corr-1',
      causationId: 'req-1',
      requestId: 'req-1',
      occurredAt: '2026-01-01T00:00:00.000Z',
      schemaVersion: 2,
      // The audit chain (src/application/audit/hash-chain.ts), version 2: the first event links to the genesis hash.
      chainVersion: 2,
      prevHash: '0'.repeat(64),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('recognises a retried command by its id and appends nothing twice', async () => {
    const { eventStore, handle } = setup();
    const first = await handle('counter-a', increment(2), { commandId: 'same', context });
    const retry = await handle('counter-a', increment(2), { commandId: 'same', context });

    expect(retry).toMatchObject({ version: first.version, position: first.position, alreadyApplied: true });
    expect(await storedEvents(eventStore, 'counter-a')).toHaveLength(1);
  });

  it('appends nothing when the decider has nothing to say', async () => {
    const { eventStore, handle } = setup();
    const result = await handle('counter-a', increment(0), { commandId: 'c1', context });
    expect(result.version).toBe(-1);
    expect((await eventStore.readStream('counter-a')).status).toBe('no_stream');
  });

  it('passes rule violations through untouched', async () => {
    const { handle } = setup();
    await expect(handle('counter-a', increment(1_001), { commandId: 'c1', context })).rejects.toMatchObject({
      code: 'ceiling-reached',
    });
  });

  it('refuses a pinned version the stream has moved past', async () => {
    const { handle } = setup();
    await handle('counter-a', increment(1), { commandId: 'c1', context });
    await handle('counter-a', increment(1), { commandId: 'c2', context });
    const stale = handle('counter-a', increment(1), { commandId: 'c3', context, expectedVersion: 0 });
    await expect(stale).rejects.toBeInstanceOf(VersionMismatchError);
    await expect(stale).rejects.toMatchObject({ expected: 0, actual: 1 });
  });

  it('re-decides on a concurrent append, so no update is lost', async () => {
    const eventStore = new MemoryEventStore();
    // Separate handlers have separate caches, like separate processes.
    const handlers = Array.from({ length: 20 }, () => commandHandler(counter, { eventStore, clock }).handle);
    await Promise.all(handlers.map((handle, i) => handle('counter-a', increment(1), { commandId: `c${i}`, context })));

    const events = await storedEvents(eventStore, 'counter-a');
    expect(events.map((event) => event.revision)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const final = await handlers[0]?.('counter-a', increment(0), { commandId: 'read', context });
    expect(final?.state.total).toBe(20);
  });

  it('re-decides against the fresh state when the race makes a rule fail', async () => {
    const eventStore = new MemoryEventStore();
    const a = commandHandler(counter, { eventStore, clock }).handle;
    const b = commandHandler(counter, { eventStore, clock }).handle;
    await a('counter-a', increment(600), { commandId: 'warm-a', context });
    await b('counter-a', increment(0), { commandId: 'warm-b', context });
    const results = await Promise.allSettled([
      a('counter-a', increment(300), { commandId: 'a', context }),
      b('counter-a', increment(300), { commandId: 'b', context }),
    ]);
    // 600 + 300 + 300 would pass the ceiling: exactly one may win.
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
  });

  it('sees what another process appended since its cached state', async () => {
    const eventStore = new MemoryEventStore();
    const a = commandHandler(counter, { eventStore, clock }).handle;
    const b = commandHandler(counter, { eventStore, clock }).handle;
    await a('counter-a', increment(5), { commandId: 'c1', context });
    await b('counter-a', increment(7), { commandId: 'c2', context });
    const result = await a('counter-a', increment(1), { commandId: 'c3', context });
    expect(result).toMatchObject({ version: 2, state: { total: 13 } });
  });

  it('upcasts events stored in an older shape when it reads them', async () => {
    const { eventStore, handle } = setup();
    await eventStore.appendToStream('counter-old', [
      { id: randomUUID(), type: 'Incremented', data: { amount: 4 }, metadata: { schemaVersion: 1 } },
    ]);
    const result = await handle('counter-old', increment(1), { commandId: 'c1', context });
    expect(result.state.total).toBe(5);
  });

  it('reports every outcome to its observer', async () => {
    const eventStore = new MemoryEventStore();
    const seen: string[] = [];
    const { handle } = commandHandler(counter, { eventStore, clock, observe: (o) => seen.push(`${o.command}:${o.outcome}`) });
    await handle('counter-a', increment(1), { commandId: 'c1', context });
    await handle('counter-a', increment(1), { commandId: 'c1', context });
    await handle('counter-a', increment(0), { commandId: 'c2', context });
    await handle('counter-a', increment(5_000), { commandId: 'c3', context }).catch(() => undefined);
    await handle('counter-a', increment(1), { commandId: 'c4', context, expectedVersion: 7 }).catch(() => undefined);
    expect(seen).toEqual(['Increment:accepted', 'unknown:already-applied', 'Increment:unchanged', 'Increment:rejected', 'unknown:conflict-returned']);
  });

  it('recognises a command applied further back than it remembers, by the store answering with the original result', async () => {
    const eventStore = new MemoryEventStore();
    const first = await commandHandler(counter, { eventStore, clock }).handle('counter-a', increment(1), { commandId: 'old', context });
    const busy = commandHandler(counter, { eventStore, clock });
    for (let i = 0; i < 100; i++) await busy.handle('counter-a', increment(1), { commandId: `n${i}`, context });
    const retry = await busy.handle('counter-a', increment(1), { commandId: 'old', context });
    expect(retry).toMatchObject({ version: first.version, alreadyApplied: true });
    expect((await busy.read('counter-a')).state.total).toBe(101);
  });

  it('recognises a command applied further back than it remembers when its retry decides more events than it did', async () => {
    // A retry decides on the state as it is now, here two events where the original decided one:
    // the store holds the first event's id only, and refuses the append as a partial duplicate.
    const twoOnceBusy: typeof counter = {
      ...counter,
      decider: {
        ...counterDecider,
        decide: (command, state) => (state.total >= 50 ? [{ type: 'Incremented', data: { by: 0 } }, ...counterDecider.decide(command, state)] : counterDecider.decide(command, state)),
      },
    };
    const eventStore = new MemoryEventStore();
    await commandHandler(twoOnceBusy, { eventStore, clock }).handle('counter-a', increment(1), { commandId: 'old', context });
    const busy = commandHandler(twoOnceBusy, { eventStore, clock });
    for (let i = 0; i < 100; i++) await busy.handle('counter-a', increment(1), { commandId: `n${i}`, context });
    const stored = (await storedEvents(eventStore, 'counter-a')).length;

    const retry = await busy.handle('counter-a', increment(1), { commandId: 'old', context });

    expect(retry).toMatchObject({ alreadyApplied: true, events: [], state: { total: 101 } });
    expect(await storedEvents(eventStore, 'counter-a')).toHaveLength(stored);
  });

  it('answers a copy of a command racing it as already applied, and keeps only what was stored', async () => {
    // A double click or a redelivered webhook: one command id, two requests reading the stream
    // at the same revision. The store keeps the first append; the copy must not be taken for one.
    const { eventStore, handle } = setup();
    await handle('counter-a', increment(1), { commandId: 'before', context });
    const copies = await Promise.all(
      [10, 20].map((by, copy) => handle('counter-a', increment(by), { commandId: 'twice', context: { ...context, requestId: `req-${copy}` } })),
    );

    expect(copies.map((result) => result.alreadyApplied).sort()).toEqual([false, true]);
    const stored = await storedEvents(eventStore, 'counter-a');
    // Both answer with the state the stream is in, the one copy's increment included.
    const total = stored.reduce((sum, event) => sum + Number(event.data.by), 0);
    expect(copies.map((result) => result.state.total)).toEqual([total, total]);
    const next = await handle('counter-a', increment(100), { commandId: 'after', context });
    expect(next.state.total).toBe(stored.reduce((total, event) => total + Number(event.data.by), 0) + 100);
    expect(await verifyChain(await storedEvents(eventStore, 'counter-a'))).toMatchObject({ status: 'intact', eventsChecked: 3 });
  });

  describe('with a fresh command id (no Idempotency-Key)', () => {
    function counting(store: MemoryEventStore) {
      let reads = 0;
      const counted = Object.assign(Object.create(store) as MemoryEventStore, {
        readStream: (...args: Parameters<MemoryEventStore['readStream']>) => {
          reads++;
          return store.readStream(...args);
        },
      });
      return { store: counted, reads: () => reads };
    }

    it('creates a stream it has never seen without reading it first', async () => {
      const memory = new MemoryEventStore();
      const { store, reads } = counting(memory);
      const { handle } = commandHandler(counter, { eventStore: store, clock });
      const result = await handle('counter-new', increment(3), { commandId: 'fresh-1', context, freshCommandId: true });
      expect(result).toMatchObject({ version: 0, state: { total: 3 }, alreadyApplied: false });
      expect(reads()).toBe(0);
    });

    it('falls back to reading when the stream exists after all, and decides on its real state', async () => {
      const eventStore = new MemoryEventStore();
      await commandHandler(counter, { eventStore, clock }).handle('counter-a', increment(999), { commandId: 'elsewhere', context });
      const { handle } = commandHandler(counter, { eventStore, clock });
      await expect(handle('counter-a', increment(5), { commandId: 'fresh-2', context, freshCommandId: true })).rejects.toMatchObject({
        code: 'ceiling-reached',
      });
      const accepted = await handle('counter-a', increment(1), { commandId: 'fresh-3', context, freshCommandId: true });
      expect(accepted).toMatchObject({ version: 1, state: { total: 1000 } });
      expect(await storedEvents(eventStore, 'counter-a')).toHaveLength(2);
    });

    it('appends to a stream it holds in its cache without reading it again', async () => {
      const { store, reads } = counting(new MemoryEventStore());
      const { handle } = commandHandler(counter, { eventStore: store, clock });
      await handle('counter-a', increment(3), { commandId: 'fresh-1', context, freshCommandId: true });
      const result = await handle('counter-a', increment(4), { commandId: 'fresh-2', context, freshCommandId: true });
      expect(result).toMatchObject({ version: 1, state: { total: 7 }, alreadyApplied: false });
      expect(reads()).toBe(0);
    });

    it('reads the tail when another process appended since its cached state, and decides on the real state', async () => {
      const memory = new MemoryEventStore();
      const { store, reads } = counting(memory);
      const { handle } = commandHandler(counter, { eventStore: store, clock });
      await handle('counter-a', increment(5), { commandId: 'fresh-1', context, freshCommandId: true });
      await commandHandler(counter, { eventStore: memory, clock }).handle('counter-a', increment(7), { commandId: 'elsewhere', context });
      const result = await handle('counter-a', increment(1), { commandId: 'fresh-2', context, freshCommandId: true });
      expect(result).toMatchObject({ version: 2, state: { total: 13 } });
      expect(reads()).toBe(1);
      expect((await storedEvents(memory, 'counter-a')).map((event) => event.data)).toEqual([{ by: 5 }, { by: 7 }, { by: 1 }]);
    });

    it('does not refuse on a stale cached state: it reads the real one and decides again', async () => {
      const memory = new MemoryEventStore();
      const { handle } = commandHandler(counter, { eventStore: memory, clock });
      await handle('counter-a', increment(999), { commandId: 'fresh-1', context, freshCommandId: true });
      await commandHandler(counter, { eventStore: memory, clock }).handle('counter-a', increment(-500), { commandId: 'elsewhere', context });
      // 999 + 5 would pass the ceiling; the real total, 499 + 5, does not.
      const result = await handle('counter-a', increment(5), { commandId: 'fresh-2', context, freshCommandId: true });
      expect(result).toMatchObject({ version: 2, state: { total: 504 } });
    });
  });
});
