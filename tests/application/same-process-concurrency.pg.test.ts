import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import type { CommandSide } from '../../src/application/command-handlers.js';
import type { CommandOptions } from '../../src/application/command-handling/handle-command.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { as, createTestSide, eventTypes, fakeClock, listingInput, owner } from '../support/command-side.js';

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
