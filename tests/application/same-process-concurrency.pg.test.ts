import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createCommandHandlers, type CommandSide } from '../../src/application/command-handlers.js';
import type { CommandOptions } from '../../src/application/command-handling/handle-command.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { sleep } from '../../src/application/sleep.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { as, createTestSide, eventTypes, fakeClock, listingInput, owner } from '../support/command-side.js';
import { memoryVault } from '../support/personal-data.js';

// Many requests on one stream inside one process, as a command API serves them: each backend is
// one command side (one handler per aggregate) on an event store with a pool of its own.
describe('concurrent requests on one listing served by the same process (PostgreSQL event store)', () => {
  let database: TestDatabase;
  let backends: { store: PgEventStore; side: CommandSide }[];
  const clock = fakeClock('2030-01-10T10:00:00Z');

  beforeAll(async () => {
    database = await createTestDatabase();
    const pools: pg.Pool[] = [createPool(database.url, 10), createPool(database.url, 10)];
    for (const pool of pools.slice(0, 1)) await migrateToLatest(pool);
    backends = pools.map((pool) => {
      const store = new PgEventStore(pool, { closePool: true });
      return { store, side: createTestSide(store, clock) };
    });
  });

  afterAll(async () => {
    await Promise.all(backends.map(({ store }) => store.close()));
    await database.drop();
  });

  const consumer = (i: number): Actor => ({ id: `consumer-${i}`, roles: ['CONSUMER'] });
  /** With and without Idempotency-Key, as the HTTP edge builds the request. */
  const requests: [string, (actor: Actor) => CommandOptions][] = [
    ['keyed', (actor) => as(actor)],
    ['keyless', (actor) => ({ ...as(actor), freshCommandId: true })],
  ];
  const night = (i: number) => {
    const start = Date.parse('2030-03-01') + i * 86_400_000;
    return { startDate: new Date(start).toISOString().slice(0, 10), endDate: new Date(start + 86_400_000).toISOString().slice(0, 10) };
  };

  function outcomes(results: PromiseSettledResult<unknown>[]) {
    const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason instanceof DomainError ? r.reason.code : String(r.reason)] : []));
    return { won: results.filter((r) => r.status === 'fulfilled').length, refusals: [...new Set(refusals)] };
  }

  it.each(requests)('one backend, 40 %s requests for 40 disjoint nights at once: all 40 are held', async (_, request) => {
    const [only] = backends;
    if (!only) throw new Error('no backend');
    const listing = await createListing(only.side, listingInput, as(owner));

    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => requestBooking(only.side, { listingId: listing.id, ...night(i) }, request(consumer(i)))),
    );

    expect(outcomes(results)).toEqual({ won: 40, refusals: [] });
    expect(await eventTypes(only.store, `listingCalendar-${listing.id}`)).toEqual(Array.from({ length: 40 }, () => 'DatesHeld'));
  });

  it.each(requests)('two backends on one database, 20 %s requests each for 40 disjoint nights at once: all 40 are held', async (_, request) => {
    const [first] = backends;
    if (!first) throw new Error('no backend');
    const listing = await createListing(first.side, listingInput, as(owner));

    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => requestBooking(backends[i % 2]?.side ?? first.side, { listingId: listing.id, ...night(i) }, request(consumer(i)))),
    );

    expect(outcomes(results)).toEqual({ won: 40, refusals: [] });
    expect(await eventTypes(first.store, `listingCalendar-${listing.id}`)).toHaveLength(40);
  });

  it('one backend, 20 requests for the same nights at once: exactly one holds them, the rest are refused', async () => {
    const [only] = backends;
    if (!only) throw new Error('no backend');
    const listing = await createListing(only.side, listingInput, as(owner));

    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => requestBooking(only.side, { listingId: listing.id, startDate: '2030-03-01', endDate: '2030-03-04' }, as(consumer(i)))),
    );

    expect(outcomes(results)).toEqual({ won: 1, refusals: ['dates-unavailable'] });
    expect(await eventTypes(only.store, `listingCalendar-${listing.id}`)).toEqual(['DatesHeld']);
  });
});

/** The PostgreSQL event store, whose next append to a chosen stream hangs (a dead connection) until let go. */
class HangingStore extends PgEventStore {
  private hung: { readonly streamId: string; readonly reached: () => void; readonly gate: Promise<void> } | undefined;

  /** Hangs the next append to `streamId`: `reached` settles when it starts hanging, `letGo` lets it through. */
  hang(streamId: string): { reached: Promise<void>; letGo: () => void } {
    let letGo: () => void = () => undefined;
    let reached: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const hanging = new Promise<void>((resolve) => (reached = resolve));
    this.hung = { streamId, reached, gate };
    return { reached: hanging, letGo };
  }

  override async appendToStream(...args: Parameters<PgEventStore['appendToStream']>): ReturnType<PgEventStore['appendToStream']> {
    const hung = this.hung;
    if (hung?.streamId === args[0]) {
      this.hung = undefined;
      hung.reached();
      await hung.gate;
    }
    return super.appendToStream(...args);
  }
}

describe('a command whose append hangs, in a process serving other commands on its stream (PostgreSQL event store)', () => {
  let database: TestDatabase;
  let store: HangingStore;
  const clock = fakeClock('2030-01-10T10:00:00Z');

  beforeAll(async () => {
    database = await createTestDatabase();
    const pool = createPool(database.url, 10);
    await migrateToLatest(pool);
    store = new HangingStore(pool, { closePool: true });
  });

  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('given the first hold on a calendar hung in its append, when a booking for other nights of that listing comes, then it waits for the hung one only as long as the bound, and both are held once the append comes back', async () => {
    const side: CommandSide = {
      handlers: createCommandHandlers({ eventStore: store, clock, personalData: memoryVault(), maxQueueWaitMs: 100 }),
      clock,
      policy: { holdMinutes: 15 },
    };
    const listing = await createListing(side, listingInput, as(owner));
    const calendar = `listingCalendar-${listing.id}`;
    const hung = store.hang(calendar);
    const first = requestBooking(side, { listingId: listing.id, startDate: '2030-03-01', endDate: '2030-03-02' }, as({ id: 'consumer-a', roles: ['CONSUMER'] }));
    await hung.reached;

    const second = requestBooking(side, { listingId: listing.id, startDate: '2030-03-05', endDate: '2030-03-06' }, as({ id: 'consumer-b', roles: ['CONSUMER'] }));
    const answered = await Promise.race([second.then(() => 'held'), sleep(3_000).then(() => 'still waiting')]);
    expect(answered).toBe('held');
    expect(await eventTypes(store, calendar)).toEqual(['DatesHeld']);

    hung.letGo();
    await expect(first).resolves.toBeDefined();
    expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesHeld']);
  });
});

