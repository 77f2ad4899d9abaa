import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing, setListingActive, updateListing } from '../../src/application/listings/listing.use-cases.js';
import { submitReview } from '../../src/application/reviews/review.use-cases.js';
import { listingAvailabilityProjection } from '../../src/projections/listing-availability/listing-availability.projection.js';
import { listingsProjection } from '../../src/projections/listings/listings.projection.js';
import { findListing, searchListings, type ListingFilter } from '../../src/projections/listings/listings.queries.js';
import { sql } from 'kysely';
import { randomUUID } from 'node:crypto';
import { aggregates } from '../../src/application/aggregates/aggregates.js';
import { listingStreamId } from '../../src/domain/listing/listing.decider.js';
import type { ListingEvent } from '../../src/domain/listing/listing.events.js';
import { reviewStreamId } from '../../src/domain/review/review.decider.js';
import { reviewsProjection } from '../../src/projections/reviews/reviews.projection.js';
import { generationSchema } from '../../src/projections/runtime/projection.js';
import { admin, as, consumer, listingInput, otherConsumer, owner } from '../support/command-side.js';
import { startReadModels, type ReadModelHarness } from './support/read-models.harness.js';
import { payBooking } from './support/scenarios.js';

describe('listings read model', () => {
  let h: ReadModelHarness;
  let loft: string;
  let cabin: string;
  let studio: string;

  const ids = async (filter: ListingFilter) => (await searchListings(h.db, filter, { limit: 100 })).items.map((l) => l.id);

  beforeAll(async () => {
    h = await startReadModels([listingsProjection, listingAvailabilityProjection, reviewsProjection]);
    loft = (await createListing(h.side, listingInput, as(owner))).id;
    h.clock.advance(1000);
    cabin = (await createListing(h.side, { ...listingInput, title: 'Cabin in the woods', description: 'Wood stove, lake view', category: 'cabin', location: 'Annecy', pricePerDay: 8_000 }, as(owner))).id;
    h.clock.advance(1000);
    studio = (await createListing(h.side, { ...listingInput, title: 'Studio', description: 'Small and central', location: 'Paris', pricePerDay: 20_000 }, as(owner))).id;
    await h.settle();
  });
  afterAll(() => h.close());

  it('given ListingCreated, then a listing with its details, price, and no rating yet', async () => {
    expect(await findListing(h.db, loft)).toMatchObject({
      id: loft,
      ownerId: owner.id,
      title: 'Loft by the river',
      category: 'venue',
      location: 'Lyon',
      capacity: 4,
      timeZone: 'UTC',
      pricePerDay: 12_000,
      currency: 'EUR',
      active: true,
      rating: { average: null, count: 0 },
      version: 0,
    });
  });

  it('lists newest first and filters by category, location, price range and text', async () => {
    expect(await ids({})).toEqual([studio, cabin, loft]);
    expect(await ids({ category: 'cabin' })).toEqual([cabin]);
    expect(await ids({ location: 'paris' })).toEqual([studio]);
    expect(await ids({ currency: 'EUR', minPrice: 9_000, maxPrice: 15_000 })).toEqual([loft]);
    expect(await ids({ currency: 'USD' })).toEqual([]);
    expect(await ids({ q: 'lake' })).toEqual([cabin]);
    expect(await ids({ q: 'wood stove' })).toEqual([cabin]);
    expect(await ids({ q: 'river OR central' })).toEqual([studio, loft]);
  });

  it('given ListingDetailsUpdated, ListingPriceChanged, ListingDeactivated, then the row follows and the list drops it', async () => {
    await updateListing(h.side, studio, { title: 'Studio with terrace', pricePerDay: 21_000 }, as(owner));
    await setListingActive(h.side, studio, false, as(owner));
    await h.settle();
    expect(await findListing(h.db, studio)).toMatchObject({ title: 'Studio with terrace', pricePerDay: 21_000, active: false });
    expect(await ids({ q: 'terrace' })).toEqual([]);
    await setListingActive(h.side, studio, true, as(owner));
    await h.settle();
    expect(await ids({ q: 'terrace' })).toEqual([studio]);
  });

  it('filters out listings with a live hold or booking overlapping the free dates asked for', async () => {
    await requestBooking(h.side, { listingId: loft, startDate: '2030-02-01', endDate: '2030-02-05' }, as(consumer));
    await h.settle();
    const now = h.clock.now();
    expect(await ids({ freeDates: { from: '2030-02-04', to: '2030-02-06', now } })).toEqual([studio, cabin]);
    expect(await ids({ freeDates: { from: '2030-02-05', to: '2030-02-06', now } })).toEqual([studio, cabin, loft]);
    const lapsed = new Date(now.getTime() + 16 * 60_000);
    expect(await ids({ freeDates: { from: '2030-02-04', to: '2030-02-06', now: lapsed } })).toEqual([studio, cabin, loft]);
  });

  it('given ReviewSubmitted, ReviewEdited and ReviewHidden, then the rating averages and counts the visible reviews', async () => {
    const rating = async () => (await findListing(h.db, cabin))?.rating;
    const reviewed: string[] = [];
    for (const [who, startDate, endDate] of [[consumer, '2030-01-12', '2030-01-13'], [otherConsumer, '2030-01-14', '2030-01-15']] as const) {
      const { id } = await requestBooking(h.side, { listingId: cabin, startDate, endDate }, as(who));
      await payBooking(h.side, id);
      reviewed.push(id);
    }
    const [first, second] = reviewed;
    if (!first || !second) throw new Error('bookings missing');
    h.clock.advance(5 * 86_400_000);
    for (const id of reviewed) await completeBooking(h.side, id, as(owner));

    await submitReview(h.side, cabin, { bookingId: first, rating: 3, comment: 'Fine' }, as(consumer));
    await h.settle();
    expect(await rating()).toEqual({ average: 3, count: 1 });

    await submitReview(h.side, cabin, { bookingId: second, rating: 4, comment: 'Good' }, as(otherConsumer));
    await h.settle();
    expect(await rating()).toEqual({ average: 3.5, count: 2 });
    expect((await searchListings(h.db, { category: 'cabin' }, { limit: 5 })).items[0]?.rating).toEqual({ average: 3.5, count: 2 });

    const edit = { type: 'EditReview', data: { bookingId: first, actor: consumer, rating: 2, comment: 'Cold at night', now: h.clock.now().toISOString() } } as const;
    await h.side.handlers.review.handle(reviewStreamId(first), edit, as(consumer));
    await h.settle();
    expect(await rating()).toEqual({ average: 3, count: 2 });

    await h.side.handlers.review.handle(reviewStreamId(second), { type: 'HideReview', data: { bookingId: second, actor: admin, reason: 'spam' } }, as(admin));
    await h.settle();
    expect(await rating()).toEqual({ average: 2, count: 1 });
    expect(await findListing(h.db, loft)).toMatchObject({ rating: { average: null, count: 0 } });
  });

  it('while a version 1 generation still serves (tables without the rating columns), counts the rating from the reviews read model', async () => {
    const { rows } = await sql<{ generation: number }>`select generation from projection_checkpoints where name = 'listings' and active`.execute(h.db);
    const tables = sql.table(`${generationSchema('listings', rows[0]?.generation ?? 0)}.listings`);
    const columns = sql.raw('listing_id, owner_id, title, description, category, location, capacity, time_zone, price_per_day, currency, active, created_at, updated_at, version, search');
    const before = { rating: await findListing(h.db, cabin).then((listing) => listing?.rating), page: await ids({ category: 'cabin' }) };
    expect(before.rating?.count).toBeGreaterThan(0);
    await sql`drop view rm_listings.listings`.execute(h.db);
    await sql`create view rm_listings.listings as select ${columns} from ${tables}`.execute(h.db);
    try {
      expect((await findListing(h.db, cabin))?.rating).toEqual(before.rating);
      expect((await searchListings(h.db, { category: 'cabin' }, { limit: 5 })).items.map((l) => [l.id, l.rating])).toEqual(before.page.map((id) => [id, before.rating]));
    } finally {
      await sql`drop view rm_listings.listings`.execute(h.db);
      await sql`create view rm_listings.listings as select * from ${tables}`.execute(h.db);
    }
    expect((await findListing(h.db, cabin))?.rating).toEqual(before.rating);
  });

  it('pages by keyset without repeats', async () => {
    const first = await searchListings(h.db, {}, { limit: 2 });
    expect(first.next).not.toBeNull();
    const second = await searchListings(h.db, {}, { limit: 2, after: first.next ?? undefined });
    expect([...first.items, ...second.items].map((l) => l.id)).toEqual(await ids({}));
    expect(second.next).toBeNull();
  });

  it('a replayed batch changes nothing', async () => {
    const before = [await h.rows('listings', 'listings'), await h.rows('listings', 'listing_reviews')];
    await h.replay(listingsProjection);
    expect([await h.rows('listings', 'listings'), await h.rows('listings', 'listing_reviews')]).toEqual(before);
  });

  it('finds a location with capitals outside ASCII in any case, by filter and by text search (PostgreSQL lowers it, never JavaScript: the two disagree under a C locale)', async () => {
    const paris = (await createListing(h.side, { ...listingInput, location: 'Île-de-France' }, as(owner))).id;
    const moscow = (await createListing(h.side, { ...listingInput, location: 'Москва' }, as(owner))).id;
    await h.settle();
    expect(await ids({ location: 'Île-de-France' })).toEqual([paris]);
    expect(await ids({ location: 'Île-DE-FRANCE' })).toEqual([paris]);
    expect(await ids({ location: 'Москва' })).toEqual([moscow]);
    // And in another case outside ASCII too: the servers the service starts itself fold Unicode.
    expect(await ids({ location: 'île-de-france' })).toEqual([paris]);
    expect(await ids({ location: 'МОСКВА' })).toEqual([moscow]);
    expect(await ids({ q: 'москва' })).toEqual([moscow]);
  });

  it('given a ListingCreated stored before capacity was bounded (3e9, past a 4-byte integer) and a ListingDetailsUpdated carrying it, then the row reads back that capacity as a number', async () => {
    const listingId = randomUUID();
    const storedBefore: ListingEvent = {
      type: 'ListingCreated',
      data: { listingId, ownerId: owner.id, ...listingInput, capacity: 3_000_000_000, timeZone: 'UTC' },
    };
    const metadata = { schemaVersion: aggregates.listing.codec.schemaVersion(storedBefore.type), actorId: owner.id, actorRoles: owner.roles, correlationId: listingId, causationId: listingId, requestId: listingId, occurredAt: h.clock.now().toISOString() };
    await h.harness.store.appendToStream(listingStreamId(listingId), [{ id: randomUUID(), type: storedBefore.type, data: storedBefore.data, metadata }]);
    // A title change on such a listing appends ListingDetailsUpdated with every detail, the capacity too.
    await updateListing(h.side, listingId, { title: 'Warehouse floor' }, as(owner));
    await h.settle();
    expect(await findListing(h.db, listingId)).toMatchObject({ title: 'Warehouse floor', capacity: 3_000_000_000 });
    expect((await searchListings(h.db, { q: 'warehouse' }, { limit: 5 })).items.map((l) => [l.id, l.capacity])).toEqual([[listingId, 3_000_000_000]]);
  });
});
