import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  DuplicateEventError,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeOptions,
} from '../../src/application/ports/event-store.js';
import { comparePositions, START, type Position } from '../../src/application/ports/position.js';
import { sleep } from '../../src/application/sleep.js';

export type ContractSetup = () => Promise<{ store: EventStore; teardown: () => Promise<void> }>;

/**
 * The EventStore port's contract, run against every adapter. One store serves the whole suite,
 * so each test works in streams of its own (a fresh prefix) and reads `$all` filtered to them.
 *
 * `readAll` and subscriptions may lag a moment behind an append that has returned (PostgreSQL
 * reads only below the oldest transaction still running anywhere on the server), so tests wait
 * for what they expect instead of reading once, and check that every partial answer is a
 * prefix of the final one.
 */
export function describeEventStoreContract(name: string, setup: ContractSetup): void {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;
    let teardown: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      ({ store, teardown } = await setup());
    });
    afterAll(async () => {
      await teardown?.();
    });

    describe('expected revision', () => {
      type Case = {
        readonly title: string;
        readonly existing: number;
        readonly expected: ExpectedRevision | undefined;
        readonly actual: number | 'no_stream';
        readonly succeeds: boolean;
      };
      const cases: Case[] = [
        { title: 'no_stream on a new stream', existing: 0, expected: 'no_stream', actual: 'no_stream', succeeds: true },
        { title: 'no_stream on an existing stream', existing: 2, expected: 'no_stream', actual: 1, succeeds: false },
        { title: 'stream_exists on an existing stream', existing: 1, expected: 'stream_exists', actual: 0, succeeds: true },
        { title: 'stream_exists on a new stream', existing: 0, expected: 'stream_exists', actual: 'no_stream', succeeds: false },
        { title: 'any on a new stream', existing: 0, expected: 'any', actual: 'no_stream', succeeds: true },
        { title: 'any on an existing stream', existing: 3, expected: 'any', actual: 2, succeeds: true },
        { title: 'no option (any) on an existing stream', existing: 1, expected: undefined, actual: 0, succeeds: true },
        { title: 'the exact revision', existing: 3, expected: 2, actual: 2, succeeds: true },
        { title: 'an exact revision behind the stream', existing: 3, expected: 1, actual: 2, succeeds: false },
        { title: 'an exact revision ahead of the stream', existing: 3, expected: 3, actual: 2, succeeds: false },
        { title: 'an exact revision on a new stream', existing: 0, expected: 0, actual: 'no_stream', succeeds: false },
      ];

      it.each(cases)('$title', async ({ existing, expected, actual, succeeds }) => {
        const streamId = newStreamId('expected');
        if (existing > 0) await store.appendToStream(streamId, events(existing));
        const batch = events(2);
        const append = store.appendToStream(streamId, batch, expected === undefined ? {} : { expectedRevision: expected });

        if (succeeds) {
          const next = actual === 'no_stream' ? 0 : actual + 1;
          expect(await append).toMatchObject({ revision: next + 1 });
          expect(await revisionsOf(streamId)).toEqual(range(0, next + 2));
        } else {
          const error = await append.then(
            () => undefined,
            (caught: unknown) => caught,
          );
          expect(error).toBeInstanceOf(ConcurrencyError);
          expect(error).toMatchObject({ streamId, expected, actual });
          // A refused append writes nothing.
          expect(await revisionsOf(streamId)).toEqual(range(0, existing));
        }
      });
    });

    describe('appending', () => {
      it('numbers revisions from 0 without gaps and positions in append order', async () => {
        const streamId = newStreamId('numbering');
        const first = await store.appendToStream(streamId, events(3), { expectedRevision: 'no_stream' });
        const second = await store.appendToStream(streamId, events(2), { expectedRevision: 2 });

        expect(first.revision).toBe(2);
        expect(second.revision).toBe(4);
        expect(comparePositions(first.position, second.position)).toBe(-1);
        const stored = await readStreamEvents(streamId);
        expect(stored.map((event) => event.revision)).toEqual([0, 1, 2, 3, 4]);
        expectIncreasingPositions(stored);
        expect(stored[2]?.position).toEqual(first.position);
        expect(stored[4]?.position).toEqual(second.position);
      });

      it('stores what it was given, with the stream, the store clock and bigint positions', async () => {
        const streamId = newStreamId('fields');
        const event: NewEvent = { id: randomUUID(), type: 'ThingHappened', data: { a: 1, b: [true, null, 'x'], c: { d: 2.5 } }, metadata: { actorId: 'u-1' } };
        const before = Date.now();
        await store.appendToStream(streamId, [event]);
        const [stored] = await readStreamEvents(streamId);

        expect(stored).toMatchObject({ ...event, streamId, revision: 0 });
        expect(typeof stored?.position.commit).toBe('bigint');
        expect(typeof stored?.position.prepare).toBe('bigint');
        expect(stored?.recordedAt).toBeInstanceOf(Date);
        // Generous bounds: the store's clock is not the test's, only close to it.
        expect(stored?.recordedAt.getTime()).toBeGreaterThan(before - 60_000);
        expect(stored?.recordedAt.getTime()).toBeLessThan(Date.now() + 60_000);
      });

      it('rejects an empty batch', async () => {
        await expect(store.appendToStream(newStreamId('empty'), [])).rejects.toBeInstanceOf(RangeError);
      });

      it('refuses a stream named like the store\'s own ($-prefixed), and reads one as missing', async () => {
        const streamId = `$${newStreamId('system')}`;
        await expect(store.appendToStream(streamId, [newEvent('Planted')])).rejects.toBeInstanceOf(RangeError);
        expect(await store.readStream(streamId)).toEqual({ status: 'no_stream' });
      });

      it('rejects an expected revision that is no revision (negative, fractional), and appends nothing', async () => {
        const streamId = newStreamId('expected');
        await store.appendToStream(streamId, [newEvent('First')]);
        for (const expectedRevision of [-1, -2, -3, -7, 0.5, Number.NaN]) {
          await expect(store.appendToStream(streamId, [newEvent('Second')], { expectedRevision })).rejects.toBeInstanceOf(RangeError);
        }
        const read = await store.readStream(streamId);
        expect(read.status === 'found' ? (await collect(read.events)).map((event) => event.type) : []).toEqual(['First']);
      });
    });

    describe('idempotency', () => {
      it('returns the original result for a retried batch and writes nothing, even with a stale expected revision', async () => {
        const streamId = newStreamId('retry');
        const batch = events(3);
        const original = await store.appendToStream(streamId, batch, { expectedRevision: 'no_stream' });
        expect(original.written).toBe(true);
        await store.appendToStream(streamId, events(1), { expectedRevision: 2 });

        const retried = { ...original, written: false };
        expect(await store.appendToStream(streamId, batch, { expectedRevision: 'no_stream' })).toEqual(retried);
        expect(await store.appendToStream(streamId, batch, { expectedRevision: 'any' })).toEqual(retried);
        expect(await store.appendToStream(streamId, batch, { expectedRevision: 0 })).toEqual(retried);
        expect(await store.appendToStream(streamId, batch.slice(0, 1))).toEqual({
          revision: 0,
          position: (await readStreamEvents(streamId))[0]?.position,
          written: false,
        });
        expect(await revisionsOf(streamId)).toEqual([0, 1, 2, 3]);
      });

      it('returns the original result to concurrent retries of one batch', async () => {
        const streamId = newStreamId('concurrent-retry');
        const batch = events(2);
        const results = await Promise.all(range(0, 10).map(() => store.appendToStream(streamId, batch)));

        expect(new Set(results.map(({ revision, position }) => JSON.stringify({ revision, position }, bigintJson))).size).toBe(1);
        expect(await revisionsOf(streamId)).toEqual([0, 1]);
      });

      it('tells the one append whose events are stored from copies racing it at the same revision', async () => {
        // Copies of one command that read the stream at the same moment: same ids, same expected
        // revision, other metadata (each its own request). Only one of them is in the stream.
        const streamId = newStreamId('racing-copies');
        await store.appendToStream(streamId, events(1));
        const ids = [randomUUID(), randomUUID()];
        const copies = range(0, 10).map((copy) => ids.map((id) => ({ id, type: 'ThingHappened', data: { copy }, metadata: { copy } })));
        const results = await Promise.all(copies.map((copy) => store.appendToStream(streamId, copy, { expectedRevision: 0 })));

        const written = results.flatMap((result, copy) => (result.written ? [copy] : []));
        expect(written).toHaveLength(1);
        expect((await readStreamEvents(streamId)).slice(1).map((event) => event.metadata)).toEqual([{ copy: written[0] }, { copy: written[0] }]);
        expect(new Set(results.map(({ revision, position }) => JSON.stringify({ revision, position }, bigintJson))).size).toBe(1);
      });

      it('rejects a batch that repeats some ids of the stream but not all, writing none of it', async () => {
        const streamId = newStreamId('partial');
        const old = events(2);
        await store.appendToStream(streamId, old);
        const partial = [old[1], ...events(1)].filter(isDefined);

        const error = await store.appendToStream(streamId, partial).then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error).toBeInstanceOf(DuplicateEventError);
        expect(error).toMatchObject({ streamId, eventIds: [old[1]?.id] });
        await expect(store.appendToStream(streamId, partial, { expectedRevision: 1 })).rejects.toBeInstanceOf(DuplicateEventError);
        expect(await revisionsOf(streamId)).toEqual([0, 1]);
      });

      it('rejects a batch that repeats an id within itself', async () => {
        const streamId = newStreamId('self-repeat');
        const [event] = events(1);
        if (!event) throw new Error('no event');
        await expect(store.appendToStream(streamId, [event, event])).rejects.toBeInstanceOf(DuplicateEventError);
        expect(await store.readStream(streamId)).toEqual({ status: 'no_stream' });
      });
    });

    describe('concurrency', () => {
      it('lets exactly one of 50 concurrent appenders at one expected revision win', async () => {
        const streamId = newStreamId('race');
        await store.appendToStream(streamId, events(1), { expectedRevision: 'no_stream' });
        const batches = range(0, 50).map(() => events(2));

        const results = await Promise.allSettled(batches.map((batch) => store.appendToStream(streamId, batch, { expectedRevision: 0 })));

        const won = results.flatMap((result, index) => (result.status === 'fulfilled' ? [index] : []));
        expect(won).toHaveLength(1);
        for (const result of results) {
          if (result.status === 'rejected') {
            expect(result.reason).toBeInstanceOf(ConcurrencyError);
            expect(result.reason).toMatchObject({ streamId, expected: 0, actual: 2 });
          }
        }
        const stored = await readStreamEvents(streamId);
        expect(stored.map((event) => event.revision)).toEqual([0, 1, 2]);
        expect(stored.slice(1).map((event) => event.id)).toEqual(batches[won[0] ?? -1]?.map((event) => event.id));
      });

      it('lets exactly one of 50 concurrent creators of a stream win', async () => {
        const streamId = newStreamId('create-race');
        const results = await Promise.allSettled(
          range(0, 50).map(() => store.appendToStream(streamId, events(1), { expectedRevision: 'no_stream' })),
        );

        expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
        for (const result of results) {
          if (result.status === 'rejected') expect(result.reason).toMatchObject({ name: 'ConcurrencyError', actual: 0 });
        }
        expect(await revisionsOf(streamId)).toEqual([0]);
      });

      it('gives 20 concurrent appenders that retry on conflict each a revision, none twice, none skipped', async () => {
        const streamId = newStreamId('retrying');
        const appended = await Promise.all(
          range(0, 20).map(async () => {
            const batch = events(1);
            for (;;) {
              const last = await lastRevision(streamId);
              try {
                return (await store.appendToStream(streamId, batch, { expectedRevision: last ?? 'no_stream' })).revision;
              } catch (error) {
                if (!(error instanceof ConcurrencyError)) throw error;
              }
            }
          }),
        );

        expect([...appended].sort((a, b) => a - b)).toEqual(range(0, 20));
        expect(await revisionsOf(streamId)).toEqual(range(0, 20));
      });

      it('reads 2,000 events appended concurrently to 200 streams each exactly once, in one consistent order', async () => {
        const prefix = newStreamId('many');
        const streamIds = range(0, 200).map((n) => `${prefix}-${n}`);
        await Promise.all(
          streamIds.map(async (streamId) => {
            for (let revision = 0; revision < 10; revision += 1) {
              await store.appendToStream(streamId, events(1), { expectedRevision: revision === 0 ? 'no_stream' : revision - 1 });
            }
          }),
        );
        const filter = { streamPrefixes: [`${prefix}-`] };

        const all = await readAllEventually({ filter }, 2000);

        expect(new Set(all.map((event) => event.id)).size).toBe(2000);
        expectIncreasingPositions(all);
        const revisionsByStream = new Map<string, number[]>();
        for (const event of all) revisionsByStream.set(event.streamId, [...(revisionsByStream.get(event.streamId) ?? []), event.revision]);
        expect(revisionsByStream.size).toBe(200);
        for (const revisions of revisionsByStream.values()) expect(revisions).toEqual(range(0, 10));

        // Paging through with `after` and a subscription from the start see the same order.
        const paged: RecordedEvent[] = [];
        let after: Position = START;
        for (;;) {
          const page = await collect(store.readAll({ filter, after, maxCount: 333 }));
          paged.push(...page);
          const last = page[page.length - 1];
          if (!last) break;
          after = last.position;
        }
        expect(ids(paged)).toEqual(ids(all));
        expect(ids(await take({ filter }, 2000))).toEqual(ids(all));
      });
    });

    describe('reading', () => {
      it('says no_stream for a stream without events', async () => {
        expect(await store.readStream(newStreamId('missing'))).toEqual({ status: 'no_stream' });
      });

      it('reads forwards and backwards, from a revision, up to a count', async () => {
        const streamId = newStreamId('directions');
        await store.appendToStream(streamId, events(120));
        const read = async (options: ReadStreamOptions) => (await readStreamEvents(streamId, options)).map((event) => event.revision);

        expect(await read({})).toEqual(range(0, 120));
        expect(await read({ from: 100 })).toEqual(range(100, 120));
        expect(await read({ from: 5, maxCount: 3 })).toEqual([5, 6, 7]);
        expect(await read({ direction: 'backwards' })).toEqual(range(0, 120).reverse());
        expect(await read({ direction: 'backwards', from: 60, maxCount: 61 })).toEqual(range(0, 61).reverse());
        expect(await read({ direction: 'backwards', from: 2, maxCount: 10 })).toEqual([2, 1, 0]);
        expect(await read({ from: 120 })).toEqual([]);
        expect(await read({ maxCount: 0 })).toEqual([]);
      });

      it('names its head: at or after every event readAll showed before, before every event appended after', async () => {
        const streamId = newStreamId('head');
        await store.appendToStream(streamId, events(3));
        const shown = await readAllEventually({ filter: { streamPrefixes: [streamId] } }, 3);
        const head = await store.headPosition();
        for (const event of shown) expect(comparePositions(head, event.position)).toBeGreaterThanOrEqual(0);
        const later = await store.appendToStream(streamId, events(1));
        expect(comparePositions(later.position, head)).toBe(1);
      });

      it('filters $all by event type and stream prefix, both when both are given', async () => {
        const prefix = newStreamId('filter');
        await store.appendToStream(`${prefix}-a-1`, [newEvent('Alpha'), newEvent('Beta')]);
        await store.appendToStream(`${prefix}-b-1`, [newEvent('Alpha'), newEvent('Gamma')]);
        const types = async (options: ReadAllOptions) => (await readAllEventually(options, -1)).map((e) => `${e.streamId.slice(prefix.length)}:${e.type}`);

        await readAllEventually({ filter: { streamPrefixes: [`${prefix}-`] } }, 4);
        expect(await types({ filter: { streamPrefixes: [`${prefix}-a-`] } })).toEqual(['-a-1:Alpha', '-a-1:Beta']);
        expect(await types({ filter: { streamPrefixes: [`${prefix}-`], eventTypes: ['Alpha', 'Gamma'] } })).toEqual([
          '-a-1:Alpha',
          '-b-1:Alpha',
          '-b-1:Gamma',
        ]);
        expect(await types({ filter: { streamPrefixes: [`${prefix}-b-`, `${prefix}-a-`], eventTypes: ['Beta'] } })).toEqual(['-a-1:Beta']);
        expect(await types({ filter: { streamPrefixes: [`${prefix}-`], eventTypes: [] } })).toEqual([]);
        expect(await types({ filter: { streamPrefixes: [`${prefix}-`] }, maxCount: 3 })).toHaveLength(3);
      });

      it('round-trips unicode in ids, types, data and metadata', async () => {
        const streamId = newStreamId('ünïcødé-流-🙂');
        const text = 'Ünïcødé ✓ 日本語 中文 한국어 العربية עברית 🙂👍🏽👨‍👩‍👧 e\u0301 \u200b "quotes" \\back\\slash\\ \n\t{}[]';
        const event: NewEvent = {
          id: randomUUID(),
          type: 'Événement🙂',
          data: { text, [text]: ['🙂', { nested: text }], escaped: '\u007f\u2028\u2029\ud83d\ude00' },
          metadata: { who: 'Zoë Ångström', note: text },
        };
        await store.appendToStream(streamId, [event]);

        expect((await readStreamEvents(streamId))[0]).toMatchObject(event);
        expect((await readAllEventually({ filter: { streamPrefixes: [streamId] } }, 1))[0]).toMatchObject(event);
      });

      it('round-trips a 1 MB payload', async () => {
        const streamId = newStreamId('large');
        const chunk = 'abcdefghij0123456789€日🙂"\\\n';
        // Whole chunks only: cutting one could split a surrogate pair.
        const big = chunk.repeat(Math.ceil(1_048_576 / chunk.length));
        const event: NewEvent = { id: randomUUID(), type: 'Large', data: { big, list: range(0, 1000) }, metadata: { big: big.slice(0, 1000) } };
        await store.appendToStream(streamId, [event, newEvent('Small')]);

        const [stored] = await readStreamEvents(streamId);
        expect(stored?.data.big).toBe(big);
        expect(stored).toMatchObject(event);
        expect((await readAllEventually({ filter: { streamPrefixes: [streamId] } }, 2))[0]?.data.big).toBe(big);
      });
    });

    describe('subscriptions', () => {
      it('catches up, then delivers live appends, in order, each once', async () => {
        const prefix = newStreamId('live');
        const filter = { streamPrefixes: [`${prefix}-`] };
        await store.appendToStream(`${prefix}-1`, events(3));
        const received = take({ filter }, 8);
        await sleep(50);
        await store.appendToStream(`${prefix}-2`, events(2));
        await store.appendToStream(`${prefix}-1`, events(3), { expectedRevision: 2 });

        const delivered = await received;
        expect(delivered.map((e) => `${e.streamId.slice(prefix.length)}/${e.revision}`)).toEqual([
          '-1/0', '-1/1', '-1/2', '-2/0', '-2/1', '-1/3', '-1/4', '-1/5',
        ]);
        expectIncreasingPositions(delivered);
        expect(ids(delivered)).toEqual(ids(await readAllEventually({ filter }, 8)));
      });

      it('resumes after a stored position with exactly the events that follow it', async () => {
        const prefix = newStreamId('resume');
        const filter = { streamPrefixes: [`${prefix}-`] };
        for (let n = 0; n < 4; n += 1) await store.appendToStream(`${prefix}-${n % 2}`, events(3));
        const all = await readAllEventually({ filter }, 12);
        const checkpoint = all[4]?.position;
        if (!checkpoint) throw new Error('no checkpoint');

        expect(ids(await take({ filter, after: checkpoint }, 7))).toEqual(ids(all.slice(5)));
        expect(ids(await collect(store.readAll({ filter, after: checkpoint })))).toEqual(ids(all.slice(5)));

        // Live too: what is appended after the checkpoint's reader caught up follows directly.
        const received = take({ filter, ...(all[11] ? { after: all[11].position } : {}) }, 2);
        await sleep(50);
        await store.appendToStream(`${prefix}-0`, events(2));
        expect((await received).map((e) => e.revision)).toEqual([6, 7]);
      });

      it('ends promptly without error when aborted while waiting', async () => {
        const controller = new AbortController();
        const filter = { streamPrefixes: [newStreamId('abort')] };
        const loop = collect(store.subscribeToAll({ filter, signal: controller.signal }));
        await sleep(100);
        const aborted = Date.now();
        controller.abort();

        expect(await loop).toEqual([]);
        expect(Date.now() - aborted).toBeLessThan(500);
      });

      it('ends at once when aborted before it starts or between events', async () => {
        const prefix = newStreamId('abort-early');
        await store.appendToStream(`${prefix}-1`, events(5));
        await readAllEventually({ filter: { streamPrefixes: [prefix] } }, 5);
        const controller = new AbortController();
        controller.abort();
        expect(await collect(store.subscribeToAll({ filter: { streamPrefixes: [prefix] }, signal: controller.signal }))).toEqual([]);

        const midway = new AbortController();
        const seen: RecordedEvent[] = [];
        for await (const event of store.subscribeToAll({ filter: { streamPrefixes: [prefix] }, signal: midway.signal })) {
          seen.push(event);
          if (seen.length === 2) midway.abort();
        }
        expect(seen.map((event) => event.revision)).toEqual([0, 1]);
      });
    });

    it('agrees with a simple model on random sequences of appends and reads', async () => {
      await fc.assert(
        fc.asyncProperty(fc.commands(commandArbitraries, { maxCommands: 25 }), async (commands) => {
          const prefix = newStreamId('model');
          await fc.asyncModelRun(() => ({ model: emptyModel(), real: { store, prefix } }), commands);
        }),
        { numRuns: 20 },
      );
    }, 60_000);

    // Helpers that need the store.

    async function readStreamEvents(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
      const result = await store.readStream(streamId, options);
      return result.status === 'found' ? collect(result.events) : [];
    }

    async function revisionsOf(streamId: string): Promise<number[]> {
      return (await readStreamEvents(streamId)).map((event) => event.revision);
    }

    async function lastRevision(streamId: string): Promise<number | undefined> {
      return (await readStreamEvents(streamId, { direction: 'backwards', maxCount: 1 }))[0]?.revision;
    }

    /** Reads `$all` until `count` events come back (any count when negative); see the suite's note. */
    async function readAllEventually(options: ReadAllOptions, count: number): Promise<RecordedEvent[]> {
      return eventuallyReadAll(store, options, count);
    }

    async function take(options: SubscribeOptions, count: number): Promise<RecordedEvent[]> {
      return takeFrom(store, options, count);
    }
  });
}

// The model for the model-based test: streams as lists of ids, and the global order.

type Model = {
  streams: Map<string, string[]>;
  order: string[];
  batches: { streamId: string; batch: NewEvent[]; result: AppendResult }[];
};
type Real = { store: EventStore; prefix: string };
type ModelCommand = fc.AsyncCommand<Model, Real>;

const emptyModel = (): Model => ({ streams: new Map(), order: [], batches: [] });
const streamOf = (real: Real, stream: number) => `${real.prefix}-${stream}`;

class AppendCommand implements ModelCommand {
  constructor(
    readonly stream: number,
    readonly size: number,
    readonly expectation: 'right' | 'wrong' | 'no_stream' | 'stream_exists' | 'any',
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const streamId = streamOf(real, this.stream);
    const existing = model.streams.get(streamId) ?? [];
    const actual = existing.length === 0 ? 'no_stream' : existing.length - 1;
    const expected: ExpectedRevision =
      this.expectation === 'right' ? actual
      : this.expectation === 'wrong' ? (actual === 'no_stream' ? 0 : actual + 1)
      : this.expectation;
    const succeeds =
      this.expectation === 'right' || this.expectation === 'any' ||
      (this.expectation === 'no_stream' && actual === 'no_stream') ||
      (this.expectation === 'stream_exists' && actual !== 'no_stream');
    const batch = events(this.size);
    const append = real.store.appendToStream(streamId, batch, { expectedRevision: expected });
    if (!succeeds) {
      await expect(append).rejects.toMatchObject({ name: 'ConcurrencyError', expected, actual });
      return;
    }
    const result = await append;
    expect(result.revision).toBe(existing.length + this.size - 1);
    model.streams.set(streamId, [...existing, ...ids(batch)]);
    model.order.push(...ids(batch));
    model.batches.push({ streamId, batch, result });
  }
  toString = () => `append(${this.stream}, ${this.size}, ${this.expectation})`;
}

class RetryCommand implements ModelCommand {
  constructor(
    readonly pick: number,
    readonly partial: boolean,
  ) {}
  check = (model: Readonly<Model>) => model.batches.length > 0;
  async run(model: Model, real: Real): Promise<void> {
    const previous = model.batches[this.pick % model.batches.length];
    if (!previous) throw new Error('no batch to retry');
    if (this.partial) {
      const batch = [...previous.batch, ...events(1)];
      await expect(real.store.appendToStream(previous.streamId, batch)).rejects.toBeInstanceOf(DuplicateEventError);
    } else {
      expect(await real.store.appendToStream(previous.streamId, previous.batch, { expectedRevision: 'no_stream' })).toEqual({ ...previous.result, written: false });
    }
  }
  toString = () => `retry(${this.pick}, ${this.partial ? 'partial' : 'whole'})`;
}

class ReadStreamCommand implements ModelCommand {
  constructor(
    readonly stream: number,
    readonly backwards: boolean,
    readonly from: number | undefined,
    readonly maxCount: number | undefined,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const streamId = streamOf(real, this.stream);
    const result = await real.store.readStream(streamId, {
      direction: this.backwards ? 'backwards' : 'forwards',
      ...(this.from === undefined ? {} : { from: this.from }),
      ...(this.maxCount === undefined ? {} : { maxCount: this.maxCount }),
    });
    const stream = model.streams.get(streamId);
    if (!stream) {
      expect(result).toEqual({ status: 'no_stream' });
      return;
    }
    if (result.status !== 'found') throw new Error(`${streamId} should exist`);
    const indexed = stream.map((id, revision) => ({ id, revision }));
    const selected = this.backwards
      ? indexed.filter((e) => e.revision <= (this.from ?? stream.length)).reverse()
      : indexed.filter((e) => e.revision >= (this.from ?? 0));
    const expected = selected.slice(0, this.maxCount ?? selected.length);
    expect((await collect(result.events)).map((e) => ({ id: e.id, revision: e.revision }))).toEqual(expected);
  }
  toString = () => `readStream(${this.stream}, ${this.backwards ? 'backwards' : 'forwards'}, ${this.from}, ${this.maxCount})`;
}

class ReadAllCommand implements ModelCommand {
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const all = await eventuallyReadAll(real.store, { filter: { streamPrefixes: [`${real.prefix}-`] } }, model.order.length);
    expect(ids(all)).toEqual(model.order);
  }
  toString = () => 'readAll';
}

const commandArbitraries: fc.Arbitrary<ModelCommand>[] = [
  fc
    .tuple(fc.nat(2), fc.integer({ min: 1, max: 3 }), fc.constantFrom<AppendCommand['expectation']>('right', 'right', 'wrong', 'no_stream', 'stream_exists', 'any'))
    .map(([stream, size, expectation]) => new AppendCommand(stream, size, expectation)),
  fc.tuple(fc.nat(), fc.boolean()).map(([pick, partial]) => new RetryCommand(pick, partial)),
  fc
    .tuple(fc.nat(2), fc.boolean(), fc.option(fc.nat(8), { nil: undefined }), fc.option(fc.nat(5), { nil: undefined }))
    .map(([stream, backwards, from, maxCount]) => new ReadStreamCommand(stream, backwards, from, maxCount)),
  fc.constant(new ReadAllCommand()),
];

// Plain helpers.

function newStreamId(label: string): string {
  return `${label}-${randomUUID()}`;
}

function newEvent(type = 'ThingHappened'): NewEvent {
  return { id: randomUUID(), type, data: { at: Date.now() }, metadata: { correlationId: randomUUID() } };
}

function events(count: number): NewEvent[] {
  return range(0, count).map(() => newEvent());
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, index) => from + index);
}

function ids(events: readonly { id: string }[]): string[] {
  return events.map((event) => event.id);
}

function isDefined<T>(value: T | undefined): value is T {
  return value !== undefined;
}

function bigintJson(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

function expectIncreasingPositions(events: readonly RecordedEvent[]): void {
  for (let index = 1; index < events.length; index += 1) {
    const [previous, current] = [events[index - 1], events[index]];
    if (previous && current) expect(comparePositions(previous.position, current.position), `position ${index}`).toBe(-1);
  }
}


async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function eventuallyReadAll(store: EventStore, options: ReadAllOptions, count: number, timeoutMs = 10_000): Promise<RecordedEvent[]> {
  const deadline = Date.now() + timeoutMs;
  let previous: RecordedEvent[] = [];
  for (;;) {
    const all = await collect(store.readAll(options));
    // What was read before must still come first: the order never changes behind a reader.
    expect(ids(all.slice(0, previous.length))).toEqual(ids(previous));
    if (count < 0 || all.length >= count) {
      if (count >= 0) expect(all).toHaveLength(count);
      return all;
    }
    if (Date.now() > deadline) throw new Error(`readAll returned ${all.length} of ${count} events within ${timeoutMs} ms`);
    previous = all;
    await sleep(20);
  }
}

/** The first `count` events of a subscription, which it then aborts; fails after `timeoutMs`. */
async function takeFrom(store: EventStore, options: SubscribeOptions, count: number, timeoutMs = 10_000): Promise<RecordedEvent[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const taken: RecordedEvent[] = [];
  try {
    for await (const event of store.subscribeToAll({ ...options, signal: controller.signal })) {
      taken.push(event);
      if (taken.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  if (taken.length < count) throw new Error(`subscription delivered ${taken.length} of ${count} events within ${timeoutMs} ms`);
  return taken;
}
