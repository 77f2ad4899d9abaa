import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Aggregate } from '../../src/application/command-handling/aggregate.js';
import { createEventCodec } from '../../src/application/command-handling/event-codec.js';
import { commandHandler, type CommandObservation } from '../../src/application/command-handling/handle-command.js';
import { streamQueue } from '../../src/application/command-handling/stream-queue.js';
import type { CommandContext } from '../../src/application/metadata.js';
import type { Decider } from '../../src/domain/shared/decider.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { eventTypes } from '../support/command-side.js';

/** A promise settled from outside, to hold a task until the test lets it go. */
function deferred<T>() {
  let resolve: (value: T) => void = () => undefined;
  let reject: (reason: unknown) => void = () => undefined;
  const promise = new Promise<T>((yes, no) => ((resolve = yes), (reject = no)));
  return { promise, resolve, reject };
}

describe('the per-stream queue', () => {
  it('runs tasks on one stream one after the other, in arrival order, and forgets the stream once idle', async () => {
    const queue = streamQueue();
    const first = deferred<string>();
    const ran: string[] = [];

    const a = queue.run('s', async () => (ran.push('a'), first.promise));
    const b = queue.run('s', async () => (ran.push('b'), 'b'));
    await Promise.resolve();
    expect({ ran, size: queue.size }).toEqual({ ran: ['a'], size: 1 });

    first.resolve('a');
    expect(await Promise.all([a, b])).toEqual(['a', 'b']);
    expect({ ran, size: queue.size }).toEqual({ ran: ['a', 'b'], size: 0 });
  });

  it('a failing task does not block the next one on its stream; the stream is forgotten afterwards', async () => {
    const queue = streamQueue();
    const failing = deferred<string>();

    const a = queue.run('s', () => failing.promise);
    const b = queue.run('s', async () => 'b');
    failing.reject(new Error('refused'));

    await expect(a).rejects.toThrow('refused');
    await expect(b).resolves.toBe('b');
    await Promise.resolve();
    expect(queue.size).toBe(0);
  });

  it('a task that never settles holds the next one on its stream back for the bound only, which then runs; the stream is forgotten once that one settles', async () => {
    const queue = streamQueue({ maxWaitMs: 50 });
    const ran: string[] = [];
    const started = performance.now();

    void queue.run('s', () => new Promise<string>(() => undefined));
    const next = queue.run('s', async () => (ran.push('next'), 'next'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual([]);

    await expect(next).resolves.toBe('next');
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(45);
    expect(waited).toBeLessThan(1_000);
    expect(queue.size).toBe(0);
  });

  it('tasks held past the bound still start in arrival order', async () => {
    const queue = streamQueue({ maxWaitMs: 20 });
    const ran: string[] = [];

    void queue.run('s', () => new Promise<string>(() => undefined));
    const rest = ['b', 'c', 'd'].map((name) => queue.run('s', async () => (ran.push(name), name)));

    expect(await Promise.all(rest)).toEqual(['b', 'c', 'd']);
    expect(ran).toEqual(['b', 'c', 'd']);
    expect(queue.size).toBe(0);
  });

  it('a waiter whose turn comes before the bound leaves no timer running', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
    const before = timers();
    const queue = streamQueue({ maxWaitMs: 60_000 });
    const first = deferred<string>();

    const a = queue.run('s', () => first.promise);
    const rest = Array.from({ length: 5 }, (_, i) => queue.run('s', async () => `q${i}`));
    first.resolve('a');
    await Promise.all([a, ...rest]);

    expect(timers()).toBe(before);
    expect(queue.size).toBe(0);
  });

  it('tasks on different streams do not wait for each other', async () => {
    const queue = streamQueue();
    const held = deferred<string>();

    const a = queue.run('s', () => held.promise);
    await expect(queue.run('t', async () => 't')).resolves.toBe('t');
    held.resolve('s');
    await expect(a).resolves.toBe('s');
    expect(queue.size).toBe(0);
  });
});

// A counter with a ceiling, as in handle-command.test.ts.
const incrementedSchema = z.discriminatedUnion('type', [z.object({ type: z.literal('Incremented'), data: z.object({ by: z.number().int() }) })]);
type Increment = { type: 'Increment'; data: { by: number } };
const decider: Decider<Increment, z.infer<typeof incrementedSchema>, { status: 'counting'; total: number }> = {
  initialState: { status: 'counting', total: 0 },
  decide: (command, state) => {
    if (state.total + command.data.by > 10) throw new DomainError('ceiling-reached', 'counter is full');
    return [{ type: 'Incremented', data: { by: command.data.by } }];
  },
  evolve: (state, event) => ({ status: 'counting', total: state.total + event.data.by }),
};
const counter: Aggregate<Increment, z.infer<typeof incrementedSchema>, { status: 'counting'; total: number }> = {
  category: 'counter',
  decider,
  codec: createEventCodec(incrementedSchema, []),
};
const context: CommandContext = { actor: { id: 'user-1', roles: ['CONSUMER'] }, requestId: 'r', correlationId: 'r', causationId: 'r' };
const increment = (by: number): Increment => ({ type: 'Increment', data: { by } });

describe('commands on one stream in one process', () => {
  it('given 30 concurrent increments on one counter, when handled, then each decides after the one before it: 10 appended, 20 refused by the rule, none conflicting', async () => {
    const eventStore = new MemoryEventStore();
    const outcomes: CommandObservation['outcome'][] = [];
    const { handle } = commandHandler(counter, { eventStore, clock: { now: () => new Date() }, observe: (seen) => outcomes.push(seen.outcome), maxAttempts: 1 });

    // 10 fit under the ceiling; the rest are refused by the rule, each deciding on the latest total.
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => handle('counter-a', increment(1), { commandId: `c${i}`, context })));

    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(10);
    expect(outcomes.filter((outcome) => outcome === 'accepted')).toHaveLength(10);
    expect(outcomes.filter((outcome) => outcome === 'rejected')).toHaveLength(20);
    expect(await eventTypes(eventStore, 'counter-a')).toHaveLength(10);
  });

  it('given a command refused by a rule, when the next command on the stream comes, then it is handled', async () => {
    const eventStore = new MemoryEventStore();
    const { handle } = commandHandler(counter, { eventStore, clock: { now: () => new Date() } });

    const [refused, next] = await Promise.allSettled([
      handle('counter-b', increment(11), { commandId: 'too-much', context }),
      handle('counter-b', increment(1), { commandId: 'one', context }),
    ]);

    expect(refused).toMatchObject({ status: 'rejected', reason: { code: 'ceiling-reached' } });
    expect(next).toMatchObject({ status: 'fulfilled', value: { version: 0, state: { total: 1 } } });
  });
});
