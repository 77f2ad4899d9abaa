import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { formatPosition } from '../../src/application/ports/position.js';
import { submitReview } from '../../src/application/reviews/review.use-cases.js';
import { sleep } from '../../src/application/sleep.js';
import { generationSchema } from '../../src/projections/runtime/projection.js';
import { as, consumer, listingInput, owner } from '../support/command-side.js';
import { payBooking } from '../projections/support/scenarios.js';
import { startQueryApi, type QueryApiFixture } from './support/query-api.fixture.js';

/**
 * Right after a deploy of listings version 2, version 1 still serves while 2 rebuilds, and its
 * tables have no rating: readers count the rating from the reviews read model. A reader asking
 * for read-your-writes must then wait for that read model too.
 */
describe('listings while a version 1 generation still serves', () => {
  let q: QueryApiFixture;
  let listingId: string;
  let bookingId: string;

  beforeAll(async () => {
    q = await startQueryApi({ consistencyTimeoutMs: 10_000 });
    listingId = (await createListing(q.side, listingInput, as(owner))).id;
    bookingId = (await requestBooking(q.side, { listingId, startDate: '2030-01-12', endDate: '2030-01-13' }, as(consumer))).id;
    await payBooking(q.side, bookingId);
    q.clock.advance(5 * 86_400_000);
    await completeBooking(q.side, bookingId, as(owner));
    await q.settle();
  });
  afterAll(() => q.close());

  async function activeSchema(name: string): Promise<string> {
    const { rows } = await sql<{ generation: number }>`select generation from projection_checkpoints where name = ${name} and active`.execute(q.db);
    return generationSchema(name, rows[0]?.generation ?? 0);
  }

  it("waits for the reviews read model with Consistency-Position: a review's rating shows in the answer", async () => {
    const listings = sql.table(`${await activeSchema('listings')}.listings`);
    const columns = sql.raw('listing_id, owner_id, title, description, category, location, capacity, time_zone, price_per_day, currency, active, created_at, updated_at, version, search');
    await sql`drop view rm_listings.listings`.execute(q.db);
    await sql`create view rm_listings.listings as select ${columns} from ${listings}`.execute(q.db);
    // The reviews projector stalls on its table, as a slow one would; the others go on.
    const stall = new pg.Client(q.harness.url);
    await stall.connect();
    try {
      await stall.query('begin');
      await stall.query(`lock table ${await activeSchema('reviews')}.reviews in exclusive mode`);
      const { position } = await submitReview(q.side, listingId, { bookingId, rating: 4, comment: 'Quiet and bright' }, as(consumer));
      const headers = { 'consistency-position': formatPosition(position) };
      const one = q.app.inject({ url: `/v1/listings/${listingId}`, headers });
      const search = q.app.inject({ url: '/v1/listings', headers });
      await sleep(300);
      await stall.query('commit');

      const [listing, page] = await Promise.all([one, search]);
      expect(listing.statusCode).toBe(200);
      expect(listing.json()).toMatchObject({ id: listingId, rating: { average: 4, count: 1 } });
      expect(page.json()).toMatchObject({ items: [{ id: listingId, rating: { average: 4, count: 1 } }] });
    } finally {
      await stall.end();
      await sql`drop view rm_listings.listings`.execute(q.db);
      await sql`create view rm_listings.listings as select * from ${listings}`.execute(q.db);
    }
  });
});
